"""Health probes for load balancers and orchestrators: `GET /healthz` (liveness) and `GET /readyz` (readiness).

A middleware, first in MIDDLEWARE, rather than URL routes: probes come by IP address or an internal name, so
they must be answered before the tenant middleware (which would 404 an unknown host and query the routing
table) and before anything calls `request.get_host()` (which would 400 a host outside ALLOWED_HOSTS), and
before SecurityMiddleware's HTTPS redirect. django-health-check's views are URL-routed, hence behind all
that; this is the small part of it we need.

- `/healthz`: the process answers. No I/O at all.
- `/readyz`: the database (`SELECT 1` on this thread's persistent Django connection), the broker (PING over
  one kombu connection of the Celery app, kept per process) and the cache (a read from Redis) each answer
  within a short timeout. 200 `{"status": "ok", "checks": {...}}`, else 503 in the `core.api` error shape
  naming the failed checks. Causes are logged, not returned: the probe is public and they name
  internal hosts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.core.cache import caches
from django.db import connections
from django.http import JsonResponse
from kombu import Connection

from tasks.celery import app as celery_app

logger = logging.getLogger(__name__)

# Per-check socket timeout in seconds (the database's connect timeout is DB_CONNECT_TIMEOUT, whose
# minimum is libpq's 2 s; the cache has its own 0.5 s in CACHES).
BROKER_TIMEOUT = 1.5


def check_database() -> None:
    # Django's own connection of this thread: persistent (CONN_MAX_AGE), replaced if the server dropped it
    # (CONN_HEALTH_CHECKS). No tenant needed: SELECT 1 reads no table.
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


class _BrokerProbe:
    """One kombu connection of the Celery app per process, reused by every probe.

    Not the app's producer pool: its connections have no socket timeout, and a probe must not hang on a
    broker that accepts connections but never answers. kombu connections are not thread-safe, hence the lock.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connection: Connection | None = None

    def __call__(self) -> None:
        if not self.lock.acquire(timeout=BROKER_TIMEOUT):
            raise TimeoutError("another probe is still waiting for the broker")
        try:
            if self.connection is None:
                self.connection = celery_app.connection_for_write(
                    transport_options={"socket_timeout": BROKER_TIMEOUT, "socket_connect_timeout": BROKER_TIMEOUT}
                )
            # Connects (and pings) if never connected; once connected, kombu would not look again.
            self.connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
            # Redis, our broker: redis-py reconnects this client's socket by itself after an outage.
            self.connection.default_channel.client.ping()  # type: ignore[union-attr]  # kombu Redis channel
        finally:
            self.lock.release()


check_broker = _BrokerProbe()


def check_cache() -> None:
    caches["default"].get("readyz")  # a miss is an answer; CACHES sets 0.5 s socket timeouts


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
}


def _json(status: int, body: dict, request) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    # Without it Django's server closes the connection after each probe (no keep-alive).
    response["Content-Length"] = str(len(response.content))
    if request.method == "HEAD":
        response.content = b""
    return response


def readiness() -> dict[str, str]:
    results = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception as exc:  # a probe answers 503, never 500, whatever the client library raises
            logger.warning("readyz: %s check failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = "failed"
        else:
            results[name] = "ok"
    return results


class HealthCheckMiddleware:
    """Answers /healthz and /readyz on any host, before any other middleware; passes everything else on."""

    PATHS = {"/healthz": "live", "/healthz/": "live", "/readyz": "ready", "/readyz/": "ready"}

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        probe = self.PATHS.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = _json(
                405, {"detail": f'Method "{request.method}" not allowed.', "code": "method_not_allowed"}, request
            )
            response["Allow"] = "GET, HEAD"
            return response
        if probe == "live":
            return _json(200, {"status": "ok"}, request)
        checks = readiness()
        failed = [name for name, result in checks.items() if result != "ok"]
        if not failed:
            return _json(200, {"status": "ok", "checks": checks}, request)
        return _json(
            503,
            {
                "status": "unavailable",
                "detail": f"Not ready: {', '.join(failed)} unreachable.",
                "code": "not_ready",
                "checks": checks,
            },
            request,
        )
