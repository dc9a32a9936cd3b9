"""/accounts/mfa/...: one's own second factors, on a hospital subdomain and on the platform domain alike."""

from django.urls import path

from accounts.mfa import views

urlpatterns = [
    path("mfa/authenticators/", views.AuthenticatorListView.as_view(), name="mfa_authenticators"),
    path("mfa/authenticators/<int:pk>/", views.AuthenticatorDetailView.as_view(), name="mfa_authenticator"),
    path("mfa/totp/", views.TotpBeginView.as_view(), name="mfa_totp_begin"),
    path("mfa/totp/confirm/", views.TotpConfirmView.as_view(), name="mfa_totp_confirm"),
    path("mfa/webauthn/", views.WebauthnBeginView.as_view(), name="mfa_webauthn_begin"),
    path("mfa/webauthn/confirm/", views.WebauthnConfirmView.as_view(), name="mfa_webauthn_confirm"),
    path("mfa/reauthenticate/webauthn/", views.WebauthnStepUpView.as_view(), name="mfa_webauthn_step_up"),
    path("mfa/recovery-codes/", views.RecoveryCodesView.as_view(), name="mfa_recovery_codes"),
]
