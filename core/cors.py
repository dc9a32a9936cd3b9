"""CORS per hospital: a hospital's own frontend origin may call that hospital's API, no other origin may.

corsheaders asks `check_request_enabled` (connected in tenants.apps) whether a
request's Origin is allowed; there is no static origin list. The frontend
origin is FRONTEND_URL filled in for the hospital the Host names
(`<slug>.<BASE_DOMAIN>`, the only domain a hospital ever has), so hospital A's
frontend gets no CORS headers from hospital B's API.

Reading the slug from the Host, not from `request.tenant`, lets CorsMiddleware
run before the tenant middleware: its own answers (403 hospital_suspended,
404 for an unknown hospital) reach the frontend as readable JSON instead of a
bare network error.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """scheme://host[:port] as browsers send it in Origin: lowercase, no default port."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.hostname}"
    return origin if parts.port in (None, _DEFAULT_PORTS.get(parts.scheme)) else f"{origin}:{parts.port}"


def frontend_origins(frontend_url: str, base_domain: str) -> str:
    """Every hospital frontend as one CSRF_TRUSTED_ORIGINS entry, e.g. https://*.app.example.com."""
    return origin_of(frontend_url.format(slug="*", base_domain=base_domain))


def hospital_slug_of_host(host: str) -> str | None:
    """'alpha' for 'alpha.<BASE_DOMAIN>[:port]'; None for the platform domain or any other host."""
    domain, _ = split_domain_port(host)
    slug, dot, rest = domain.partition(".")
    return slug if dot and slug and rest == settings.BASE_DOMAIN.lower() else None


def allow_own_frontend(sender, request, **kwargs) -> bool:
    """Receiver of corsheaders' check_request_enabled: the Origin is this hospital's frontend."""
    origin = request.headers.get("Origin")
    slug = hospital_slug_of_host(request.META.get("HTTP_HOST", ""))
    if not origin or slug is None:
        return False  # the platform has no frontend of its own
    try:
        own = settings.FRONTEND_URL.format(slug=slug, base_domain=settings.BASE_DOMAIN)
        return origin_of(origin) == origin_of(own)
    except ValueError:  # a malformed Origin (e.g. a bad port) is just not ours
        return False
