"""Single sign-on endpoints of a hospital subdomain: the browser's sign-in (/accounts/sso/...) and the admin's
configuration of the hospital's IdP (/api/sso/...)."""

from __future__ import annotations

from dj_rest_auth.jwt_auth import set_jwt_cookies
from dj_rest_auth.utils import jwt_encode
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.http import HttpResponseRedirect
from django.middleware.csrf import get_token
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.security.throttles import SharedRateThrottle
from core.api import MethodPermissions, ServiceError
from sso import services
from sso.models import IdentityProvider
from staff.models import StaffMember
from staff.permissions import ADMIN

# The sign-in's state, in a host-only cookie of the hospital's API host: the callback must come back to the
# browser that started it (no login CSRF), and never to another hospital's host.
STATE_COOKIE = "hospital-sso-state"
STATE_COOKIE_PATH = "/accounts/sso/"


class SsoStartThrottle(SharedRateThrottle):
    """Sign-in starts per client address and hospital (THROTTLE_RATES["sso_start"])."""

    scope = "sso_start"


def _redirect_uri(request) -> str:
    return request.build_absolute_uri(reverse("sso_callback"))


def frontend_url(hospital) -> str:
    return settings.FRONTEND_URL.format(slug=hospital.slug, base_domain=settings.BASE_DOMAIN).rstrip("/") + "/"


def login_complete(request, user, *, redirect_to: str) -> HttpResponseRedirect:
    """Ends a single sign-on exactly like a password login of a browser: the same JWT pair (hospital claim,
    a new token family, from JWT_TOKEN_CLAIMS_SERIALIZER), the same HttpOnly cookies and CSRF cookie, the same
    `user_logged_in` (last_login, `login_succeeded` in the trail). The tokens travel only in cookies of this
    API host; the browser is sent on to the hospital's frontend with nothing in the URL."""
    access, refresh = jwt_encode(user)
    response = HttpResponseRedirect(redirect_to)
    set_jwt_cookies(response, access, refresh)
    get_token(request)  # the CSRF cookie, for the cookie-authenticated writes to come
    user_logged_in.send(sender=type(user), request=request, user=user)
    return response


@extend_schema(
    tags=["sso"],
    summary="Start a single sign-on",
    description=(
        "Redirects the browser to the hospital's identity provider (authorization code flow with PKCE, `state` "
        "and `nonce`). The state also goes into a host-only cookie that the callback checks."
    ),
    auth=[],
    responses={302: OpenApiResponse(description="To the identity provider's authorization endpoint.")},
)
class SignInStartView(MethodPermissions, APIView):
    method_permissions = {"GET": AllowAny}  # anonymous: the IdP's answer, or a signed token, proves it
    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (SsoStartThrottle,)

    def get(self, request):
        url, state = services.signin_start(redirect_uri=_redirect_uri(request))
        response = HttpResponseRedirect(url)
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=settings.SSO_SIGN_IN_SECONDS,
            path=STATE_COOKIE_PATH,
            secure=settings.REST_AUTH["JWT_AUTH_SECURE"],
            httponly=True,
            samesite="Lax",  # sent on the IdP's top-level redirect back to us
        )
        return response


class CallbackSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=2048, required=False)
    state = serializers.CharField(max_length=256, required=False)
    iss = serializers.CharField(max_length=500, required=False)
    error = serializers.CharField(max_length=200, required=False)


@extend_schema(
    tags=["sso"],
    summary="Single sign-on callback",
    description=(
        "Where the identity provider sends the browser back. On success: the login's cookies on this host and a "
        "redirect to the hospital's frontend. Refusals are JSON: `sso_state_invalid`, `sso_code_invalid`, "
        "`sso_token_invalid`, `sso_refused` (403: unverified email, domain not allowed, unknown or deactivated "
        "account), `idp_unavailable` (502)."
    ),
    auth=[],
    parameters=[CallbackSerializer],
    responses={302: OpenApiResponse(description="Signed in: to the hospital's frontend, cookies set.")},
)
class SignInCallbackView(MethodPermissions, APIView):
    method_permissions = {"GET": AllowAny}  # anonymous: the IdP's answer, or a signed token, proves it
    permission_classes = (AllowAny,)
    authentication_classes = ()

    def get(self, request):
        query = CallbackSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        if "error" in data:
            raise ServiceError("The identity provider did not sign you in.", code="sso_denied")
        if "code" not in data or "state" not in data:
            raise ServiceError("The callback needs code and state.", code="invalid")
        user = services.signin_finish(
            hospital=request.tenant,
            state=data["state"],
            cookie_state=request.COOKIES.get(STATE_COOKIE),
            code=data["code"],
            iss=data.get("iss"),
        )
        response = login_complete(request._request, user, redirect_to=frontend_url(request.tenant))
        response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
        return response


