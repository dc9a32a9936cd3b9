"""OpenAPI shapes of the /accounts/ views (dj-rest-auth's, which carry no annotations, and ours)."""

from __future__ import annotations

from drf_spectacular.contrib.rest_auth import SimpleJWTCookieScheme
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from accounts.serializers import UserDetailsSerializer
from core.openapi import DetailSerializer, with_schema


class LoginResponseSerializer(serializers.Serializer):
    access = serializers.CharField(
        help_text="The access token (`Authorization: Bearer <access>`); browsers also get it as the `hospital-access` "
        "cookie."
    )
    refresh = serializers.CharField(
        allow_blank=True,
        help_text="`client: app`: the refresh token, to send in the body of refresh and logout. Browsers: empty, "
        "the refresh token is only in the HttpOnly `hospital-refresh` cookie.",
    )
    user = UserDetailsSerializer()
    access_expiration = serializers.DateTimeField()
    refresh_expiration = serializers.DateTimeField()

    class Meta:
        ref_name = "Login"


class MfaRequiredSerializer(serializers.Serializer):
    mfa_required = serializers.BooleanField(help_text="Always true: the password was right, a second factor is due.")
    mfa_token = serializers.CharField(
        help_text="For `POST /accounts/login/mfa/`: single-use, valid a few minutes, here only (this hospital)."
    )
    methods = serializers.ListField(
        child=serializers.ChoiceField(choices=["totp", "recovery_code"]),
        help_text="The second factors this account can give: `totp` (`code`), `recovery_code` (`recovery_code`).",
    )

    class Meta:
        ref_name = "MfaRequired"


LOGIN_RESULT = PolymorphicProxySerializer(
    component_name="LoginResult",
    serializers=[LoginResponseSerializer, MfaRequiredSerializer],
    resource_type_field_name=None,
)


# Request-only components: COMPONENT_SPLIT_REQUEST adds "Request" to their names (Refresh -> RefreshRequest).


class RefreshRequestSerializer(serializers.Serializer):
    refresh = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The refresh token (clients without cookies). Absent or empty: the `hospital-refresh` cookie, "
        "with the `X-CSRFToken` header.",
    )

    class Meta:
        ref_name = "Refresh"


class RefreshResponseSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="A new access token (browsers also get the `hospital-access` cookie).")
    access_expiration = serializers.DateTimeField()
    refresh = serializers.CharField(
        required=False,
        help_text="Only when the refresh token came in the body: its successor (it rotates). "
        "A refresh token from the cookie is rotated in the cookie and never appears here.",
    )
    refresh_expiration = serializers.DateTimeField(required=False, help_text="With `refresh`.")

    class Meta:
        ref_name = "RefreshResponse"


class TokenVerifyRequestSerializer(serializers.Serializer):
    token = serializers.CharField()

    class Meta:
        ref_name = "TokenVerify"


# Token verify answers `{}`: an empty serializer would be dropped by spectacular ("no response body").
TOKEN_VERIFIED = {"type": "object", "properties": {}, "additionalProperties": False}


class VerifyEmailRequestSerializer(serializers.Serializer):
    key = serializers.CharField()

    class Meta:
        ref_name = "VerifyEmail"


class ResendEmailRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()

    class Meta:
        ref_name = "ResendEmail"


class HospitalJWTScheme(SimpleJWTCookieScheme):
    """`Authorization: Bearer <access>` or the `hospital-access` cookie, valid only where it was issued."""

    target_class = "accounts.authentication.HospitalJWTAuthentication"


class LoginViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.LoginView"

    def view_replacement(self):
        return with_schema(
            self.target_class,
            post={
                "responses": LOGIN_RESULT,
                "summary": "Log in (email and password)",
                "description": "Verified accounts of this hospital (or platform staff, on the platform domain) only. "
                "Browsers (`client` absent or `browser`): sets the `hospital-access`, `hospital-refresh` (HttpOnly) "
                "and `csrftoken` cookies, and `refresh` is empty. `client: app` (no cookie jar): no cookies, the "
                "refresh token is in `refresh`. Creates no session. Too many failures for one account answer 429. "
                "An account with a second factor gets no tokens and no cookies: the answer is `MfaRequired`, "
                "and `POST /accounts/login/mfa/` with its `mfa_token` and a code completes the login.",
            },
        )


class LogoutViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.LogoutView"

    def view_replacement(self):
        return with_schema(
            self.target_class,
            get={"exclude": True},
            post={
                "request": RefreshRequestSerializer,
                "responses": DetailSerializer,
                "summary": "Log out: blacklist the refresh token, clear the cookies",
                "description": "The refresh token comes from the body, else the "
                "`hospital-refresh` cookie (then with the `X-CSRFToken` header, "
                "else 403 `csrf_failed`); none: 401 `refresh_missing`.",
            },
        )


class PasswordChangeViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.PasswordChangeView"

    def view_replacement(self):
        return with_schema(self.target_class, post={"responses": DetailSerializer})


class PasswordResetConfirmViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.PasswordResetConfirmView"

    def view_replacement(self):
        return with_schema(self.target_class, post={"responses": DetailSerializer})


class TokenRefreshViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.TokenRefreshView"

    def view_replacement(self):
        return with_schema(
            self.target_class,
            post={
                "request": RefreshRequestSerializer,
                "responses": RefreshResponseSerializer,
                "description": "The refresh token comes from the body, else the `hospital-refresh` cookie (then "
                "with the `X-CSRFToken` header, else 403 `csrf_failed`). It rotates, and its successor goes back the "
                "way it came: in the body's `refresh`, or in the cookie.",
            },
        )


class TokenVerifyViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.TokenVerifyView"

    def view_replacement(self):
        return with_schema(
            self.target_class,
            post={
                "request": TokenVerifyRequestSerializer,
                "responses": OpenApiResponse(TOKEN_VERIFIED, description="The token is usable here."),
                "description": "200 `{}` for a token valid at this hospital; 401 `token_not_valid` for any other "
                "(expired, forged, blacklisted, another hospital's).",
            },
        )


class RegisterViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.RegisterView"

    def view_replacement(self):
        return with_schema(self.target_class, post={"responses": {201: DetailSerializer}})


class VerifyEmailViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.VerifyEmailView"

    def view_replacement(self):
        return with_schema(
            self.target_class,
            get={"exclude": True},
            post={"request": VerifyEmailRequestSerializer, "responses": DetailSerializer},
        )


class ResendEmailVerificationViewExtension(OpenApiViewExtension):
    target_class = "accounts.views.ResendEmailVerificationView"

    def view_replacement(self):
        return with_schema(
            self.target_class, post={"request": ResendEmailRequestSerializer, "responses": {200: DetailSerializer}}
        )


def _link_extension(view_path: str, name: str, *params: str):
    response = type(
        f"{name}Serializer",
        (serializers.Serializer,),
        {
            "detail": serializers.CharField(help_text="What to POST, and where."),
            **{p: serializers.CharField() for p in params},
            "Meta": type("Meta", (), {"ref_name": name}),
        },
    )

    class Extension(OpenApiViewExtension):
        target_class = view_path

        def view_replacement(self):
            return with_schema(self.target_class, get={"responses": response, "summary": "Where an email link lands"})

    Extension.__name__ = f"{name}Extension"
    return Extension


EmailConfirmLinkExtension = _link_extension("accounts.views.EmailConfirmLinkView", "EmailConfirmLink", "key")
InvitationLinkExtension = _link_extension("accounts.views.InvitationLinkView", "InvitationLink", "token")
PasswordResetLinkExtension = _link_extension(
    "accounts.views.PasswordResetLinkView", "PasswordResetLink", "uid", "token"
)
