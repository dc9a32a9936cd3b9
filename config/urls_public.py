"""URLs of the platform domain (BASE_DOMAIN, public schema): platform staff only."""

from django.contrib import admin
from django.urls import include, path

from config.urls_common import catch_all, handler400, handler403, handler404, handler500  # noqa: F401
from core.openapi import docs_path, schema_path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls.platform")),
    schema_path("config.urls_public"),
    docs_path(),
    path("api/platform/", include("tenants.urls")),
    catch_all,
]
