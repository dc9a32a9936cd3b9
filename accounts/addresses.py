"""The one canonical form of an email address: for storage, lookups, uniqueness and every limit's key.

Two spellings that anything downstream (PostgreSQL's locale, a mail server,
a person reading it) could take for one address must be one address here, or a
limit keyed on one spelling is dodged with another: PostgreSQL's `UPPER('ſ')` is
`S`, Python's `'ſ'.lower()` is `ſ`, so a lockout keyed on `lower()` and an
account found by `iexact` disagreed (issue 11).

1. Unicode NFKC: compatibility look-alikes become the plain characters
   (`ſ` -> `s`, fullwidth `＠` -> `@`, `ﬁ` -> `fi`).
2. The local part is case-folded and must then be ASCII: Django's
   EmailValidator accepts nothing else, and so no non-ASCII look-alike
   (Cyrillic `а`, dotless `ı`, a zero-width space) can stand in for a letter.
3. The domain is IDNA-encoded (nameprep folds case and drops invisible
   characters; an internationalised domain keeps its `xn--` form) and lower-cased.
4. The result must pass Django's `validate_email` and fit the 254-character column.

The result is plain ASCII, so Python, PostgreSQL and SMTP agree on it byte for
byte and lookups are exact matches.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_LENGTH = 254


class InvalidEmail(ValueError):
    """Not an address we accept, even after normalisation."""


def canonical_email(raw: str | None) -> str:
    """The canonical form of `raw`; raises InvalidEmail if there is none."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    local, at, domain = text.rpartition("@")
    if not (local and at and domain):
        raise InvalidEmail("Enter a valid email address.")
    local = local.casefold()
    if not local.isascii():
        raise InvalidEmail("Only plain (ASCII) letters, digits and symbols are accepted before the @.")
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidEmail("The domain of this email address is not valid.") from exc
    email = f"{local}@{domain}"
    if len(email) > MAX_LENGTH:
        raise InvalidEmail(f"An email address has at most {MAX_LENGTH} characters.")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidEmail("Enter a valid email address.") from exc
    return email


def canonical_email_or_none(raw) -> str | None:
    """For keys and lookups where an invalid address simply matches nothing."""
    if not isinstance(raw, str):
        return None
    try:
        return canonical_email(raw)
    except InvalidEmail:
        return None
