"""dj-rest-auth's views, made hospital-aware where the stock ones are not.

Each subclass changes one thing; everything else is dj-rest-auth's. Each carries its OpenAPI description
(`extend_schema_view`: dj-rest-auth's handlers are described without being rewritten); the shapes that
dj-rest-auth and simplejwt leave undescribed are in accounts/serializers.py.
"""

import time
from datetime import UTC, datetime

from allauth.account.models import EmailAddress
from dj_rest_auth import views as rest_auth
from dj_rest_auth.app_settings import api_settings as rest_auth_settings
from dj_rest_auth.jwt_auth import get_refresh_view, unset_jwt_cookies
from dj_rest_auth.registration import views as registration
from django.contrib.auth.signals import user_logged_in
from django.http import Http404
from django.middleware.csrf import get_token
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import UntypedToken
from rest_framework_simplejwt.views import TokenVerifyView as SimpleJWTVerifyView

from accounts import selectors, services
from accounts.authentication import csrf_enforce
from accounts.mfa.policy import ENROL_CLAIM, mfa_required_for
from accounts.mfa.services import (
    Challenge,
    mfa_challenge_start,
    mfa_login_verify,
    mfa_methods,
    mfa_reauthenticate,
    step_up_check,
)
from accounts.models import LoginSession
from accounts.permissions import IsTenantMember
from accounts.security.tokens import FAMILY_CLAIM, refresh_token_from, refresh_token_here, session_start, sessions_end
from accounts.serializers import (
    APP,
    BROWSER,
    LOGIN_RESULT,
    TOKEN_VERIFIED,
    EmailConfirmLinkSerializer,
    HospitalTokenRefreshSerializer,
    HospitalTokenVerifySerializer,
    InvitationLinkSerializer,
    LoginMfaSerializer,
    LoginResponseSerializer,
    MfaReauthenticateSerializer,
    MfaRequiredSerializer,
    PasswordResetLinkSerializer,
    RefreshRequestSerializer,
    RefreshResponseSerializer,
    ResendEmailRequestSerializer,
    ResendEmailVerificationSerializer,
    TokenVerifyRequestSerializer,
    VerifyEmailRequestSerializer,
)
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import MethodPermissions, error_body
from core.openapi import DetailSerializer
from core.tenancy import request_hospital_id


@extend_schema_view(
    post=extend_schema(
        responses=LOGIN_RESULT,
        summary="Log in (email and password)",
        description="Verified accounts of this hospital (or platform staff, on the platform domain) only. "
        "Browsers (`client` absent or `browser`): sets the `hospital-access`, `hospital-refresh` (HttpOnly) "
        "and `csrftoken` cookies, and `refresh` is empty. `client: app` (no cookie jar): no cookies, the "
        "refresh token is in `refresh`. Creates no session. Too many failures for one account answer 429. "
        "An account with a second factor gets no tokens and no cookies: the answer is `MfaRequired`, and "
        "`POST /accounts/login/mfa/` with its `mfa_token` and a code completes the login.",
    )
)
class LoginView(rest_auth.LoginView):
    """Browsers get their tokens in HttpOnly cookies; `client: app` gets the refresh token in the body, no cookies.

    Failed logins are limited by the attempt budget in the backend (accounts/security/attempts.py), not a throttle.
    An account with a second factor gets no tokens here: a correct password answers `mfa_required` and an
    `mfa_token` for `LoginMfaView` (accounts/mfa/services.py).
    """

    client = BROWSER  # the validated `client` of the body (accounts.serializers.ClientField)
    challenge: Challenge | None = None  # set when the password was right and a second factor is due
    methods: list[str] = []

    def login(self):
        self.client = self.serializer.validated_data["client"]
        user = self.serializer.validated_data["user"]
        self.methods = mfa_methods(user)
        if self.methods:
            self.user = user
            self.challenge = mfa_challenge_start(user=user, request=self.request, client=self.client)
            return
        self.login_complete(user)

    def login_complete(self, user, **claims) -> None:
        """Completes a login, whatever proved who the user is: a token family (with `claims`) and the login event.

        `get_response()` then answers it (cookies or the `client: app` body). Every way of logging in ends here
        (a password, a password and a second factor, an accepted invitation). An account that must have a second
        factor (accounts/mfa/policy.py) and logs in without one gets tokens that only open its enrolment.
        """
        self.user = user
        if "mfa_at" not in claims and mfa_required_for(user):
            claims[ENROL_CLAIM] = True  # no second factor yet, and one is required: it may only enrol one
        refresh = session_start(user=user, request=self.request)  # a new token family: the session
        for name, value in claims.items():
            refresh[name] = value
        self.refresh_token, self.access_token = refresh, refresh.access_token
        # No Django session login happens, so announce the login ourselves
        # (Django's own receiver records last_login; audit's records the event).
        user_logged_in.send(sender=type(user), request=self.request._request, user=user)

    def get_response(self):
        if self.challenge is not None:  # no tokens and no cookies until the second factor
            body = {
                "mfa_required": True,
                "mfa_token": self.challenge.mfa_token,
                "methods": self.methods,
                "webauthn": self.challenge.webauthn_options,
            }
            return Response(MfaRequiredSerializer(body).data)
        if self.client == APP:
            response = super().get_response()
            response.data["refresh"] = str(self.refresh_token)
            response.cookies.clear()  # dj-rest-auth set them; a client without a jar keeps nothing
            return response
        # Cookie-authenticated writes need the CSRF header: hand out its cookie here.
        get_token(self.request._request)
        return super().get_response()


