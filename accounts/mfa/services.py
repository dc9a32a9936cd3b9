"""Second factors: TOTP, passkeys and security keys (WebAuthn), recovery codes, and the second step of a login.

TOTP is RFC 6238 (pyotp computes the codes): 30-second steps, 6 digits, SHA-1, what every authenticator
app reads from an `otpauth://` URI. A code is accepted once: the step it matched is recorded on the
authenticator with one conditional UPDATE (`last_used_step < step`), so two requests with the same code,
or a code of an earlier step, cannot both pass, whatever the number of workers.

A passkey answers a challenge (accounts/mfa/webauthn.py) that is kept with the login's `mfa_token` (or a
step-up's) and used up with it: an answer is accepted once. Its signature counter must grow where the
authenticator keeps one, again checked by one conditional UPDATE.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import pyotp
import qrcode
from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from qrcode.image.svg import SvgPathImage
from rest_framework import status

from accounts import emails
from accounts.mfa import webauthn
from accounts.mfa.crypto import code_hash, secret_decrypt, secret_encrypt
from accounts.mfa.policy import mfa_required_for
from accounts.models import Authenticator, MfaChallenge, User
from accounts.security.attempts import Reservation, budgets_take, second_factor_budgets
from accounts.security.tokens import sessions_end
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError
from core.tenancy import request_hospital_id

logger = logging.getLogger(__name__)

TOTP = "totp"
RECOVERY_CODE = "recovery_code"
WEBAUTHN = "webauthn"
# A real factor's type -> the login method it gives, in the order a client should offer them.
FACTOR_METHODS = {Authenticator.Type.WEBAUTHN: WEBAUTHN, Authenticator.Type.TOTP: TOTP}
ENROLMENT_MAX_AGE = 10 * 60  # seconds from the QR code (or the passkey's options) to the answer
LOGIN, STEP_UP = "login", "step_up"  # MfaChallenge.purpose
RECOVERY_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read off paper and typed again


def code_normalise(code: str) -> str:
    """What a person may type for a code: full-width digits, spaces and hyphens, any case."""
    text = unicodedata.normalize("NFKC", code)
    return "".join(ch for ch in text if not ch.isspace() and ch != "-").upper()


def mfa_methods(user: User) -> list[str]:
    """The second factors `user` can log in with, in the order a client should offer them; [] without MFA."""
    types = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    methods = [method for factor, method in FACTOR_METHODS.items() if factor in types]
    if methods and Authenticator.Type.RECOVERY_CODES in types:  # they back up a factor; alone they are none
        methods.append(RECOVERY_CODE)
    return methods


def _passkeys(user: User) -> list[Authenticator]:
    return list(Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).order_by("pk"))


def _credentials(passkeys: list[Authenticator]) -> list[bytes]:
    """Their attested credential data (a BinaryField reads back as a memoryview)."""
    return [bytes(passkey.credential or b"") for passkey in passkeys]


def _issuer(user: User) -> str:
    return user.hospital.name if user.hospital is not None else "Hospital platform"


# TOTP -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str
    enrolment_token: str


def totp_enrolment_begin(*, user: User) -> TotpEnrolment:
    """A new secret, its `otpauth://` URI and QR code; nothing is stored until a code confirms it.

    The secret travels back in `enrolment_token`, encrypted and bound to the user, valid ENROLMENT_MAX_AGE.
    """
    if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        raise ServiceError("An authenticator app is already enrolled; remove it first.", code="mfa_already_enrolled")
    secret = pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=_issuer(user))
    buffer = io.BytesIO()
    qrcode.make(uri, image_factory=SvgPathImage).save(buffer)
    return TotpEnrolment(
        secret=secret,
        otpauth_uri=uri,
        qr_svg=buffer.getvalue().decode(),
        enrolment_token=secret_encrypt(f"{user.pk}:{secret}"),
    )


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step within MFA_TOTP_TOLERANCE of `now` whose code is `code`, or None."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - settings.MFA_TOTP_TOLERANCE, current + settings.MFA_TOTP_TOLERANCE + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _totp_accept(authenticator: Authenticator, code: str) -> bool:
    """Accepts a right code of a step later than the last one accepted: one conditional UPDATE, so of two
    concurrent uses of one code exactly one wins."""
    now = timezone.now()
    step = _totp_step(secret_decrypt(authenticator.secret), code, now)
    if step is None:
        return False
    return (
        Authenticator.objects.filter(pk=authenticator.pk)
        .filter(Q(last_used_step__isnull=True) | Q(last_used_step__lt=step))
        .update(last_used_step=step, last_used_at=now)
        == 1
    )


def totp_enrolment_confirm(*, user: User, enrolment_token: str, code: str) -> tuple[Authenticator, list[str]]:
    """Stores the authenticator once `code` proves the app holds the secret; returns it and the recovery
    codes if it is the account's first factor (generated with it, shown this once), else []."""
    try:
        user_pk, _, secret = secret_decrypt(enrolment_token, max_age=ENROLMENT_MAX_AGE).partition(":")
    except InvalidToken:
        user_pk, secret = "", ""
    if not secret or user_pk != str(user.pk):
        raise ServiceError(
            "The enrolment token is invalid or expired; start again.",
            code="mfa_enrolment_invalid",
            field="enrolment_token",
        )
    now = timezone.now()
    step = _totp_step(secret, code_normalise(code), now)
    if step is None:
        raise ServiceError("Wrong code.", code="mfa_code_invalid", field="code")
    with transaction.atomic():
        if Authenticator.objects.select_for_update().filter(user=user, type=Authenticator.Type.TOTP).exists():
            raise ServiceError("An authenticator app is already enrolled.", code="mfa_already_enrolled")
        # The confirming code's step counts as used: it cannot log in a second time.
        authenticator = Authenticator.objects.create(
            user=user,
            type=Authenticator.Type.TOTP,
            secret=secret_encrypt(secret),
            last_used_step=step,
            last_used_at=now,
        )
        codes = _recovery_codes_first(user=user)
        audit_record(action=AuditEvent.Action.MFA_ENROLLED, actor=user, target=user, detail={"type": TOTP})
        emails.mfa_notice_queue(user=user, event="enrolled")
    return authenticator, codes


