from django.core.exceptions import DisallowedHost
from django_tenants.middleware.main import TenantMainMiddleware

from core.api import json_error


class HospitalTenantMiddleware(TenantMainMiddleware):
    """django-tenants' host -> schema routing, answering bad hosts in JSON.

    Unknown host names under BASE_DOMAIN get the JSON 404 of
    DEFAULT_NOT_FOUND_TENANT_VIEW; hosts outside ALLOWED_HOSTS get a JSON 400
    here (the parent class answers an empty, non-JSON 404); a suspended
    hospital's host answers 403 to every request.
    """

    def process_request(self, request):
        try:
            request.get_host()
        except DisallowedHost:
            return json_error(400, "This host name is not served here.", "disallowed_host")
        response = super().process_request(request)
        if response is None and not request.tenant.is_active:
            # Suspended: nothing is served, whatever tokens or cookies come with it.
            return json_error(403, "This hospital is suspended.", "hospital_suspended")
        return response
