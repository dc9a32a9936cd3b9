"""The login attempt budget: an attempt is reserved atomically before any password is looked at.

Three budgets, each a row of `LoginAttemptCounter` (public schema: every web
worker shares them, and they hold through a Redis outage):

- the account from one address (`LOGIN_FAILURE_LIMIT`, 5): the guesser is
  stopped; the owner at home, or a colleague behind the same hospital NAT, is not.
- the account from anywhere (`LOGIN_ACCOUNT_FAILURE_LIMIT`, 15): a guesser
  rotating addresses is stopped too.
- the address, across accounts (`THROTTLE_RATES["login_failures"]`, 100/hour):
  password spraying. Generous, and only failures count, so a hospital's shared
  address with hundreds of correct logins never meets it.

There is deliberately no address-only lock of the accounts themselves.

Every login takes one attempt from all three in one statement, *before* the
password is checked: an `INSERT ... ON CONFLICT DO UPDATE ... WHERE count < limit`
of the three rows, which PostgreSQL serialises on each row. A burst of parallel
guesses therefore gets exactly `limit` password checks; the rest are refused
unchecked (and uncounted, so an attacker who keeps trying cannot push the lock's
end back). If any budget is spent the statement fails and nothing is taken.
A successful login gives its attempt back (and clears the account's failures
from that address), in one statement too; a failed one keeps it, as the failure.

The account budgets end `LOGIN_LOCKOUT_COOLOFF` after their last counted
failure; the address budget is a fixed window of its rate's period. Keys name
the hospital's schema and the canonical email (accounts/addresses.py), so
failures at hospital B never lock the account of the same address at A, and
no spelling of an address has a budget of its own. Unknown emails have budgets
exactly like real ones: the lockout tells nothing about who has an account.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DataError, connection, transaction
from django.utils import timezone
from rest_framework import exceptions, status

from accounts.addresses import canonical_email_or_none
from accounts.models import LoginAttemptCounter
from accounts.security.throttles import parse_rate
from core.http import client_ip
from core.tenancy import current_schema_name

KEY_MAX = 300  # LoginAttemptCounter.key


@dataclass(frozen=True)
class Budget:
    kind: str  # "account-address", "account", "address" or "mfa"
    key: str
    limit: int
    expires_at: datetime  # when the window would end if an attempt were counted now
    refused: type[LoginRefused]


class LoginRefused(exceptions.APIException):
    """Raised by the authentication backend, before the password is checked.

    Not a PermissionDenied, so it passes through Django's `authenticate()` to
    DRF (a 429 with Retry-After) or, from the admin's login form, to
    `accounts.security.middleware.LoginRefusedMiddleware` (the same 429).
    """

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, wait: int) -> None:
        super().__init__(self.message(max(1, math.ceil(wait / 60))))
        self.wait = wait  # DRF's exception handler turns it into Retry-After

    @staticmethod
    def message(minutes: int) -> str:
        raise NotImplementedError


class AccountLocked(LoginRefused):
    default_code = "account_locked"

    @staticmethod
    def message(minutes: int) -> str:
        return f"Too many failed logins. This account is locked here; try again in {minutes} minute(s)."


class SecondFactorLocked(LoginRefused):
    default_code = "mfa_locked"

    @staticmethod
    def message(minutes: int) -> str:
        return f"Too many wrong codes. Sign-in with a second factor is locked; try again in {minutes} minute(s)."


class AddressThrottled(LoginRefused):
    default_code = "throttled"

    @staticmethod
    def message(minutes: int) -> str:
        return f"Too many failed logins from this address. Try again in {minutes} minute(s)."


def _account(email: str) -> str:
    """`<schema>:<canonical email>`, or a digest of what was typed if it is no address at all."""
    schema = current_schema_name()
    canonical = canonical_email_or_none(email)
    if canonical is None:
        canonical = "sha256:" + hashlib.sha256(email.strip().encode()).hexdigest()
    return f"{schema}:{canonical}"


def budgets(request, email: str) -> list[Budget]:
    now = timezone.now()
    account, address = _account(email), client_ip(request)
    cooloff = settings.LOGIN_LOCKOUT_COOLOFF
    found = [
        Budget(
            "account-address",
            f"account-address:{account}|{address}",
            settings.LOGIN_FAILURE_LIMIT,
            now + cooloff,
            AccountLocked,
        ),
        Budget("account", f"account:{account}", settings.LOGIN_ACCOUNT_FAILURE_LIMIT, now + cooloff, AccountLocked),
    ]
    rate = settings.THROTTLE_RATES.get("login_failures")
    if rate:
        limit, period = parse_rate(rate)
        window_end = (int(now.timestamp()) // period + 1) * period
        found.append(
            Budget(
                "address",
                f"address:{current_schema_name()}:{address}",
                limit,
                datetime.fromtimestamp(window_end, tz=now.tzinfo),
                AddressThrottled,
            )
        )
    return [
        b if len(b.key) <= KEY_MAX else replace(b, key="sha256:" + hashlib.sha256(b.key.encode()).hexdigest())
        for b in found
    ]


def second_factor_budgets(user) -> list[Budget]:
    """The budget of wrong second-factor codes (accounts/mfa/): one per account, wherever the guesses come from.

    Whoever reaches this step knows the password, so changing address must buy them nothing.
    """
    key = f"mfa:{current_schema_name()}:{user.pk}"
    ends = timezone.now() + settings.LOGIN_LOCKOUT_COOLOFF
    return [Budget("mfa", key, settings.MFA_FAILURE_LIMIT, ends, SecondFactorLocked)]


_TABLE = LoginAttemptCounter._meta.db_table
# Every budget of a login in one statement. Each row's ON CONFLICT ... WHERE is PostgreSQL's atomic guard
# (the count is read under the row lock); rows are taken in key order (the reservation's and the refund's
# order, so the two never deadlock). A spent budget returns no row, and then the division by zero fails
# the statement: a failed statement leaves nothing behind, so none of the budgets is taken.
_TAKE = f"""
    WITH budget (key, expires_at, lim) AS (SELECT * FROM unnest(%(keys)s::text[], %(expires)s::timestamptz[],
                                                               %(limits)s::int[])),
    taken AS (
        INSERT INTO {_TABLE} AS c (key, count, expires_at)
        SELECT key, 1, expires_at FROM budget ORDER BY key
        ON CONFLICT (key) DO UPDATE
           SET count = CASE WHEN c.expires_at <= %(now)s THEN 1 ELSE c.count + 1 END,
               expires_at = EXCLUDED.expires_at
         WHERE c.expires_at <= %(now)s OR c.count < (SELECT lim FROM budget WHERE budget.key = c.key)
        RETURNING c.key, c.count
    )
    SELECT taken.key, taken.count / (CASE WHEN (SELECT count(*) FROM taken) = %(n)s THEN 1 ELSE 0 END)
      FROM taken