# Passkeys and security keys (WebAuthn) --------------------------------------------------------------------


@dataclass(frozen=True)
class WebauthnEnrolment:
    options: dict
    registration_token: str


def webauthn_enrolment_begin(*, user: User, request) -> WebauthnEnrolment:
    """The options for `navigator.credentials.create()` at this host; nothing is stored until the answer.

    The challenge travels back in `registration_token`, encrypted and bound to the user and this host (the
    relying party), valid ENROLMENT_MAX_AGE.
    """
    existing = _credentials(_passkeys(user))
    if len(existing) >= settings.MFA_WEBAUTHN_LIMIT:
        raise ServiceError(
            f"An account keeps at most {settings.MFA_WEBAUTHN_LIMIT} passkeys; remove one first.",
            code="mfa_webauthn_limit",
        )
    options, state = webauthn.registration_options(
        request,
        rp_name=_issuer(user),
        user_handle=str(user.pk).encode(),
        email=user.email,
        display_name=user.name or user.email,
        existing=existing,
    )
    rp_id, _ = webauthn.relying_party(request)
    token = secret_encrypt(json.dumps({"user": user.pk, "rp_id": rp_id, "state": state}))
    return WebauthnEnrolment(options=options, registration_token=token)


def webauthn_enrolment_confirm(
    *, user: User, request, registration_token: str, credential: dict, name: str = ""
) -> tuple[Authenticator, list[str]]:
    """Stores the passkey once its answer to the enrolment's challenge checks out; returns it and the recovery
    codes if it is the account's first factor, else []."""
    try:
        payload = json.loads(secret_decrypt(registration_token, max_age=ENROLMENT_MAX_AGE))
    except (InvalidToken, ValueError):
        payload = None
    rp_id, _ = webauthn.relying_party(request)
    if not isinstance(payload, dict) or payload.get("user") != user.pk or payload.get("rp_id") != rp_id:
        raise ServiceError(
            "The registration token is invalid or expired; start again.",
            code="mfa_enrolment_invalid",
            field="registration_token",
        )
    try:
        registered = webauthn.registration_verify(request, state=payload["state"], response=credential)
    except webauthn.WebauthnInvalid as error:
        raise ServiceError(
            f"The authenticator's answer does not check out: {error}", code="webauthn_invalid", field="credential"
        ) from error
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # one enrolment of this account at a time
        if Authenticator.objects.filter(user=user, credential_id=registered.credential_id).exists():
            raise ServiceError("This passkey is already registered.", code="mfa_already_enrolled")
        authenticator = Authenticator.objects.create(
            user=user,
            type=Authenticator.Type.WEBAUTHN,
            name=name.strip() or "Passkey",
            credential_id=registered.credential_id,
            credential=registered.credential,
            sign_count=registered.sign_count,
        )
        codes = _recovery_codes_first(user=user)
        audit_record(
            action=AuditEvent.Action.MFA_ENROLLED,
            actor=user,
            target=user,
            detail={"type": WEBAUTHN, "name": authenticator.name},
        )
        emails.mfa_notice_queue(user=user, event="enrolled")
    return authenticator, codes


