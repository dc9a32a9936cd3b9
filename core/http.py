"""Who sent a request: the client's address, for limits, logs and the audit trail alike."""

import ipaddress
import logging

from django.conf import settings

log = logging.getLogger(__name__)


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or the entry TRUSTED_PROXY_COUNT proxies back in X-Forwarded-For.

    Used by the throttles, the login budget, the logs and the audit trail. With
    no trusted proxy (the default) a client-sent X-Forwarded-For is ignored, so it
    cannot be used to dodge a limit or to lock someone else's address.
    """
    remote = request.META.get("REMOTE_ADDR") or "0.0.0.0"
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        candidate = hops[-min(proxies, len(hops))]
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            log.warning("Unparseable X-Forwarded-For %r; using REMOTE_ADDR", forwarded[:200])
    return remote