class LoginMfaView(LoginView):
    """The second step of a login: the `mfa_token` of the first and a TOTP or recovery code.

    Answers exactly like a login without MFA (the tokens travel as the first step's `client` asked); the
    tokens carry `amr` (how the user proved who they are) and `mfa_at` (when the second factor was given).
    """

    serializer_class = LoginMfaSerializer

    @extend_schema(
        summary="Log in, second step: a passkey, a TOTP code or a recovery code",
        description="With the `mfa_token` of the login's `MfaRequired` answer and one of: `webauthn` (a passkey's "
        "answer to the answer's `webauthn` challenge: `credential.toJSON()` of `navigator.credentials.get()`), "
        "`code` (the authenticator app's) or `recovery_code` (each works once). Answers exactly like a login "
        "without a second factor: tokens and cookies as the first step's `client` asked. A wrong code or "
        "passkey answer: 400 `mfa_code_invalid` and spends one of the account's attempts "
        "(`MFA_FAILURE_LIMIT`; then 429 `mfa_locked`); an unknown, used, expired or other hospital's token 401 "
        "`mfa_token_invalid`. An app code and a passkey answer are each accepted once.",
        request=LoginMfaSerializer,
        responses=LoginResponseSerializer,
    )
    def post(self, request, *args, **kwargs):
        self.request = request
        serializer = LoginMfaSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        factor = mfa_login_verify(request=request, **serializer.validated_data)
        self.client = factor.client
        self.login_complete(factor.user, amr=["pwd", factor.method], mfa_at=int(time.time()))
        return self.get_response()


class MfaReauthenticateView(LoginView):
    """Step-up: a logged-in user gives a second factor again and gets tokens with a fresh `mfa_at`.

    Answers exactly like a login (a new token family, cookies or the `client: app` body). Open to an
    enrolment-only session too: right after enrolling, it turns that session into a full one.
    """

    serializer_class = MfaReauthenticateSerializer
    permission_classes = (IsTenantMember,)
    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    mfa_enrolment_allowed = True

    @extend_schema(
        summary="Give a second factor again (step-up)",
        description="For an account with a second factor: a TOTP `code`, a `recovery_code`, or a passkey's answer "
        "(`webauthn`, with the `mfa_token` of `POST /accounts/mfa/reauthenticate/webauthn/`), on the same attempt "
        "budget and replay rules as the login's second step. Answers like a login, with tokens whose `mfa_at` is "
        "now: removing a factor, regenerating recovery codes and changing the password need one within "
        "`MFA_STEP_UP_WINDOW` (10 minutes), else 403 `reauthentication_required`.",
        request=MfaReauthenticateSerializer,
        responses=LoginResponseSerializer,
    )
    def post(self, request, *args, **kwargs):
        self.request = request
        serializer = MfaReauthenticateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.client = serializer.validated_data.pop("client")
        method = mfa_reauthenticate(user=request.user, request=request, **serializer.validated_data)
        self.login_complete(request.user, amr=["pwd", method], mfa_at=int(time.time()))
        return self.get_response()


class PasswordChangeView(rest_auth.PasswordChangeView):
    @extend_schema(responses=DetailSerializer)
    def post(self, request, *args, **kwargs):
        step_up_check(user=request.user, token=request.auth)
        response = super().post(request, *args, **kwargs)
        services.password_changed(user=request.user)
        return response


class PasswordResetConfirmView(rest_auth.PasswordResetConfirmView):
    @extend_schema(responses=DetailSerializer)
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        services.password_changed(user=serializer.user, reset=True)
        return Response({"detail": "Password has been reset with the new password."})