def _webauthn_accept(user: User, request, state: dict | None, response: dict) -> bool:
    """Accepts a passkey's answer to `state`'s challenge whose signature counter grew (or that keeps none):
    one conditional UPDATE, so of two concurrent uses of one answer at most one wins."""
    if not state:
        return False
    passkeys = {passkey.credential_id: passkey for passkey in _passkeys(user)}
    try:
        asserted = webauthn.assertion_verify(
            request, state=state, credentials=_credentials(list(passkeys.values())), response=response
        )
    except webauthn.WebauthnInvalid:
        return False
    passkey = passkeys[asserted.credential_id]
    grows = Q(sign_count__lt=asserted.sign_count) if asserted.sign_count else Q(sign_count=0)
    accepted = (
        Authenticator.objects.filter(pk=passkey.pk)
        .filter(grows)
        .update(sign_count=asserted.sign_count, last_used_at=timezone.now())
        == 1
    )
    if not accepted:
        logger.warning("passkey %s of user %s: signature counter did not grow (a clone?)", passkey.pk, user.pk)
    return accepted


# Recovery codes -------------------------------------------------------------------------------------------


def _recovery_code_new() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _recovery_codes_store(*, user: User) -> list[str]:
    codes = [_recovery_code_new() for _ in range(settings.MFA_RECOVERY_CODE_COUNT)]
    Authenticator.objects.update_or_create(
        user=user,
        type=Authenticator.Type.RECOVERY_CODES,
        defaults={"code_hashes": [code_hash(code_normalise(code)) for code in codes], "last_used_at": None},
    )
    return codes


def _recovery_codes_first(*, user: User) -> list[str]:
    """With an account's first factor: its recovery codes (shown this once); later factors share them: []."""
    if Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).exists():
        return []
    return _recovery_codes_store(user=user)


def recovery_codes_regenerate(*, user: User) -> list[str]:
    """A new set of recovery codes (the old ones stop working), shown this once."""
    with transaction.atomic():
        if not Authenticator.objects.select_for_update().filter(user=user, type__in=list(FACTOR_METHODS)).exists():
            raise ServiceError("Enrol a second factor first.", code="mfa_not_enrolled")
        codes = _recovery_codes_store(user=user)
        audit_record(action=AuditEvent.Action.MFA_RECOVERY_CODES_GENERATED, actor=user, target=user)
    return codes


