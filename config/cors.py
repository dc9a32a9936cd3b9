"""CORS per hospital: a hospital's own frontend origin may call that hospital's API, no other origin may.

corsheaders asks `check_request_enabled` (connected in tenants.apps) whether a
request's Origin is allowed; there is no static origin list. The frontend
origin is FRONTEND_URL filled in for the request's hospital (tenants.links),
so hospital A's frontend gets no CORS headers from hospital B's API.
"""
from urllib.parse import urlsplit

from tenants.links import hospital_link

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """scheme://host[:port] as browsers send it in Origin: lowercase, no default port."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.hostname}"
    return origin if parts.port in (None, _DEFAULT_PORTS.get(parts.scheme)) else f"{origin}:{parts.port}"


def frontend_origins(frontend_url: str, base_domain: str) -> str:
    """Every hospital frontend as one CSRF_TRUSTED_ORIGINS entry, e.g. https://*.app.example.com."""
    return origin_of(frontend_url.format(slug="*", base_domain=base_domain))


def allow_own_frontend(sender, request, **kwargs) -> bool:
    """Receiver of corsheaders' check_request_enabled: the Origin is this hospital's frontend."""
    from django_tenants.utils import get_public_schema_name  # not at import: the settings import this module

    tenant = getattr(request, "tenant", None)
    origin = request.headers.get("Origin")
    if not origin or tenant is None or tenant.schema_name == get_public_schema_name():
        return False  # the platform has no frontend of its own
    try:
        return origin_of(origin) == origin_of(hospital_link(tenant, ""))
    except ValueError:  # a malformed Origin (e.g. a bad port) is just not ours
        return False
