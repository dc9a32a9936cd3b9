"""dj-rest-auth serializers, made email-only and scoped to the hospital of the request."""

from allauth.account.adapter import get_adapter
from allauth.account.forms import default_token_generator
from dj_rest_auth import serializers as rest_auth
from dj_rest_auth.forms import AllAuthPasswordResetForm
from dj_rest_auth.jwt_auth import CookieTokenRefreshSerializer
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenVerifySerializer
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import UntypedToken

from accounts import emails
from accounts.addresses import InvalidEmail, canonical_email
from accounts.policy import PasswordNotAllowed, password_allowed
from accounts.security.services import password_check
from accounts.security.tokens import (
    FAMILY_CLAIM,
    ensure_token_belongs_here,
    refresh_token_from,
    refresh_token_rotate,
    session_live,
    session_start,
)
from core.tenancy import request_hospital_id

User = get_user_model()


class CanonicalEmailField(serializers.EmailField):
    """An email address in its canonical form (accounts/addresses.py); a clear 400 if it has none."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return canonical_email(super().to_internal_value(data))
        except InvalidEmail as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from exc


# Who is logging in, and so where its refresh token travels (README "Clients without cookies").
BROWSER, APP = "browser", "app"


class ClientField(serializers.ChoiceField):
    """`browser` (the default): the tokens go into HttpOnly cookies and the body's `refresh` is empty.
    `app` (mobile apps, CLIs, servers: no cookie jar): the refresh token is in the body and no cookie is set.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("default", BROWSER)
        kwargs.setdefault(
            "help_text",
            "`browser` (default): tokens in HttpOnly cookies, `refresh` empty in the answer. "
            "`app` (no cookie jar): the refresh token in the answer's `refresh`, no cookies.",
        )
        super().__init__(choices=[(BROWSER, "browser"), (APP, "app")], **kwargs)


class LoginSerializer(rest_auth.LoginSerializer):
    """Email and password only; HospitalEmailBackend scopes the lookup to the hospital.

    The backend takes an attempt from the login budget before the password is
    checked; a spent budget escapes as a 429 (accounts/security/attempts.py).
    """

    username = None
    email = CanonicalEmailField()
    client = ClientField()

    def validate_auth_user_status(self, user):
        # Same answer as a wrong password: a disabled account is not confirmed to exist.
        if not user.is_active:
            raise serializers.ValidationError("Unable to log in with provided credentials.")


class SecondFactorSerializer(serializers.Serializer):
    """One second factor: the authenticator app's code, a recovery code, or a passkey's answer."""

    code = serializers.CharField(
        max_length=32, required=False, allow_blank=True, help_text="The authenticator app's 6-digit code."
    )
    recovery_code = serializers.CharField(
        max_length=32, required=False, allow_blank=True, help_text="One of the recovery codes (each works once)."
    )

    webauthn = serializers.DictField(
        required=False,
        help_text="A passkey's answer to the `webauthn` challenge: `credential.toJSON()` of "
        "`navigator.credentials.get()` (a PublicKeyCredential in its JSON form, base64url byte strings).",
    )

    def validate(self, attrs):
        given = [name for name in ("code", "recovery_code", "webauthn") if attrs.get(name)]
        if len(given) != 1:
            raise serializers.ValidationError("Send one of `code`, `recovery_code` or `webauthn`.")
        return attrs


class LoginMfaSerializer(SecondFactorSerializer):
    """The second step of a login: the first step's `mfa_token` and one code."""

    mfa_token = serializers.CharField(max_length=200, help_text="From the login's `mfa_required` answer.")