def _recovery_code_accept(user: User, code: str) -> bool:
    """Uses up a recovery code: the row is locked, so a code is accepted once however many try it at once."""
    hashed = code_hash(code)
    with transaction.atomic():
        authenticator = (
            Authenticator.objects.select_for_update().filter(user=user, type=Authenticator.Type.RECOVERY_CODES).first()
        )
        if authenticator is None:
            return False
        remaining = [h for h in authenticator.code_hashes if not hmac.compare_digest(h, hashed)]
        if len(remaining) == len(authenticator.code_hashes):
            return False
        authenticator.code_hashes = remaining
        authenticator.last_used_at = timezone.now()
        authenticator.save(update_fields=["code_hashes", "last_used_at"])
    return True


# Listing and removing -------------------------------------------------------------------------------------


def authenticators_of(*, user: User) -> list[Authenticator]:
    return list(Authenticator.objects.filter(user=user).order_by("created_at", "pk"))


def authenticator_remove(*, user: User, authenticator_id: int) -> None:
    """Removes one of `user`'s authenticators. The recovery codes go with the last real factor: they back it up.

    Another user's authenticator is a 404, as if it did not exist.
    """
    with transaction.atomic():
        authenticator = Authenticator.objects.select_for_update().filter(user=user, pk=authenticator_id).first()
        if authenticator is None:
            raise ServiceError("No such authenticator.", code="not_found", status=status.HTTP_404_NOT_FOUND)
        if authenticator.type == Authenticator.Type.RECOVERY_CODES:
            raise ServiceError(
                "Recovery codes go with the authenticator they back up; regenerate them instead.",
                code="mfa_recovery_codes_not_removable",
            )
        others = Authenticator.objects.filter(user=user, type__in=list(FACTOR_METHODS)).exclude(pk=authenticator.pk)
        if not others.exists() and mfa_required_for(user):
            raise ServiceError(
                "Your hospital requires a second factor: enrol another one before removing this one.",
                code="mfa_required_by_policy",
            )
        authenticator.delete()
        if not others.exists():
            Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).delete()
        detail = {"type": authenticator.type}
        if authenticator.type == Authenticator.Type.WEBAUTHN:
            detail["name"] = authenticator.name
        audit_record(action=AuditEvent.Action.MFA_REMOVED, actor=user, target=user, detail=detail)
        emails.mfa_notice_queue(user=user, event="removed")


def mfa_reset(*, user: User, actor) -> None:
    """Removes every second factor of `user` (an admin's recovery for a lost device) and ends the account's
    sessions, which were opened with a factor that may now be in someone else's hands: audited, owner emailed.

    Callers decide who may (staff.mfa.staff_mfa_reset: a hospital admin, for its own staff).
    """
    with transaction.atomic():
        removed = sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True))
        Authenticator.objects.filter(user=user).delete()
        ended, _ = sessions_end(user_id=user.pk, reason="mfa_reset")
        audit_record(
            action=AuditEvent.Action.MFA_RESET,
            actor=actor,
            target=user,
            detail={"removed": removed, "sessions_ended": len(ended)},
        )
        emails.mfa_notice_queue(user=user, event="reset")


# The second step of a login, and step-up -----------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Challenge:
    mfa_token: str
    webauthn_options: dict | None  # for `navigator.credentials.get()`, where the account has passkeys


def _challenge_create(*, user: User, request, client: str, purpose: str) -> Challenge:
    token = secrets.token_urlsafe(32)
    options, state = None, None
    if passkeys := _passkeys(user):
        options, state = webauthn.assertion_options(request, credentials=_credentials(passkeys))
    MfaChallenge.objects.create(
        token_hash=_token_hash(token),
        user=user,
        hospital_id=request_hospital_id(request),
        client=client,
        purpose=purpose,
        webauthn_state=state,
        expires_at=timezone.now() + settings.MFA_TOKEN_LIFETIME,
    )
    return Challenge(mfa_token=token, webauthn_options=options)


