"""Account operations, called alike by the API, commands and tasks."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, ProtectedError
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts import emails
from accounts.models import User
from accounts.security.tokens import refresh_tokens_revoke, sessions_end
from accounts.selectors import sessions_live
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError

if TYPE_CHECKING:  # tenants sits above accounts: its model is only named here
    from tenants.models import Hospital


def user_register(
    *, request, hospital: Hospital, email: str, password: str, first_name: str = "", last_name: str = ""
) -> User | None:
    """Self-registration at `hospital` (the current schema); the account waits for email verification.

    An address that already has an account at this hospital creates nothing
    and changes nothing: its owner is told by email instead, and the caller
    cannot tell the two outcomes apart. Accounts at other hospitals are other
    realms and play no part. A registration left unverified past the
    verification window is no claim on the address: it is replaced.
    Returns the new user, or None.
    """
    email = User.objects.normalize_email(email)
    try:
        with transaction.atomic():
            registration_unclaimed_release(hospital=hospital, email=email, expired_only=True)
            if User.objects.filter(email=email, hospital=hospital).exists():
                raise IntegrityError("email taken")
            user = User.objects.create_user(
                email, password, hospital=hospital, first_name=first_name, last_name=last_name
            )
            address = EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
            address.send_confirmation(request, signup=True)  # queued; published after commit
    except IntegrityError:  # taken before, or by a concurrent registration
        make_password(password)  # as slow as the path that creates an account
        emails.account_exists_queue(email=email)
        return None
    return user


def _unclaimed_registrations():
    """Self-registrations never verified and never used: an address typed by anyone, proven by nobody.

    (Invited accounts waiting for acceptance are inactive and have no address row yet: not these.)
    """
    verified = EmailAddress.objects.filter(user=OuterRef("pk"), verified=True)
    return (
        User.objects.filter(hospital__isnull=False, is_active=True, last_login=None, emailaddress__verified=False)
        .exclude(Exists(verified))
        .distinct()
    )


def _expired(registrations):
    window = timedelta(days=settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS)
    return registrations.filter(date_joined__lt=timezone.now() - window)


def registration_unclaimed_release(*, hospital: Hospital, email: str, expired_only: bool) -> bool:
    """Deletes the self-registration holding `email` at `hospital` (the current schema), if it is unclaimed.

    `expired_only`: only once its verification window has passed (a new registration);
    otherwise at once (an invitation or onboarding by the hospital itself takes the address over).
    Returns whether one was deleted. One that was given a role meanwhile is kept.
    """
    registrations = _unclaimed_registrations().filter(hospital=hospital, email=email)
    if expired_only:
        registrations = _expired(registrations)
    try:
        with transaction.atomic():
            deleted, _ = User.objects.filter(pk__in=registrations.values("pk")).delete()
    except ProtectedError:
        return False
    return bool(deleted)


def registrations_expired_purge() -> int:
    """Deletes every unclaimed self-registration past its verification window (beat runs it daily)."""
    purged = 0
    for user in _expired(_unclaimed_registrations()).select_related("hospital").order_by("hospital_id"):
        # In the account's hospital schema: the deletion looks there for rows pointing at it.
        with schema_context(user.hospital.schema_name):
            try:
                with transaction.atomic():
                    user.delete()
                purged += 1
            except ProtectedError:
                pass  # given a role meanwhile: an administrator's decision, kept
    return purged


def password_changed(*, user, reset: bool = False) -> None:
    """After a password change or reset: every session ends, and the owner is told in case it was not them.

    Every session ends here: its access tokens are refused from the next request
    on, its refresh tokens blacklisted (access tokens also carry a hash of the
    password hash, simplejwt's CHECK_REVOKE_TOKEN).
    """
    refresh_tokens_revoke(user_id=user.pk, reason="password_reset" if reset else "password_changed")
    audit_record(
        action=AuditEvent.Action.PASSWORD_RESET if reset else AuditEvent.Action.PASSWORD_CHANGED,
        actor=user,
        target=user,
    )
    emails.password_changed_queue(user=user)


def user_create_verified(
    *, hospital: Hospital | None, email: str, password: str | None, first_name: str = "", last_name: str = ""
) -> User:
    """An account made by an operator (not self-registered): its email counts as verified.

    ``hospital=None`` makes platform staff (whose address create_superuser verifies itself).
    """
    if hospital is None:
        return User.objects.create_superuser(email, password, first_name=first_name, last_name=last_name)
    with transaction.atomic():
        user = User.objects.create_user(email, password, hospital=hospital, first_name=first_name, last_name=last_name)
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def session_end(*, user, session_id: str) -> None:
    """The user ends one of their own live sessions (the current one too: that is a logout)."""
    if not sessions_live(user_id=user.pk).filter(pk=session_id).exists():
        raise ServiceError("No such session.", code="not_found", status=404)
    sessions_end(user_id=user.pk, only=session_id, reason="ended_by_user")


def sessions_end_others(*, user, current: str | None) -> int:
    """The user ends all their sessions but `current` (the one making the request); returns how many."""
    ended, _ = sessions_end(user_id=user.pk, keep=current, reason="ended_by_user")
    return len(ended)


def sessions_end_by_admin(*, user, actor, reason: str = "ended_by_admin") -> int:
    """A hospital admin ends every session of `user` (one of their staff): audited, and the user told by email.

    Returns how many were live. Called in the hospital's schema (the trail is the hospital's).
    """
    with transaction.atomic():
        ended, revoked = sessions_end(user_id=user.pk, reason=reason)
        audit_record(
            action=AuditEvent.Action.SESSIONS_ENDED,
            actor=actor,
            target=user,
            detail={"sessions": len(ended), "revoked_tokens": revoked, "reason": reason},
        )
        emails.sessions_ended_queue(user=user, count=len(ended))
    return len(ended)
