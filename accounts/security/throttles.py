"""Rate limits for the endpoints that send mail or hash passwords without a login.

(Failed logins are limited by the attempt budget in PostgreSQL: accounts/security/attempts.py.)

Counters live in the shared cache (Redis, `CACHES["default"]`), so every web
worker counts against the same limit. Each counter is a fixed window: one
`add` + `incr` per request, both atomic in Redis (DRF's own throttles read,
modify and write a list, which lets concurrent workers all pass).

If the cache cannot be reached the limit does not disappear: each process
falls back to an in-memory counter with the same rate (so the effective limit
is at most rate x processes), logs it, and tries Redis again after
`FALLBACK_RETRY_SECONDS`. It never answers 500 and never lets everything through.

Rates come from `settings.THROTTLE_RATES` (`"<n>/<second|minute|hour|day>"`),
read on every request so that tests and deploys can change them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from accounts.addresses import canonical_email_or_none
from core.http import client_ip
from core.tenancy import current_schema_name

log = logging.getLogger(__name__)

FALLBACK_RETRY_SECONDS = 5.0
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'5/hour' -> (5, 3600)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


class _LocalCounters:
    """The per-process stand-in for the shared cache: fixed windows in a dict."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[str, tuple[float, int]] = {}  # key -> (window end, count)

    def hit(self, key: str, period: int) -> tuple[int, float]:
        now = time.monotonic()
        with self.lock:
            if len(self.windows) > 10_000:  # drop expired windows now and then
                self.windows = {k: v for k, v in self.windows.items() if v[0] > now}
            end, count = self.windows.get(key, (0.0, 0))
            if end <= now:
                end, count = now + period, 0
            count += 1
            self.windows[key] = (end, count)
            return count, end - now


_local = _LocalCounters()
_cache_down_until = 0.0  # monotonic time before which the shared cache is not tried again
_cache_down_lock = threading.Lock()


def _count(key: str, window: int, period: int, cache_alias: str) -> tuple[int, float]:
    """The window's count after counting this request, and its seconds left."""
    global _cache_down_until
    if time.monotonic() >= _cache_down_until:
        try:
            cache = caches[cache_alias]
            left = (window + 1) * period - time.time()
            cache.add(key, 0, period + 1)  # starts the window's counter, if nobody has yet
            return cache.incr(key), left
        except ValueError:  # the key expired between add and incr: count this one alone
            return 1, period
        except Exception as exc:  # redis.exceptions.RedisError, OSError, ...
            with _cache_down_lock:
                _cache_down_until = time.monotonic() + FALLBACK_RETRY_SECONDS
            log.warning(
                "Throttle cache unreachable (%s: %s); per-process limits for %ss",
                type(exc).__name__,
                exc,
                FALLBACK_RETRY_SECONDS,
            )
    # The cache's key function adds the schema; the local fallback adds it here.
    local_key = f"{current_schema_name()}:{key}"
    return _local.hit(local_key, period)


class SharedRateThrottle(BaseThrottle):
    """A fixed-window limit per (scope, hospital, ident) in the shared cache, with a local fallback."""

    scope: str = ""
    cache_alias = "default"

    def counted_as(self, request) -> str | None:
        """Who is counted; None: this throttle does not apply to the request."""
        return client_ip(request)

    def allow_request(self, request, view) -> bool:
        rate = settings.THROTTLE_RATES.get(self.scope)
        if not rate:
            return True
        ident = self.counted_as(request)
        if ident is None:
            return True
        self.limit, self.period = parse_rate(rate)
        window = int(time.time() // self.period)
        # The cache's key function adds the schema; the local fallback adds it here.
        key = f"throttle:{self.scope}:{window}:{ident}"
        count, self.remaining = _count(key, window, self.period, self.cache_alias)
        return count <= self.limit

    def wait(self) -> float:
        return max(1.0, float(getattr(self, "remaining", 1.0)))


class RegistrationThrottle(SharedRateThrottle):
    """Sign-ups (and verification-mail resends) per client address."""

    scope = "registration"


class PasswordResetThrottle(SharedRateThrottle):
    """Reset requests per client address."""

    scope = "password_reset"


class InvitationAcceptThrottle(SharedRateThrottle):
    """Invitation acceptances (token guesses, password hashing) per client address."""

    scope = "invitation_accept"


class EmailThrottle(SharedRateThrottle):
    """Mails caused for one address, whoever asks from wherever: no mail-bombing one inbox.

    Applied alike whether or not the address has an account, so it tells nothing.
    """

    scope = "email"

    def counted_as(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        email = canonical_email_or_none(data.get("email"))  # every spelling of an inbox counts as one
        if email is None:
            return None  # the view answers 400 without sending anything
        return hashlib.sha256(email.encode()).hexdigest()[:32]


REGISTRATION = (RegistrationThrottle, EmailThrottle)
PASSWORD_RESET = (PasswordResetThrottle, EmailThrottle)
INVITATION_ACCEPT = (InvitationAcceptThrottle,)