class BackchannelLogoutSerializer(serializers.Serializer):
    logout_token = serializers.CharField(max_length=8192)


@extend_schema(
    tags=["sso"],
    summary="OpenID Connect back-channel logout",
    description=(
        "The hospital's IdP posts a logout token here (form-encoded) when its user's session ends: the linked "
        "account's refresh tokens are revoked. Register `https://<slug>.<BASE_DOMAIN>/accounts/sso/"
        "backchannel-logout/` at the IdP as the client's back-channel logout URI."
    ),
    auth=[],
    request={"application/x-www-form-urlencoded": BackchannelLogoutSerializer},
    responses={200: None},
)
class BackchannelLogoutView(MethodPermissions, APIView):
    method_permissions = {"POST": AllowAny}  # anonymous: the IdP's answer, or a signed token, proves it
    permission_classes = (AllowAny,)
    authentication_classes = ()
    parser_classes = (FormParser,)  # the spec's encoding; the API's default parser is JSON only

    def post(self, request):
        data = BackchannelLogoutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.backchannel_logout(logout_token=data.validated_data["logout_token"])
        # No caching of the answer (spec 2.8).
        return Response(status=status.HTTP_200_OK, headers={"Cache-Control": "no-store"})


class ProviderSerializer(serializers.ModelSerializer):
    """The hospital's IdP. The client secret is write-only: stored encrypted, never returned."""

    client_secret = serializers.CharField(
        write_only=True, required=False, max_length=1000, help_text="Required the first time; omit to keep it."
    )
    client_secret_set = serializers.SerializerMethodField()
    allowed_domains = serializers.ListField(child=serializers.CharField(max_length=253), max_length=50)
    break_glass_emails = serializers.ListField(
        child=serializers.CharField(max_length=254),
        max_length=20,
        required=False,
        default=list,
        help_text="With sso_required: the accounts that keep their password (for when the IdP is down).",
    )
    redirect_uri = serializers.SerializerMethodField(
        help_text="What to register at the IdP as this hospital's redirect URI."
    )

    class Meta:
        model = IdentityProvider
        fields = (
            "issuer",
            "client_id",
            "client_secret",
            "client_secret_set",
            "scopes",
            "allowed_domains",
            "first_sign_in",
            "default_role",
            "enabled",
            "sso_required",
            "break_glass_emails",
            "redirect_uri",
            "updated",
        )
        read_only_fields = ("updated",)
        extra_kwargs = {"default_role": {"default": StaffMember.Role.NURSE}}

    def get_client_secret_set(self, provider) -> bool:
        return bool(provider.client_secret_encrypted)

    def get_redirect_uri(self, provider) -> str:
        return _redirect_uri(self.context["request"])


class ProviderTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    error = serializers.CharField()
    issuer = serializers.CharField(required=False)
    authorization_endpoint = serializers.CharField(required=False)
    token_endpoint = serializers.CharField(required=False)
    jwks_uri = serializers.CharField(required=False)
    keys = serializers.ListField(child=serializers.DictField(child=serializers.CharField()), required=False)
    scopes_supported = serializers.ListField(child=serializers.CharField(), required=False)


def _provider_or_404() -> IdentityProvider:
    provider = services.provider_get()
    if provider is None:
        raise ServiceError("No identity provider is configured.", code="not_found", status=status.HTTP_404_NOT_FOUND)
    return provider


class ProviderView(MethodPermissions, APIView):
    method_permissions = {"GET": ADMIN, "PUT": ADMIN, "DELETE": ADMIN}

    @extend_schema(tags=["sso"], summary="The hospital's identity provider", responses={200: ProviderSerializer})
    def get(self, request):
        return Response(ProviderSerializer(_provider_or_404(), context={"request": request}).data)

    @extend_schema(
        tags=["sso"],
        summary="Configure the hospital's identity provider (audited)",
        request=ProviderSerializer,
        responses={200: ProviderSerializer},
    )
    def put(self, request):
        data = ProviderSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        provider = services.provider_save(actor=request.user, client_secret=fields.pop("client_secret", None), **fields)
        return Response(ProviderSerializer(provider, context={"request": request}).data)

    @extend_schema(tags=["sso"], summary="Turn single sign-on off (audited)", responses={204: None})
    def delete(self, request):
        services.provider_delete(actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProviderTestView(MethodPermissions, APIView):
    method_permissions = {"POST": ADMIN}

    @extend_schema(
        tags=["sso"],
        summary="Test the connection to the identity provider",
        description="Fetches its discovery document and key set afresh and reports what it found.",
        request=None,
        responses={200: ProviderTestSerializer},
    )
    def post(self, request):
        return Response(services.provider_test(provider=_provider_or_404()))
