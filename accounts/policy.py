"""Whether a hospital lets an account use a password at all (login, registration, reset, invitation).

A hospital that requires single sign-on refuses passwords except for its named break-glass accounts. That rule
is `sso`'s, an app above this one: it registers itself here (sso/apps.py), so accounts never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from rest_framework import status
from rest_framework.exceptions import APIException

# rule(hospital_id=..., email=...) -> False: no password for this address at this hospital (email None: a new one)
PasswordRule = Callable[..., bool]
_rules: list[PasswordRule] = []


def password_rule_register(rule: PasswordRule) -> None:
    if rule not in _rules:
        _rules.append(rule)


def password_allowed(*, hospital_id: int | None, email: str | None) -> bool:
    """Asked in the hospital's schema. Platform staff (no hospital) are never subject to a hospital's rule."""
    return hospital_id is None or all(rule(hospital_id=hospital_id, email=email) for rule in _rules)


class PasswordNotAllowed(APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "This hospital signs its staff in with single sign-on: use /accounts/sso/start/."
    default_code = "sso_required"