class MfaReauthenticateSerializer(SecondFactorSerializer):
    """A second factor given again while logged in (step-up); the new tokens travel as `client` says."""

    client = ClientField()
    mfa_token = serializers.CharField(
        max_length=200,
        required=False,
        default="",
        help_text="With `webauthn` only: from `POST /accounts/mfa/reauthenticate/webauthn/`, whose challenge "
        "the passkey answered.",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs.get("webauthn") and not attrs.get("mfa_token"):
            raise serializers.ValidationError({"mfa_token": "A passkey's answer comes with its challenge's token."})
        return attrs


class RegisterSerializer(serializers.Serializer):
    """Email-only signup (dj-rest-auth's own still requires a username).

    It never says whether the email already has an account: that is decided
    in `accounts.services.user_register`, after validation, and both outcomes
    answer alike.
    """

    email = CanonicalEmailField()
    password1 = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    password2 = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")

    def validate(self, data):
        if data["password1"] != data["password2"]:
            raise serializers.ValidationError({"password2": ["The two password fields didn't match."]})
        candidate = User(email=data["email"], first_name=data["first_name"], last_name=data["last_name"])
        try:
            validate_password(data["password1"], user=candidate)
        except Exception as exc:  # django.core.exceptions.ValidationError
            raise serializers.ValidationError({"password1": list(exc.messages)}) from exc
        return data


# The profile (`/accounts/user/`). Its fields are written out rather than read from the model: a ModelSerializer
# rebuilds them by introspecting the model on every request, which was a fifth of the Python time of an authed
# GET (bench/seed_compare.py). (A comment, not a docstring: that would become the schema's description.)
class UserDetailsSerializer(serializers.Serializer):
    pk = serializers.IntegerField(read_only=True, label="ID")
    # Changing the login email needs its own verified flow; not offered here.
    email = serializers.EmailField(read_only=True, label="Email address")
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    name = serializers.CharField(read_only=True)
    # null for platform staff, who belong to no hospital.
    hospital = serializers.CharField(source="hospital.slug", read_only=True, allow_null=True)

    def to_representation(self, instance) -> dict:
        # The fields above, written out: every authed app start reads this, and DRF deep-copies a serializer's
        # declared fields per instance, ~16 times the cost of this dict (README "Performance"). Kept equal to
        # the fields' own representation by tests/fast/test_profile_representation.py.
        hospital = instance.hospital
        return {
            "pk": instance.pk,
            "email": instance.email,
            "first_name": instance.first_name,
            "last_name": instance.last_name,
            "name": instance.name,
            "hospital": None if hospital is None else hospital.slug,
        }

    def update(self, instance, validated_data: dict):
        for field, value in validated_data.items():
            setattr(instance, field, value)
        instance.save(update_fields=list(validated_data))
        return instance


class HospitalPasswordResetForm(AllAuthPasswordResetForm):
    """allauth's reset form, looking only at the accounts of the request's hospital."""

    def __init__(self, *args, hospital_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.hospital_id = hospital_id

    def clean_email(self):
        try:
            email = canonical_email(get_adapter().clean_email(self.cleaned_data["email"]))
        except InvalidEmail as exc:
            raise forms.ValidationError(str(exc)) from exc
        self.users = [
            user
            for user in User.objects.filter(email=email, hospital_id=self.hospital_id, is_active=True)
            # Where single sign-on is required, no reset mail; the answer stays the same (nobody learns who
            # the break-glass accounts are).
            if password_allowed(hospital_id=self.hospital_id, email=user.email)
        ]
        return email

    def save(self, request, **kwargs):
        # Queued, not sent inline (and without dj-rest-auth's save(), which
        # reads allauth's deprecated AUTHENTICATION_METHOD on every call).
        for user in self.users:
            emails.password_reset_queue(user=user, key=default_token_generator.make_token(user))
        return self.cleaned_data["email"]


class PasswordChangeSerializer(rest_auth.PasswordChangeSerializer):
    """The old password is checked on the login attempt budget: a stolen access token guesses no faster."""

    def validate_old_password(self, value):
        if not password_check(request=self.request, user=self.user, password=value, via="password_change"):
            raise serializers.ValidationError("Your old password was entered incorrectly. Please enter it again.")
        return value


class PasswordResetSerializer(rest_auth.PasswordResetSerializer):
    def validate_email(self, value):
        hospital_id = request_hospital_id(self.context["request"])
        self.reset_form = HospitalPasswordResetForm(data=self.initial_data, hospital_id=hospital_id)
        if not self.reset_form.is_valid():
            raise serializers.ValidationError(self.reset_form.errors)
        return value


class PasswordResetConfirmSerializer(rest_auth.PasswordResetConfirmSerializer):
    def validate(self, attrs):
        attrs = super().validate(attrs)
        # A link for hospital A's account does nothing on hospital B.
        if self.user.hospital_id != request_hospital_id(self.context["request"]):
            raise serializers.ValidationError({"uid": ["Invalid value"]})
        if not password_allowed(hospital_id=self.user.hospital_id, email=self.user.email):
            raise PasswordNotAllowed()  # a link mailed before single sign-on became required
        return attrs


class ResendEmailVerificationSerializer(serializers.Serializer):
    email = CanonicalEmailField()


# The request and response shapes of the /accounts/ views that dj-rest-auth and simplejwt leave undescribed
# (declared in accounts/views.py with `extend_schema`). Request-only components: COMPONENT_SPLIT_REQUEST adds
# "Request" to their names (Refresh -> RefreshRequest).


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
    """The login's answer for an account with a second factor: no tokens yet (accounts/mfa/services.py)."""

    mfa_required = serializers.BooleanField(help_text="Always true: the password was right, a second factor is due.")
    mfa_token = serializers.CharField(
        help_text="For `POST /accounts/login/mfa/`: single-use, valid a few minutes, here only (this hospital)."
    )
    methods = serializers.ListField(
        child=serializers.ChoiceField(choices=["webauthn", "totp", "recovery_code"]),
        help_text="The second factors this account can give, in the order to offer them: `webauthn` (a passkey: "
        "`webauthn`), `totp` (`code`), `recovery_code` (`recovery_code`).",
    )
    webauthn = serializers.DictField(
        allow_null=True,
        help_text="Where `methods` has `webauthn`: the challenge for one of the account's passkeys, "
        "PublicKeyCredentialRequestOptions in JSON form (`PublicKeyCredential.parseRequestOptionsFromJSON()`); "
        "else null.",
    )

    class Meta:
        ref_name = "MfaRequired"


# The login answers one or the other.
LOGIN_RESULT = PolymorphicProxySerializer(
    component_name="LoginResult",
    serializers=[LoginResponseSerializer, MfaRequiredSerializer],
    resource_type_field_name=None,
)


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


class EmailConfirmLinkSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What to POST, and where.")
    key = serializers.CharField()


class InvitationLinkSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What to POST, and where.")
    token = serializers.CharField()


class PasswordResetLinkSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What to POST, and where.")
    uid = serializers.CharField()
    token = serializers.CharField()


# JWTs that name their hospital (ARCHITECTURE.md "Tokens are bound to one hospital"); the rules they
# apply live in accounts/security/tokens.py.


class HospitalTokenObtainPairSerializer(TokenObtainPairSerializer):
    """dj-rest-auth's JWT_TOKEN_CLAIMS_SERIALIZER: a new session (accounts.security.tokens.session_start).

    Our login views call session_start themselves, with the request (the session's address and agent);
    this is for anything that calls dj-rest-auth's `jwt_encode`.
    """

    @classmethod
    def get_token(cls, user):
        return session_start(user=user)


class HospitalTokenRefreshSerializer(CookieTokenRefreshSerializer):
    """Refresh from the body (or else the cookie), only on the hospital the token names."""

    # Blank is absent: a client echoing the login answer's `"refresh": ""` refreshes with its cookie.
    refresh = serializers.CharField(required=False, allow_blank=True)

    def extract_refresh_token(self):
        raw, _ = refresh_token_from(self.context["request"])
        if raw is None:
            raise InvalidToken("No valid refresh token found.")
        return raw

    def validate(self, attrs):
        # Rotation, its reuse grace window and reuse detection: accounts/security/tokens.py.
        return refresh_token_rotate(raw=self.extract_refresh_token(), request=self.context["request"])


class HospitalTokenVerifySerializer(TokenVerifySerializer):
    """200 `{}` for a token usable here; every other token (a blacklisted one too) is 401 `token_not_valid`."""

    def validate(self, attrs):
        token = UntypedToken(attrs["token"])
        ensure_token_belongs_here(token, self.context["request"])
        if BlacklistedToken.objects.filter(token__jti=token.get("jti")).exists():
            raise InvalidToken()  # simplejwt answers 400 "Token is blacklisted"
        if not session_live(token.get(FAMILY_CLAIM)):  # its session has ended: no longer usable anywhere
            raise InvalidToken()
        return super().validate(attrs)