"""
# The refund: the account's failures from this address deleted, one attempt back to the others. Every row
# is touched only once `locked` holds it, and `locked` takes its rows in key order as the reservation does.
_REFUND = f"""
    WITH locked AS (SELECT key FROM {_TABLE} WHERE key = ANY(%(keys)s) ORDER BY key FOR UPDATE),
    cleared AS (DELETE FROM {_TABLE} WHERE key = %(cleared)s AND key IN (SELECT key FROM locked))
    UPDATE {_TABLE} AS c SET count = c.count - 1
      FROM locked
     WHERE c.key = locked.key AND c.key <> %(cleared)s AND c.count > 0 AND c.expires_at > %(now)s
"""


@dataclass
class Reservation:
    budgets: list[Budget]
    counts: list[int] = field(default_factory=list)  # each budget's count with this attempt taken

    def spent(self) -> list[Budget]:
        """The budgets this attempt spent to their limit: if it fails, their locks begin now.

        PostgreSQL hands each count out once, so of any burst exactly one attempt sees a budget reach its limit.
        """
        return [budget for budget, count in zip(self.budgets, self.counts, strict=True) if count >= budget.limit]

    def refund(self) -> None:
        """The password was right: the attempt was no failure (one statement).

        A successful login clears the account's failures from this address only (its row deleted): the
        owner logging in from home must not wipe what a guesser elsewhere has spent. The others get their
        attempt back.
        """
        with connection.cursor() as cursor:
            cursor.execute(
                _REFUND,
                {
                    "cleared": self.budgets[0].key,
                    "keys": [budget.key for budget in self.budgets],
                    "now": timezone.now(),
                },
            )


def attempt_reserve(request, email: str) -> Reservation:
    """Takes one attempt from every budget of this login, or raises the refusal of the first one spent.

    The budgets' rows are always locked in key order (here and by the refund), so two reservations or
    refunds that share counters never deadlock.
    """
    return budgets_take(budgets(request, email))


def budgets_take(found: list[Budget]) -> Reservation:
    """Takes one attempt from each of `found` in one transaction, or raises the refusal of the first one spent."""
    now = timezone.now()
    params: dict[str, Any] = {
        "keys": [budget.key for budget in found],
        "expires": [budget.expires_at for budget in found],
        "limits": [budget.limit for budget in found],
        "now": now,
        "n": len(found),
    }
    try:
        # A savepoint only inside a transaction (the failed statement must not poison it); on its own
        # the statement is atomic.
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
            cursor.execute(_TAKE, params)
            taken = dict(cursor.fetchall())
    except DataError:  # division by zero: a budget is spent, nothing was taken
        taken = {}
    # No row at all when every budget is spent (one budget, as the second factor's, or all of a login's):
    # then there is nothing to divide, and the refusal is the same.
    if len(taken) != len(found):
        spent = _first_spent(found, now)
        ends = (
            LoginAttemptCounter.objects.filter(key=spent.key).values_list("expires_at", flat=True).first()
        ) or spent.expires_at
        raise spent.refused(math.ceil((ends - timezone.now()).total_seconds())) from None
    return Reservation(found, [taken[budget.key] for budget in found])


def _first_spent(found: list[Budget], now: datetime) -> Budget:
    """The first budget (in the reservation's order) at its limit, as a refusal names it."""
    counts = dict(
        LoginAttemptCounter.objects.filter(key__in=[b.key for b in found], expires_at__gt=now).values_list(
            "key", "count"
        )
    )
    return next((b for b in found if counts.get(b.key, 0) >= b.limit), found[0])


def counters_purge() -> int:
    """Deletes the counters whose window has ended (beat runs it); returns how many."""
    deleted, _ = LoginAttemptCounter.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
