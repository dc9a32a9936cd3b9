"""URLs of every hospital subdomain (<slug>.BASE_DOMAIN, the hospital's schema)."""

from django.urls import include, path

from accounts.security.throttles import INVITATION_ACCEPT
from config.urls_common import catch_all, handler400, handler403, handler404, handler500  # noqa: F401
from core.openapi import docs_path, schema_path
from staff.views import InvitationAcceptView

urlpatterns = [
    # The invitation's acceptance answers like a login; the invitation is the hospital's staff's (staff/).
    path(
        "accounts/invitations/accept/",
        InvitationAcceptView.as_view(authentication_classes=(), throttle_classes=INVITATION_ACCEPT),
        name="invitation_accept",
    ),
    path("accounts/", include("accounts.urls.hospital")),
    schema_path("config.urls_tenants"),
    docs_path(),
    path("api/", include("staff.urls")),
    path("api/", include("hospitals.urls")),
    catch_all,
]
