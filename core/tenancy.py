"""Which hospital a request, a token or a user belongs to, in one vocabulary.

A hospital's requests are served from its schema; the platform's from
"public". Both are written here as a hospital id, ``None`` standing for the
platform, so that users, tokens and requests compare with ``==``.
"""

from __future__ import annotations

from django.db import connection

# The JWT claim naming the hospital a token was issued for (null: the platform).
HOSPITAL_CLAIM = "hospital"


def current_schema_name() -> str:
    """The schema the database connection is in (django-tenants sets it per request or `schema_context`)."""
    return connection.schema_name  # type: ignore[attr-defined]  # django-tenants' connection wrapper


def schema_qualified_cursor(*, prepared: bool = False):
    """A cursor for a statement whose every table is schema-qualified (`public.accounts_user`): it leaves the
    connection's search_path as it is, sending no `SET search_path` (tenants/postgresql_backend); with
    `prepared`, its statements are prepared on the server once per connection, outside a transaction. A
    plain cursor on any other backend."""
    open_cursor = getattr(connection, "schema_qualified_cursor", None)
    return connection.cursor() if open_cursor is None else open_cursor(prepared=prepared)


def current_tenant():
    """The tenant (a `tenants.Hospital`) the database connection is in, or None before any was set."""
    return getattr(connection, "tenant", None)


def request_hospital_id(request) -> int | None:
    """The hospital a request was routed to (``None`` on the platform domain)."""
    tenant = getattr(request, "tenant", None) or current_tenant()
    if tenant is None or tenant.is_platform:
        return None
    return tenant.pk


def user_belongs_here(user, request) -> bool:
    """Hospital staff only at their hospital; platform staff only on the platform domain."""
    return user.hospital_id == request_hospital_id(request)


def token_belongs_here(token, request) -> bool:
    """A JWT names the hospital it was issued for; it is good there and nowhere else."""
    return HOSPITAL_CLAIM in token.payload and token.payload[HOSPITAL_CLAIM] == request_hospital_id(request)


# A request routed from the tenants cache carries an unconfirmed hospital until its authentication reads the
# hospital row and the host's domain in the same query as the user (tenants/routing.py says why).
_CONFIRMED = "hospital_confirmed"


def request_tenant_confirm(request, hospital) -> None:
    """The request's hospital row as just read from the database: the routing it was served by holds."""
    setattr(getattr(request, "_request", request), _CONFIRMED, hospital)  # Django's request under DRF's


def request_tenant_confirmed(request):
    """The hospital row that confirmed the request's routing, or None while unconfirmed."""
    return getattr(getattr(request, "_request", request), _CONFIRMED, None)
