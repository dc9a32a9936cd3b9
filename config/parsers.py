"""The API's JSON parser (REST_FRAMEWORK's only one): hostile JSON is a 400 parse_error, never a 500.

- no nesting deeper than `JSON_MAX_DEPTH`: Python's json module recurses, so ``"[" * 2000`` was a
  RecursionError (a 500 and a traceback, without logging in), and shallower nests that do parse could
  still exhaust the stack of a serializer or of the renderer;
- no numbers beyond a float's range: ``1e999999`` parses as infinity, which overflows integer fields
  (an OverflowError) and cannot be rendered back as JSON.
Integers longer than Python's limit (4300 digits) already fail to parse, as a ValueError.
"""

from __future__ import annotations

import codecs
import json
import math

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

# Our bodies are flat objects; this leaves room for any client's nesting and none for stack exhaustion.
JSON_MAX_DEPTH = 32


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"Number out of range: {text[:40]}")
    return value


def _too_deep(data, limit: int) -> bool:
    """Whether `data` nests lists/objects more than `limit` levels (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in value if isinstance(item, (dict, list)))
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a depth limit and finite numbers; anything else is its 400 parse_error."""

    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = ParseError(f"JSON parse error - nested deeper than {JSON_MAX_DEPTH} levels.")
        encoding = parsers.get_encoding(parser_context or {})
        try:
            data = json.load(
                codecs.getreader(encoding)(stream),
                parse_float=_finite_float,
                parse_constant=strict_constant if self.strict else None,
            )
        except RecursionError:  # deeper than Python's stack, so certainly too deep
            raise too_deep from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _too_deep(data, JSON_MAX_DEPTH):
            raise too_deep
        return data
