"""/accounts/ on a hospital subdomain: the seed's dj-rest-auth paths, hospital-scoped."""

from dj_rest_auth import views as rest_auth
from django.urls import path

from accounts import views
from accounts.mfa import urls as mfa_urls
from accounts.security import throttles

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
    path(
        "password/reset/",
        rest_auth.PasswordResetView.as_view(authentication_classes=NO_AUTH, throttle_classes=throttles.PASSWORD_RESET),
        name="rest_password_reset",
    ),
    path(
        "password/reset/confirm/",
        views.PasswordResetConfirmView.as_view(authentication_classes=NO_AUTH),
        name="rest_password_reset_confirm",
    ),
    path(
        "password/reset/confirm/<str:uid>/<str:token>/",
        views.PasswordResetLinkView.as_view(),
        name="password_reset_confirm",
    ),
    *mfa_urls.urlpatterns,
    path("mfa/reauthenticate/", views.MfaReauthenticateView.as_view(), name="mfa_reauthenticate"),
    path("token/refresh/", views.TokenRefreshView.as_view(authentication_classes=NO_AUTH), name="token_refresh"),
    path("token/verify/", views.TokenVerifyView.as_view(authentication_classes=NO_AUTH), name="token_verify"),
    path(
        "registration/",
        views.RegisterView.as_view(authentication_classes=NO_AUTH, throttle_classes=throttles.REGISTRATION),
        name="rest_register",
    ),
    path(
        "registration/verify-email/",
        views.VerifyEmailView.as_view(authentication_classes=NO_AUTH),
        name="rest_verify_email",
    ),
    path(
        "registration/resend-email/",
        views.ResendEmailVerificationView.as_view(
            authentication_classes=NO_AUTH, throttle_classes=throttles.REGISTRATION
        ),
        name="rest_resend_email",
    ),
    path("invitations/accept/<str:token>/", views.InvitationLinkView.as_view(), name="invitation_link"),
    path(
        "registration/account-confirm-email/<str:key>/",
        views.EmailConfirmLinkView.as_view(),
        name="account_confirm_email",
    ),
]
