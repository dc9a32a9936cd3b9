"""/accounts/sso/ on a hospital subdomain: the browser's single sign-on."""

from django.urls import path

from sso import views

urlpatterns = [
    path("start/", views.SignInStartView.as_view(), name="sso_start"),
    path("callback/", views.SignInCallbackView.as_view(), name="sso_callback"),
    path("backchannel-logout/", views.BackchannelLogoutView.as_view(), name="sso_backchannel_logout"),
]
