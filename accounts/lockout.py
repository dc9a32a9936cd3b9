"""Login lockout with django-axes: failed logins counted per account and per client address.

Records are axes' `AccessAttempt` rows in the public schema (axes is a shared
app), so every web worker sees the same counts; an increment is a
`SELECT ... FOR UPDATE` in PostgreSQL, so concurrent failures are all counted.

Two dimensions, each with its own limit, within `AXES_COOLOFF_TIME`:

- the account from one address (`AXES_FAILURE_LIMIT`, 5): the guesser is
  stopped; the same account from another address (its owner at home, a
  colleague's workstation behind the same hospital NAT is another account) is not.
- the account from anywhere (`AXES_ACCOUNT_FAILURE_LIMIT`, 3x that): a
  guesser rotating addresses is stopped too.

There is deliberately no address-only lock: a hospital's staff often share
one public address, and one attacker there could lock everybody out. Spraying
many accounts from one address is what `LoginFailureThrottle` is for: a
generous limit on failures (not logins) per address (accounts/throttles.py).

The account key is "<schema>:<email lowercased>": failures at hospital B
with the email of an account of hospital A (which B answers like any wrong
password) never lock A's account. Unknown emails are counted and locked
exactly like real ones, so the lockout tells nothing about who has an account.
"""
from __future__ import annotations

import hashlib
import math

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db import connection
from django.db.models import Max, Sum
from django.http import JsonResponse
from django.utils import timezone
from rest_framework import exceptions, status

from config.api import error_body

USERNAME_MAX = 255  # AccessAttempt.username


def lockout_username(request, credentials: dict | None) -> str | None:
    """AXES_USERNAME_CALLABLE: "<schema>:<email>" for our API ("email") and Django's admin ("username")."""
    credentials = credentials or {}
    raw = credentials.get("email") or credentials.get("username")
    if raw is None:
        data = getattr(request, "data", None)
        if not isinstance(data, dict):
            data = request.POST
        raw = data.get("email") or data.get("username")
    if not isinstance(raw, str) or not raw.strip():
        return None
    tenant = getattr(request, "tenant", None)
    schema = tenant.schema_name if tenant is not None else connection.schema_name
    key = f"{schema}:{raw.strip().lower()}"
    if len(key) > USERNAME_MAX:  # an absurd "email" must not become a database error
        key = f"{schema}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def _limits() -> tuple[int, int]:
    return settings.AXES_FAILURE_LIMIT, settings.AXES_ACCOUNT_FAILURE_LIMIT


class HospitalAxesHandler(AxesDatabaseHandler):
    """axes' database handler with a separate, higher limit for the account alone."""

    def _attempts(self, request, credentials):
        since = get_cool_off_threshold(request)
        account = AccessAttempt.objects.filter(username=get_client_username(request, credentials),
                                               attempt_time__gte=since)
        return account.filter(ip_address=request.axes_ip_address), account

    def get_failures(self, request, credentials: dict | None = None) -> int:
        """Failures scaled to AXES_FAILURE_LIMIT.

        axes locks when this reaches AXES_FAILURE_LIMIT: that is when the
        account-and-address count reaches it, or the account's count reaches
        AXES_ACCOUNT_FAILURE_LIMIT.
        """
        from_here, account = self._attempts(request, credentials)
        limit, account_limit = _limits()
        here = from_here.aggregate(n=Sum("failures_since_start"))["n"] or 0
        total = account.aggregate(n=Sum("failures_since_start"))["n"] or 0
        return max(here, total * limit // account_limit)

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        """After a successful login (AXES_RESET_ON_SUCCESS): forget this address's failures only.

        The owner's login from home must not wipe out what a guesser elsewhere
        has spent against the account's own limit.
        """
        count, _ = AccessAttempt.objects.filter(username=get_client_username(request, credentials),
                                                ip_address=request.axes_ip_address).delete()
        return count

    def locked_until(self, request, credentials: dict | None = None):
        """When the lock ends at the latest (its newest counted failure + the cool-off), or None."""
        ends = []
        for attempts, limit in zip(self._attempts(request, credentials), _limits(), strict=True):
            found = attempts.aggregate(n=Sum("failures_since_start"), last=Max("attempt_time"))
            if (found["n"] or 0) >= limit:
                ends.append(found["last"] + get_cool_off(request))
        return max(ends) if ends else None


class AccountLocked(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "account_locked"

    def __init__(self, wait: int) -> None:
        minutes = max(1, math.ceil(wait / 60))
        super().__init__(f"Too many failed logins. This account is locked here; try again in {minutes} minute(s).")
        self.wait = wait  # DRF's exception handler turns it into Retry-After


def seconds_locked(request, credentials: dict) -> int | None:
    """Seconds until this login may be tried again, or None if it may be tried now."""
    if AxesProxyHandler.is_allowed(request, credentials):
        return None
    handler = AxesProxyHandler.get_implementation()
    until = handler.locked_until(request, credentials) if isinstance(handler, HospitalAxesHandler) else None
    if until is None:  # blacklisted, or another handler: the full cool-off
        return int(get_cool_off(request).total_seconds())
    return max(1, math.ceil((until - timezone.now()).total_seconds()))


def raise_if_locked(request, email: str) -> None:
    wait = seconds_locked(request, {"email": email})
    if wait is not None:
        raise AccountLocked(wait)


def lockout_response(request, original_response=None, credentials=None) -> JsonResponse:
    """AXES_LOCKOUT_CALLABLE, for logins outside our API (Django's admin): the same 429."""
    wait = seconds_locked(request, credentials or {}) or int(get_cool_off(request).total_seconds())
    exc = AccountLocked(wait)
    response = JsonResponse(error_body(exc.detail, exc.default_code), status=exc.status_code)
    response["Retry-After"] = str(wait)
    return response
