"""/api/sso/ on a hospital subdomain: the hospital admin's configuration of its IdP."""

from django.urls import path

from sso import views

urlpatterns = [
    path("provider/", views.ProviderView.as_view(), name="sso-provider"),
    path("provider/test/", views.ProviderTestView.as_view(), name="sso-provider-test"),
]
