"""Second factors: TOTP enrolment, recovery codes, and the second step of a login.

TOTP is RFC 6238 (pyotp computes the codes): 30-second steps, 6 digits, SHA-1, what every authenticator
app reads from an `otpauth://` URI. A code is accepted once: the step it matched is recorded on the
authenticator with one conditional UPDATE (`last_used_step < step`), so two requests with the same code,
or a code of an earlier step, cannot both pass, whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import hmac
import io
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
from accounts.mfa.crypto import code_hash, secret_decrypt, secret_encrypt
from accounts.mfa.policy import mfa_required_for
from accounts.models import Authenticator, MfaChallenge, User
from accounts.security.attempts import Reservation, budgets_take, second_factor_budgets
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError
from core.tenancy import request_hospital_id

TOTP = "totp"
RECOVERY_CODE = "recovery_code"
ENROLMENT_MAX_AGE = 10 * 60  # seconds from the QR code to the first code
RECOVERY_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read off paper and typed again


def code_normalise(code: str) -> str:
    """What a person may type for a code: full-width digits, spaces and hyphens, any case."""
    text = unicodedata.normalize("NFKC", code)
    return "".join(ch for ch in text if not ch.isspace() and ch != "-").upper()


def mfa_methods(user: User) -> list[str]:
    """The second factors `user` can log in with, in the order a client should offer them; [] without MFA."""
    types = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    if Authenticator.Type.TOTP not in types:
        return []  # recovery codes back up a factor; alone they are none
    return [TOTP, RECOVERY_CODE] if Authenticator.Type.RECOVERY_CODES in types else [TOTP]


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
    codes, generated with the first factor (shown this once)."""
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
        codes = _recovery_codes_store(user=user)
        audit_record(action=AuditEvent.Action.MFA_ENROLLED, actor=user, target=user, detail={"type": TOTP})
        emails.mfa_notice_queue(user=user, event="enrolled")
    return authenticator, codes


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


def recovery_codes_regenerate(*, user: User) -> list[str]:
    """A new set of recovery codes (the old ones stop working), shown this once."""
    with transaction.atomic():
        if not Authenticator.objects.select_for_update().filter(user=user, type=Authenticator.Type.TOTP).exists():
            raise ServiceError("Enrol an authenticator app first.", code="mfa_not_enrolled")
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
        others = Authenticator.objects.filter(user=user).exclude(pk=authenticator.pk)
        if not others.exclude(type=Authenticator.Type.RECOVERY_CODES).exists() and mfa_required_for(user):
            raise ServiceError(
                "Your hospital requires a second factor: enrol another one before removing this one.",
                code="mfa_required_by_policy",
            )
        authenticator.delete()
        if not Authenticator.objects.filter(user=user).exclude(type=Authenticator.Type.RECOVERY_CODES).exists():
            Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).delete()
        audit_record(action=AuditEvent.Action.MFA_REMOVED, actor=user, target=user, detail={"type": authenticator.type})
        emails.mfa_notice_queue(user=user, event="removed")


def mfa_reset(*, user: User, actor) -> None:
    """Removes every second factor of `user` (an admin's recovery for a lost device): audited, owner emailed.

    Callers decide who may (staff.mfa.staff_mfa_reset: a hospital admin, for its own staff).
    """
    with transaction.atomic():
        removed = sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True))
        Authenticator.objects.filter(user=user).delete()
        audit_record(action=AuditEvent.Action.MFA_RESET, actor=actor, target=user, detail={"removed": removed})
        emails.mfa_notice_queue(user=user, event="reset")


# The second step of a login -------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mfa_challenge_start(*, user: User, request, client: str) -> str:
    """After a correct password for an account with MFA: the `mfa_token` for the second step."""
    token = secrets.token_urlsafe(32)
    MfaChallenge.objects.create(
        token_hash=_token_hash(token),
        user=user,
        hospital_id=request_hospital_id(request),
        client=client,
        expires_at=timezone.now() + settings.MFA_TOKEN_LIFETIME,
    )
    return token


@dataclass(frozen=True)
class SecondFactor:
    user: User
    client: str
    method: str


def _token_invalid() -> ServiceError:
    return ServiceError(
        "The mfa_token is invalid, used or expired; log in again.",
        code="mfa_token_invalid",
        status=status.HTTP_401_UNAUTHORIZED,
    )


def mfa_login_verify(*, request, mfa_token: str, code: str = "", recovery_code: str = "") -> SecondFactor:
    """The second step: `mfa_token` and a TOTP code or a recovery code. Returns whom to log in, and how.

    The token counts only at the hospital (or platform) where the password was given. Each code tried takes
    an attempt from the account's second-factor budget first (accounts/security/attempts.py): past it the
    answer is 429 `mfa_locked` and no code is looked at. The token is used up by the success only, under a
    row lock, so two right codes with one token log in once.
    """
    here = request_hospital_id(request)
    challenge = (
        MfaChallenge.objects.select_related("user__hospital")
        .filter(token_hash=_token_hash(mfa_token), used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if challenge is None or challenge.hospital_id != here or not challenge.user.is_active:
        raise _token_invalid()
    user = challenge.user
    reservation = budgets_take(second_factor_budgets(user))  # past the budget: LoginRefused, a 429
    method = RECOVERY_CODE if recovery_code else TOTP
    typed = code_normalise(recovery_code or code)
    with transaction.atomic():
        locked = MfaChallenge.objects.select_for_update().filter(pk=challenge.pk, used_at__isnull=True).first()
        if locked is None:
            raise _token_invalid()
        accepted = _code_accept(user, method, typed)
        if accepted:
            locked.used_at = timezone.now()
            locked.save(update_fields=["used_at"])
    _code_outcome(user=user, method=method, accepted=accepted, reservation=reservation)
    return SecondFactor(user=user, client=challenge.client, method=method)


def _code_accept(user: User, method: str, typed: str) -> bool:
    if method == TOTP:
        totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        return totp is not None and _totp_accept(totp, typed)
    return _recovery_code_accept(user, typed)


def _code_outcome(*, user: User, method: str, accepted: bool, reservation: Reservation) -> None:
    """What a checked code leaves behind: a failure in the trail (400), or the attempt back and, for a recovery
    code, the trail and the owner's email."""
    if not accepted:
        _second_factor_failed(user=user, method=method, reservation=reservation)
        field = "recovery_code" if method == RECOVERY_CODE else "code"
        raise ServiceError("Wrong code.", code="mfa_code_invalid", field=field)
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


def mfa_reauthenticate(*, user: User, code: str = "", recovery_code: str = "") -> str:
    """A second factor given again by a logged-in user (step-up): on the same budget and replay rules as the
    login's second step. Returns the method; the caller issues tokens with a fresh `mfa_at`."""
    if not mfa_methods(user):
        raise ServiceError("This account has no second factor.", code="mfa_not_enrolled")
    reservation = budgets_take(second_factor_budgets(user))
    method = RECOVERY_CODE if recovery_code else TOTP
    accepted = _code_accept(user, method, code_normalise(recovery_code or code))
    _code_outcome(user=user, method=method, accepted=accepted, reservation=reservation)
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
