"""Enrolling, listing and removing one's own second factors (/accounts/mfa/...), on a hospital or the platform.

Enrolling a factor on an account that already has one needs a recent second factor (step-up), as removing
one does: a stolen session must not be able to add the thief's own passkey or app.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.mfa import services
from accounts.models import Authenticator
from accounts.permissions import IsTenantMember
from core.api import MethodPermissions


class AuthenticatorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=Authenticator.Type.choices)
    name = serializers.CharField(help_text="Passkeys: what the owner called it; else empty.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    recovery_codes_left = serializers.SerializerMethodField(help_text="Recovery codes only: how many are unused.")

    class Meta:
        ref_name = "Authenticator"

    def get_recovery_codes_left(self, authenticator: Authenticator) -> int | None:
        if authenticator.type != Authenticator.Type.RECOVERY_CODES:
            return None
        return len(authenticator.code_hashes)


class RecoveryCodesSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Shown this once: each logs in once instead of an app code."
    )

    class Meta:
        ref_name = "RecoveryCodeList"


class AuthenticatorListView(MethodPermissions, APIView):
    mfa_enrolment_allowed = True  # open to a token that may only enrol (accounts/mfa/policy.py)
    method_permissions = {"GET": IsTenantMember}

    @extend_schema(
        summary="List my second factors",
        responses=AuthenticatorSerializer(many=True),
    )
    def get(self, request):
        return Response(AuthenticatorSerializer(services.authenticators_of(user=request.user), many=True).data)


class AuthenticatorDetailView(MethodPermissions, APIView):
    method_permissions = {"DELETE": IsTenantMember}

    @extend_schema(
        summary="Remove one of my second factors",
        description="Removing the authenticator app removes the recovery codes too (they back it up): "
        "the account then logs in with its password alone. The owner is emailed. Needs a second factor within "
        "the last 10 minutes (else 403 `reauthentication_required`: `/accounts/mfa/reauthenticate/`); refused "
        "(`mfa_required_by_policy`) for the last factor where the hospital requires one.",
        responses={204: None},
    )
    def delete(self, request, pk: int):
        services.step_up_check(user=request.user, token=request.auth)
        services.authenticator_remove(user=request.user, authenticator_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TotpBeginView(MethodPermissions, APIView):
    mfa_enrolment_allowed = True  # open to a token that may only enrol (accounts/mfa/policy.py)
    method_permissions = {"POST": IsTenantMember}

    class OutputSerializer(serializers.Serializer):
        secret = serializers.CharField(help_text="Base32, for typing into an app by hand.")
        otpauth_uri = serializers.CharField(help_text="`otpauth://totp/...`: what the QR code holds.")
        qr_svg = serializers.CharField(help_text="The QR code of `otpauth_uri`, an SVG document.")
        enrolment_token = serializers.CharField(help_text="Send it back with the first code; valid 10 minutes.")

        class Meta:
            ref_name = "TotpEnrolment"

    @extend_schema(
        summary="Start enrolling an authenticator app (TOTP)",
        description="Nothing is stored yet: the app is enrolled once `/accounts/mfa/totp/confirm/` gets a code "
        "it computed from this secret. On an account that has a second factor already, needs one given within "
        "the last 10 minutes (else 403 `reauthentication_required`).",
        request=None,
        responses=OutputSerializer,
    )
    def post(self, request):
        services.step_up_check(user=request.user, token=request.auth)
        enrolment = services.totp_enrolment_begin(user=request.user)
        return Response(self.OutputSerializer(enrolment).data)


class TotpConfirmView(MethodPermissions, APIView):
    mfa_enrolment_allowed = True  # open to a token that may only enrol (accounts/mfa/policy.py)
    method_permissions = {"POST": IsTenantMember}

    class InputSerializer(serializers.Serializer):
        enrolment_token = serializers.CharField(max_length=500)
        code = serializers.CharField(max_length=32, help_text="The app's current 6-digit code.")

        class Meta:
            ref_name = "TotpConfirm"

    class OutputSerializer(RecoveryCodesSerializer):
        authenticator = AuthenticatorSerializer()

        class Meta:
            ref_name = "TotpEnrolled"

    @extend_schema(
        summary="Finish enrolling an authenticator app",
        description="With a right code the app is enrolled. With an account's first second factor the recovery "
        "codes are generated, shown this once (later factors share them: `recovery_codes` is empty). From the "
        "next login on, the password step answers `mfa_required`. The owner is emailed.",
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        authenticator, codes = services.totp_enrolment_confirm(user=request.user, **data.validated_data)
        body = {"authenticator": authenticator, "recovery_codes": codes}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class WebauthnBeginView(MethodPermissions, APIView):
    mfa_enrolment_allowed = True  # open to a token that may only enrol (accounts/mfa/policy.py)
    method_permissions = {"POST": IsTenantMember}

    class OutputSerializer(serializers.Serializer):
        options = serializers.DictField(
            help_text="PublicKeyCredentialCreationOptions in JSON form: pass it to "
            "`PublicKeyCredential.parseCreationOptionsFromJSON()`, then to `navigator.credentials.create()`. "
            "The relying party is this host (the hospital's subdomain)."
        )
        registration_token = serializers.CharField(help_text="Send it back with the answer; valid 10 minutes.")

        class Meta:
            ref_name = "WebauthnEnrolment"

    @extend_schema(
        summary="Start registering a passkey or security key (WebAuthn)",
        description="Nothing is stored yet: the passkey is registered once `/accounts/mfa/webauthn/confirm/` gets "
        "its answer to these options. On an account that has a second factor already, needs one given within "
        "the last 10 minutes (else 403 `reauthentication_required`).",
        request=None,
        responses=OutputSerializer,
    )
    def post(self, request):
        services.step_up_check(user=request.user, token=request.auth)
        enrolment = services.webauthn_enrolment_begin(user=request.user, request=request)
        return Response(self.OutputSerializer(enrolment).data)


class WebauthnConfirmView(MethodPermissions, APIView):
    mfa_enrolment_allowed = True  # open to a token that may only enrol (accounts/mfa/policy.py)
    method_permissions = {"POST": IsTenantMember}

    class InputSerializer(serializers.Serializer):
        registration_token = serializers.CharField(max_length=4000)
        credential = serializers.DictField(
            help_text="`credential.toJSON()` of what `navigator.credentials.create()` returned (a "
            "PublicKeyCredential in its JSON form, base64url byte strings)."
        )
        name = serializers.CharField(
            max_length=100, required=False, default="", help_text="What to call it in the list (e.g. 'Work laptop')."
        )

        class Meta:
            ref_name = "WebauthnConfirm"

    class OutputSerializer(RecoveryCodesSerializer):
        authenticator = AuthenticatorSerializer()

        class Meta:
            ref_name = "WebauthnEnrolled"

    @extend_schema(
        summary="Finish registering a passkey or security key",
        description="With an answer that checks out (this host's challenge, origin and relying party) the passkey "
        "is registered. With an account's first second factor the recovery codes are generated, shown this once "
        "(else `recovery_codes` is empty). A wrong answer: 400 `webauthn_invalid`. The owner is emailed.",
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        authenticator, codes = services.webauthn_enrolment_confirm(
            user=request.user, request=request, **data.validated_data
        )
        body = {"authenticator": authenticator, "recovery_codes": codes}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class WebauthnStepUpView(MethodPermissions, APIView):
    mfa_enrolment_allowed = True  # as /accounts/mfa/reauthenticate/, which it prepares
    method_permissions = {"POST": IsTenantMember}

    class OutputSerializer(serializers.Serializer):
        mfa_token = serializers.CharField(help_text="Send it with the passkey's answer; single-use, a few minutes.")
        webauthn = serializers.DictField(
            source="webauthn_options",
            help_text="PublicKeyCredentialRequestOptions in JSON form, for one of this account's passkeys.",
        )

        class Meta:
            ref_name = "WebauthnStepUp"

    @extend_schema(
        summary="A passkey challenge for step-up",
        description="For `POST /accounts/mfa/reauthenticate/` with `webauthn` (the passkey's answer) and this "
        "`mfa_token`. 400 `mfa_not_enrolled` for an account without passkeys.",
        request=None,
        responses=OutputSerializer,
    )
    def post(self, request):
        challenge = services.webauthn_step_up_start(user=request.user, request=request)
        return Response(self.OutputSerializer(challenge).data)


class RecoveryCodesView(MethodPermissions, APIView):
    method_permissions = {"POST": IsTenantMember}

    @extend_schema(
        summary="Regenerate my recovery codes",
        description="The old codes stop working; the new ones are shown this once. Needs a second factor within "
        "the last 10 minutes (else 403 `reauthentication_required`).",
        request=None,
        responses=RecoveryCodesSerializer,
    )
    def post(self, request):
        services.step_up_check(user=request.user, token=request.auth)
        codes = services.recovery_codes_regenerate(user=request.user)
        return Response(RecoveryCodesSerializer({"recovery_codes": codes}).data)
