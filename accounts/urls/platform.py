"""/accounts/ on the platform domain: sign-in for platform staff only (no signup, no reset)."""

from dj_rest_auth import views as rest_auth
from django.urls import path

from accounts import views
from accounts.mfa import urls as mfa_urls

# Endpoints that prove who you are by their body (password, refresh token, key)
# skip access-token authentication: a stale access cookie must not block them.
NO_AUTH = ()

urlpatterns = [
    path("login/", views.LoginView.as_view(authentication_classes=NO_AUTH), name="rest_login"),
    path("login/mfa/", views.LoginMfaView.as_view(authentication_classes=NO_AUTH), name="rest_login_mfa"),
    path("logout/", views.LogoutView.as_view(authentication_classes=NO_AUTH), name="rest_logout"),
    path("user/", rest_auth.UserDetailsView.as_view(), name="rest_user_details"),
    path("sessions/", views.SessionListView.as_view(), name="session-list"),
    path("sessions/<str:session_id>/", views.SessionDetailView.as_view(), name="session-detail"),
    path("password/change/", views.PasswordChangeView.as_view(), name="rest_password_change"),
    *mfa_urls.urlpatterns,
    path("mfa/reauthenticate/", views.MfaReauthenticateView.as_view(), name="mfa_reauthenticate"),
    path("token/refresh/", views.TokenRefreshView.as_view(authentication_classes=NO_AUTH), name="token_refresh"),
    path("token/verify/", views.TokenVerifyView.as_view(authentication_classes=NO_AUTH), name="token_verify"),
]
