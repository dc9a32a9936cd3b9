"""Rate limits for the endpoints that send mail or hash passwords without a login.

(Failed logins are limited by the attempt budget in PostgreSQL: accounts/security/attempts.py.)

Each limit is a fixed window counted by a `RateCounter`, given to the throttle
(`SharedRateThrottle(counter=...)`); DRF builds throttles without arguments, and
then they use the process's `rate_counter()`: the shared cache (Redis,
`CACHES["default"]`), so every web worker counts against the same limit, with
one `add` + `incr` per request, both atomic in Redis (DRF's own throttles read,
modify and write a list, which lets concurrent workers all pass).

If the cache cannot be reached the limit does not disappear: the counter falls
back to an in-process one with the same rate (so the effective limit is at most
rate x processes), logs it, and tries Redis again after
`THROTTLE_FALLBACK_RETRY_SECONDS`. It never answers 500 and never lets everything through.

Rates come from `settings.THROTTLE_RATES` (`"<n>/<second|minute|hour|day>"`),
read on every request so that tests and deploys can change them; a change of the
counter's settings (tests do that) gives the process a new counter.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from typing import Protocol

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework.throttling import BaseThrottle

from accounts.addresses import canonical_email_or_none
from core.http import client_ip
from core.tenancy import current_schema_name

log = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'5/hour' -> (5, 3600)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


class RateCounter(Protocol):
    def hit(self, key: str, period: int) -> tuple[int, float]:
        """Counts one request under `key` in its current window of `period` seconds: (its count, seconds left)."""
        ...


class LocalCounter:
    """Fixed windows in a dict: one process's own counts."""

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


class CacheCounter:
    """Counts in a shared cache; while it is unreachable, in `fallback` (a LocalCounter unless given)."""

    def __init__(
        self,
        *,
        cache: BaseCache | None = None,
        cache_alias: str = "default",
        fallback: RateCounter | None = None,
        retry_seconds: float = 5.0,
    ) -> None:
        self.cache, self.cache_alias = cache, cache_alias
        self.fallback = fallback if fallback is not None else LocalCounter()
        self.retry_seconds = retry_seconds
        self.down_until = 0.0  # monotonic time before which the cache is not tried again
        self.lock = threading.Lock()

    def hit(self, key: str, period: int) -> tuple[int, float]:
        if time.monotonic() >= self.down_until:
            window = int(time.time() // period)
            try:
                cache = self.cache if self.cache is not None else caches[self.cache_alias]
                windowed = f"{key}:{window}"
                cache.add(windowed, 0, period + 1)  # starts the window's counter, if nobody has yet
                return cache.incr(windowed), (window + 1) * period - time.time()
            except ValueError:  # the key expired between add and incr: count this one alone
                return 1, period
            except Exception as exc:  # redis.exceptions.RedisError, OSError, ...
                with self.lock:
                    self.down_until = time.monotonic() + self.retry_seconds
                log.warning(
                    "Throttle cache unreachable (%s: %s); per-process limits for %ss",
                    type(exc).__name__,
                    exc,
                    self.retry_seconds,
                )
        return self.fallback.hit(key, period)


@functools.cache
def rate_counter() -> RateCounter:
    """The process's counter, for throttles built without one (as DRF builds them)."""
    return CacheCounter(retry_seconds=settings.THROTTLE_FALLBACK_RETRY_SECONDS)


@receiver(setting_changed)
def _counter_settings_changed(*, setting: str, **kwargs) -> None:
    if setting in ("CACHES", "THROTTLE_FALLBACK_RETRY_SECONDS"):
        rate_counter.cache_clear()


class SharedRateThrottle(BaseThrottle):
    """A fixed-window limit per (scope, hospital, ident), counted by `counter`."""

    scope: str = ""

    def __init__(self, counter: RateCounter | None = None) -> None:
        self.counter = counter if counter is not None else rate_counter()

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
        # The hospital is part of the key: each hospital's limits are its own.
        count, self.remaining = self.counter.hit(f"throttle:{self.scope}:{current_schema_name()}:{ident}", self.period)
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
