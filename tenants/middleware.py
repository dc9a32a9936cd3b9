from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django_tenants.middleware.main import TenantMainMiddleware

from core.api import json_error
from core.tenancy import request_tenant_confirm, request_tenant_confirmed
from tenants.routing import hospital_cached, hospital_lookup, hospital_remember

# Reads with credentials may be routed from the cache: their authentication confirms the routing before
# the view runs, and a read that was not confirmed changes nothing, so its answer can still be replaced.
_CACHEABLE_METHODS = frozenset({"GET", "HEAD"})


def _carries_credentials(request) -> bool:
    return "HTTP_AUTHORIZATION" in request.META or settings.REST_AUTH["JWT_AUTH_COOKIE"] in request.COOKIES


class HospitalTenantMiddleware(TenantMainMiddleware):
    """django-tenants' host -> schema routing, answering bad hosts in JSON, from a cache where it is safe.

    Unknown host names under BASE_DOMAIN get the JSON 404 of
    DEFAULT_NOT_FOUND_TENANT_VIEW; hosts outside ALLOWED_HOSTS get a JSON 400
    here (the parent class answers an empty, non-JSON 404); a suspended
    hospital's host answers 403 to every request.

    A GET or HEAD with a token or the access cookie is routed from this process's cache
    (tenants/routing.py) and confirmed by its authentication; if nothing confirmed it, the host is
    looked up afresh after the view and a suspended or unknown host's answer replaces the view's.
    Every other request is routed from a fresh lookup (one statement, in no particular search_path).
    """

    def __call__(self, request):
        response = self.process_request(request)
        if response is not None:
            return response
        response = self.get_response(request)
        confirmed = request_tenant_confirmed(request)
        if confirmed is None:
            hospital = hospital_lookup(request.tenant.domain_url)  # nothing confirmed the cached routing
            if hospital is None or (hospital.pk == request.tenant.pk and not hospital.is_active):
                return self.refusal(request, hospital)
            # Moved to another hospital: the view, served as the old one, saw no valid credentials for it
            # (they were not confirmed); its answer stands, and the next request routes afresh.
        elif confirmed is not request.tenant:
            hospital_remember(request.tenant.domain_url, confirmed)  # the row as the authentication read it
        return response

    def process_request(self, request):
        try:
            request.get_host()
        except DisallowedHost:
            return json_error(400, "This host name is not served here.", "disallowed_host")
        hostname = self.hostname_from_request(request)
        hospital = None
        if request.method in _CACHEABLE_METHODS and _carries_credentials(request):
            hospital = hospital_cached(hostname)
        if hospital is None:
            hospital = hospital_lookup(hostname)
            if hospital is None or not hospital.is_active:
                return self.refusal(request, hospital, hostname)
            request_tenant_confirm(request, hospital)
        hospital.domain_url = hostname
        request.tenant = hospital
        connection.set_tenant(hospital)  # the search_path is SET at the first query, if it changed
        self.setup_url_routing(request)
        return None

    def refusal(self, request, hospital, hostname=None):
        if hospital is None:
            connection.set_schema_to_public()
            return self.no_tenant_found(request, hostname or request.tenant.domain_url)
        # Suspended: nothing is served, whatever tokens or cookies come with it.
        return json_error(403, "This hospital is suspended.", "hospital_suspended")