class RegisterView(registration.RegisterView):
    """Registration at the hospital of the subdomain; the answer never tells whether the email existed."""

    @extend_schema(responses={201: DetailSerializer})
    def post(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(
            request=request._request,
            hospital=request.tenant,
            email=data.validated_data["email"],
            password=data.validated_data["password1"],
            first_name=data.validated_data["first_name"],
            last_name=data.validated_data["last_name"],
        )
        return Response(self.get_response_data(user), status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(exclude=True),
    post=extend_schema(request=VerifyEmailRequestSerializer, responses=DetailSerializer),
)
class VerifyEmailView(registration.VerifyEmailView):
    def get_object(self, queryset=None):
        confirmation = super().get_object(queryset)
        if confirmation.email_address.user.hospital_id != request_hospital_id(self.request):
            raise Http404
        return confirmation


@extend_schema_view(post=extend_schema(request=ResendEmailRequestSerializer, responses={200: DetailSerializer}))
class ResendEmailVerificationView(registration.ResendEmailVerificationView):
    serializer_class = ResendEmailVerificationSerializer  # the canonical email, as stored

    def get_queryset(self):
        return EmailAddress.objects.filter(user__hospital_id=request_hospital_id(self.request))


def presented_refresh_token(request):
    """The refresh token of a logout or refresh: from the body as is, from the cookie only with the CSRF header.

    The browser sends our cookies on its own, also for a page on a sibling hospital subdomain (same site),
    which could otherwise log its visitor out here or rotate their tokens. A token in the body (native apps,
    scripts) is one such a page cannot know, so it needs no CSRF token.
    """
    raw, from_cookie = refresh_token_from(request)
    if from_cookie and has_jwt_cookies(request):  # a logout clears them both
        csrf_enforce(request)
    return raw


def has_jwt_cookies(request) -> bool:
    cookies = (rest_auth_settings.JWT_AUTH_COOKIE, rest_auth_settings.JWT_AUTH_REFRESH_COOKIE)
    return any(name in request.COOKIES for name in cookies)


@extend_schema_view(
    get=extend_schema(exclude=True),
    post=extend_schema(
        request=RefreshRequestSerializer,
        responses=DetailSerializer,
        summary="Log out: blacklist the refresh token, clear the cookies",
        description="The refresh token comes from the body, else the `hospital-refresh` cookie (then with the "
        "`X-CSRFToken` header, else 403 `csrf_failed`); none: 401 `refresh_missing`.",
    ),
)
class LogoutView(rest_auth.LogoutView):
    """Blacklists the refresh token (from the body, or its cookie with the CSRF header) and clears the cookies.

    A refresh token of another hospital is refused like an invalid one (accounts.security.tokens.refresh_token_here).
    """

    def logout(self, request):
        raw = presented_refresh_token(request)
        if not raw:  # 401 like dj-rest-auth's own logout
            response = Response(
                error_body("No refresh token in the cookie or the body.", "refresh_missing"),
                status=status.HTTP_401_UNAUTHORIZED,
            )
        else:
            try:
                token = refresh_token_here(raw, request)
            except InvalidToken as exc:
                response = Response(
                    error_body(exc.detail["detail"], str(exc.detail["code"])), status=status.HTTP_401_UNAUTHORIZED
                )
            else:
                # Ends the session under its row lock: a refresh in flight with this token finishes first
                # and its successor is blacklisted with the rest (accounts.security.tokens.sessions_end).
                if token.get(FAMILY_CLAIM):
                    sessions_end(user_id=int(token["user_id"]), only=token[FAMILY_CLAIM], reason="logout")
                else:  # a token from before sessions
                    token.blacklist()
                audit_record(
                    action=AuditEvent.Action.LOGOUT, target_type="accounts.user", target_id=token.get("user_id", "")
                )
                response = Response({"detail": "Successfully logged out."})
        if has_jwt_cookies(request):  # a client without cookies gets no Set-Cookie at all
            unset_jwt_cookies(response)
        return response


RefreshView = get_refresh_view()  # dj-rest-auth's refresh view (cookie aware), built from its settings


class TokenRefreshView(RefreshView):  # type: ignore[misc,valid-type]
    """The new refresh token travels the way the old one came: a cookie gets a cookie, a body gets a body.

    So a browser's HttpOnly token never reaches JSON (whatever a script on the page asks for), and a client
    without a cookie jar gets the rotated token it needs for its next refresh.
    """

    serializer_class = HospitalTokenRefreshSerializer

    @extend_schema(
        request=RefreshRequestSerializer,
        responses=RefreshResponseSerializer,
        description="The refresh token comes from the body, else the `hospital-refresh` cookie (then with the "
        "`X-CSRFToken` header, else 403 `csrf_failed`). It rotates, and its successor goes back the way it came: "
        "in the body's `refresh`, or in the cookie.",
    )
    def post(self, request, *args, **kwargs):
        presented_refresh_token(request)  # the CSRF check, for a token from the cookie
        return super().post(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code != status.HTTP_200_OK or refresh_token_from(request)[1]:
            return super().finalize_response(request, response, *args, **kwargs)  # dj-rest-auth's cookies
        # From the tokens' own `exp`: within the reuse interval the successor answered is not new.
        for name in ("access", "refresh"):
            if name in response.data:
                exp = UntypedToken(response.data[name])["exp"]
                response.data[f"{name}_expiration"] = datetime.fromtimestamp(exp, tz=UTC)
        return super(RefreshView, self).finalize_response(request, response, *args, **kwargs)  # no cookies


@extend_schema_view(
    post=extend_schema(
        request=TokenVerifyRequestSerializer,
        responses=OpenApiResponse(TOKEN_VERIFIED, description="The token is usable here."),
        description="200 `{}` for a token valid at this hospital; 401 `token_not_valid` for any other "
        "(expired, forged, blacklisted, another hospital's).",
    )
)
class TokenVerifyView(SimpleJWTVerifyView):
    serializer_class = HospitalTokenVerifySerializer


class EmailLinkView(MethodPermissions, APIView):
    """Where the links in emails land when FRONTEND_URL points at this API.

    A frontend would show a page; here the JSON says what to POST, and where.
    """

    method_permissions = {"GET": AllowAny}
    permission_classes = (AllowAny,)  # the other methods (OPTIONS), as before
    authentication_classes = ()
    post_to: str = ""

    def get(self, request, **kwargs):
        return Response({"detail": f"POST these values to {self.post_to} to continue.", **kwargs})


LINK_SUMMARY = "Where an email link lands"


@extend_schema_view(get=extend_schema(responses=EmailConfirmLinkSerializer, summary=LINK_SUMMARY))
class EmailConfirmLinkView(EmailLinkView):
    post_to = "/accounts/registration/verify-email/"


@extend_schema_view(get=extend_schema(responses=InvitationLinkSerializer, summary=LINK_SUMMARY))
class InvitationLinkView(EmailLinkView):
    post_to = "/accounts/invitations/accept/ with password, first_name and last_name"


@extend_schema_view(get=extend_schema(responses=PasswordResetLinkSerializer, summary=LINK_SUMMARY))
class PasswordResetLinkView(EmailLinkView):
    post_to = "/accounts/password/reset/confirm/ with new_password1 and new_password2"


class SessionSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="The session this request is made with.")

    class Meta:
        model = LoginSession
        fields = ("id", "created", "last_used", "expires_at", "client_address", "user_agent", "current")

    def get_current(self, session) -> bool:
        return session.pk == self.context.get("current")


class SessionsEndedSerializer(serializers.Serializer):
    ended = serializers.IntegerField(help_text="How many sessions were ended.")


def current_session(request) -> str | None:
    """The session (token family) the request's access token belongs to."""
    return request.auth.get(FAMILY_CLAIM) if request.auth is not None else None


class SessionListView(MethodPermissions, APIView):
    """My logins: one per token family, until logout, its end, or the hospital's timeouts."""

    method_permissions = {"GET": IsTenantMember, "DELETE": IsTenantMember}

    @extend_schema(
        summary="My active sessions",
        description="One per login (token family): when it began and was last refreshed, from where, and which "
        "one this request is made with (`current`).",
        responses=SessionSerializer(many=True),
    )
    def get(self, request):
        sessions = selectors.sessions_live(user_id=request.user.pk)
        return Response(SessionSerializer(sessions, many=True, context={"current": current_session(request)}).data)

    @extend_schema(
        operation_id="accounts_sessions_end_others",
        summary="End all my other sessions",
        description="Every session but the current one: their access tokens are refused from the next request "
        "on, their refresh tokens are revoked.",
        request=None,
        responses={200: SessionsEndedSerializer},
    )
    def delete(self, request):
        ended = services.sessions_end_others(user=request.user, current=current_session(request))
        return Response(SessionsEndedSerializer({"ended": ended}).data)


class SessionDetailView(MethodPermissions, APIView):
    method_permissions = {"DELETE": IsTenantMember}

    @extend_schema(
        operation_id="accounts_sessions_end",
        summary="End one of my sessions",
        description="Its tokens stop working at once. Ending the current session is a logout (the cookies "
        "stay until the browser drops them, but nothing accepts them). Another user's session is a 404.",
        request=None,
        responses={204: None},
    )
    def delete(self, request, session_id: str):
        services.session_end(user=request.user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
