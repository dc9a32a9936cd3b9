"""Host -> hospital, from a per-process cache that is never trusted alone.

The cache saves the domain lookup (and the `SET search_path = public` it needed) on the hot path: a
request that carries a token or the access cookie. Such a request is confirmed in band: the
authentication's one user query joins the user's hospital row and checks that the host still routes to
it (`accounts.authentication`), so a suspension, a reactivation or a domain change made by any process
is seen by the very next request, in every process, with no invalidation message to lose. Whatever the
authentication does not confirm (an anonymous request, a failed or absent authentication) is routed
from a fresh lookup (`tenants.middleware`). The services that change routing also drop this process's
entries (`hospital_routing_forget`), so the process that made a change does not even try a stale entry.
"""

from __future__ import annotations

import copy

from tenants.models import Hospital

# Hosts kept per process; past this the cache starts again from empty (1,000 hospitals fit ten times).
CACHE_MAX_HOSTS = 10_000

_cache: dict[str, Hospital] = {}  # host -> hospital; dict operations are atomic under the GIL

# Schema-qualified, so it runs on whatever search_path the connection is on: no `SET search_path = public`.
_LOOKUP = (
    'SELECT h.* FROM "public"."tenants_hospital" h'
    ' JOIN "public"."tenants_domain" d ON d.tenant_id = h.id WHERE d.domain = %s'
)


def hospital_cached(host: str) -> Hospital | None:
    """This process's copy of the hospital `host` routed to when last looked up, unconfirmed; None if unknown.

    The platform's host is never cached: platform requests are few and always looked up.
    """
    hospital = _cache.get(host)
    return None if hospital is None else copy.copy(hospital)  # each request may set attributes on its own


def hospital_lookup(host: str) -> Hospital | None:
    """The hospital `host` routes to now (one statement), remembered for later requests with credentials."""
    hospital = next(iter(Hospital.objects.raw(_LOOKUP, [host])), None)
    if hospital is None:
        _cache.pop(host, None)
    else:
        hospital_remember(host, hospital)
    return hospital


def hospital_remember(host: str, hospital: Hospital) -> None:
    """Caches a hospital row just read from the database for `host` (not the platform's)."""
    if hospital.is_platform:
        return
    if len(_cache) >= CACHE_MAX_HOSTS:
        _cache.clear()
    _cache[host] = copy.copy(hospital)


def hospital_routing_forget(*, hospital: Hospital) -> None:
    """Drops this process's entries for `hospital` (other processes confirm each use, see the module doc)."""
    for host, cached in list(_cache.items()):
        if cached.pk == hospital.pk:
            _cache.pop(host, None)
