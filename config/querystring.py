"""Query strings without NUL: PostgreSQL text cannot hold the character, so a NUL in any filter would be
a database error (a 500). Refused for every endpoint here, before any view runs; NUL in JSON bodies is
refused by DRF's CharField, which every text field of our serializers is.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from core.api import error_body


class QueryStringMiddleware:
    """Refuses a NUL character in any query parameter (name or value) with a JSON 400 naming it."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:  # a cheap test first; then, which parameter
            for name, value in request.GET.lists():
                if "\x00" in name or any("\x00" in item for item in value):
                    name = name.replace("\x00", "\\x00")
                    return JsonResponse(
                        error_body(
                            "Query parameters must not contain NUL characters.",
                            "invalid",
                            {name: ["Must not contain NUL characters."]},
                        ),
                        status=400,
                    )
        return self.get_response(request)
