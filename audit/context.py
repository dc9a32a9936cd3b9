"""Where the current request came from, for audit records made deep inside services."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from core.http import client_ip


@dataclass(frozen=True)
class Origin:
    ip: str | None = None
    user_agent: str = ""
    request: object | None = None  # the HttpRequest, to find its authenticated user late


current_origin: ContextVar[Origin] = ContextVar("audit_origin", default=Origin())  # noqa: B039 (frozen)


class AuditOriginMiddleware:
    """Remembers the client's address (behind TRUSTED_PROXY_COUNT proxies, as the limits see it) and user agent."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_origin.set(
            Origin(ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")[:500], request=request)
        )
        try:
            return self.get_response(request)
        finally:
            current_origin.reset(token)