def mfa_challenge_start(*, user: User, request, client: str) -> Challenge:
    """After a correct password for an account with MFA: the `mfa_token` for the second step, and the
    challenge for its passkeys if it has any."""
    return _challenge_create(user=user, request=request, client=client, purpose=LOGIN)


def webauthn_step_up_start(*, user: User, request) -> Challenge:
    """A challenge for one of the logged-in user's passkeys, to give it again (`mfa_reauthenticate`)."""
    if not _passkeys(user):
        raise ServiceError("This account has no passkey.", code="mfa_not_enrolled")
    return _challenge_create(user=user, request=request, client="", purpose=STEP_UP)


@dataclass(frozen=True)
class SecondFactor:
    user: User
    client: str
    method: str


def _token_invalid(status_code: int = status.HTTP_401_UNAUTHORIZED) -> ServiceError:
    return ServiceError(
        "The mfa_token is invalid, used or expired; start again.",
        code="mfa_token_invalid",
        status=status_code,
        field="mfa_token" if status_code == status.HTTP_400_BAD_REQUEST else None,
    )


def _challenge_live(*, request, mfa_token: str, purpose: str) -> MfaChallenge | None:
    """The unused, unexpired challenge of `mfa_token` for `purpose`, if it was made here (this hospital)."""
    challenge = (
        MfaChallenge.objects.select_related("user__hospital")
        .filter(token_hash=_token_hash(mfa_token), purpose=purpose, used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if challenge is None or challenge.hospital_id != request_hospital_id(request) or not challenge.user.is_active:
        return None
    return challenge


def _method(code: str, recovery_code: str, webauthn_response: dict | None) -> str:
    return WEBAUTHN if webauthn_response is not None else RECOVERY_CODE if recovery_code else TOTP


def _factor_check(
    *,
    user: User,
    request,
    challenge: MfaChallenge | None,
    method: str,
    typed: str,
    webauthn_response: dict | None,
    invalid: ServiceError,
) -> None:
    """Checks one second factor on the account's attempt budget: past it, 429 `mfa_locked` and nothing is
    looked at. A challenge is used up by a success only, under a row lock, so two right answers with one
    token pass once. A wrong factor: 400 `mfa_code_invalid`."""
    reservation = budgets_take(second_factor_budgets(user))  # past the budget: LoginRefused, a 429
    with transaction.atomic():
        locked = None
        if challenge is not None:
            locked = MfaChallenge.objects.select_for_update().filter(pk=challenge.pk, used_at__isnull=True).first()
            if locked is None:
                reservation.refund()
                raise invalid
        if method == WEBAUTHN:
            state = locked.webauthn_state if locked is not None else None
            accepted = _webauthn_accept(user, request, state, webauthn_response or {})
        elif method == TOTP:
            totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
            accepted = totp is not None and _totp_accept(totp, typed)
        else:
            accepted = _recovery_code_accept(user, typed)
        if accepted and locked is not None:
            locked.used_at = timezone.now()
            locked.save(update_fields=["used_at"])
    _code_outcome(user=user, method=method, accepted=accepted, reservation=reservation)


def mfa_login_verify(
    *, request, mfa_token: str, code: str = "", recovery_code: str = "", webauthn: dict | None = None
) -> SecondFactor:
    """The second step: `mfa_token` and a TOTP code, a recovery code or a passkey's answer (`webauthn`, to the
    challenge that came with the token). Returns whom to log in, and how.

    The token counts only at the hospital (or platform) where the password was given, and is used up by the
    success. Each factor tried takes an attempt from the account's second-factor budget first
    (accounts/security/attempts.py).
    """
    challenge = _challenge_live(request=request, mfa_token=mfa_token, purpose=LOGIN)
    if challenge is None:
        raise _token_invalid()
    method = _method(code, recovery_code, webauthn)
    _factor_check(
        user=challenge.user,
        request=request,
        challenge=challenge,
        method=method,
        typed=code_normalise(recovery_code or code),
        webauthn_response=webauthn,
        invalid=_token_invalid(),
    )
    return SecondFactor(user=challenge.user, client=challenge.client, method=method)


def _code_outcome(*, user: User, method: str, accepted: bool, reservation: Reservation) -> None:
    """What a checked factor leaves behind: a failure in the trail (400), or the attempt back and, for a
    recovery code, the trail and the owner's email."""
    if not accepted:
        _second_factor_failed(user=user, method=method, reservation=reservation)
        field = {RECOVERY_CODE: "recovery_code", WEBAUTHN: "webauthn"}.get(method, "code")
        message = "The passkey's answer does not check out." if method == WEBAUTHN else "Wrong code."
        raise ServiceError(message, code="mfa_code_invalid", field=field)
    reservation.refund()
    if method == RECOVERY_CODE:
        left = len(
            Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES)
            .values_list("code_hashes", flat=True)
            .first()
            or []
        )
        audit_record(
            action=AuditEvent.Action.MFA_RECOVERY_CODE_USED, actor=user, target=user, detail={"remaining": left}
        )
        emails.mfa_notice_queue(user=user, event="recovery_code_used")


def mfa_reauthenticate(
    *,
    user: User,
    request,
    code: str = "",
    recovery_code: str = "",
    webauthn: dict | None = None,
    mfa_token: str = "",
) -> str:
    """A second factor given again by a logged-in user (step-up): on the same budget and replay rules as the
    login's second step. A passkey answers the challenge of `webauthn_step_up_start` (its `mfa_token`).
    Returns the method; the caller issues tokens with a fresh `mfa_at`."""
    if not mfa_methods(user):
        raise ServiceError("This account has no second factor.", code="mfa_not_enrolled")
    challenge = None
    if webauthn is not None:
        challenge = _challenge_live(request=request, mfa_token=mfa_token, purpose=STEP_UP)
        if challenge is None or challenge.user_id != user.pk:
            raise _token_invalid(status.HTTP_400_BAD_REQUEST)
    method = _method(code, recovery_code, webauthn)
    _factor_check(
        user=user,
        request=request,
        challenge=challenge,
        method=method,
        typed=code_normalise(recovery_code or code),
        webauthn_response=webauthn,
        invalid=_token_invalid(status.HTTP_400_BAD_REQUEST),
    )
    return method


def step_up_check(*, user: User, token) -> None:
    """Sensitive changes (removing a factor, new recovery codes, a new password) of an account with MFA need a
    second factor given within MFA_STEP_UP_WINDOW: the token's `mfa_at` (set by the login's second step and by
    `/accounts/mfa/reauthenticate/`; kept through refreshes). Else 403 `reauthentication_required`."""
    if not mfa_methods(user):
        return
    given = token.get("mfa_at") if token is not None else None
    if isinstance(given, int) and time.time() - given <= settings.MFA_STEP_UP_WINDOW.total_seconds():
        return
    raise ServiceError(
        "Give your second factor again first (POST /accounts/mfa/reauthenticate/).",
        code="reauthentication_required",
        status=status.HTTP_403_FORBIDDEN,
    )


def _second_factor_failed(*, user: User, method: str, reservation: Reservation) -> None:
    detail: dict = {"method": method}
    if spent := reservation.spent():
        detail["lock"] = {"budgets": ["mfa"], "until": max(b.expires_at for b in spent).isoformat()}
    audit_record(action=AuditEvent.Action.MFA_FAILED, actor=user, target=user, detail=detail)


def mfa_challenges_purge() -> int:
    """Deletes the second-step tokens past their lifetime (beat runs it with the login counters' purge)."""
    deleted, _ = MfaChallenge.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
