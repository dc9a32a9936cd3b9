"""Account operations, called alike by the API, commands and (later) tasks."""
from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction

from accounts import emails
from accounts.tokens import refresh_tokens_revoke
from audit.models import AuditEvent
from audit.services import audit_record
from tenants.models import Hospital

User = get_user_model()


def user_register(*, request, hospital: Hospital, email: str, password: str,
                  first_name: str = "", last_name: str = "") -> User | None:
    """Self-registration of a hospital's staff member; the account waits for email verification.

    An email that already has an account (any case, any hospital) creates
    nothing and changes nothing: its owner is told by email instead, and the
    caller cannot tell the two outcomes apart. Returns the new user, or None.
    """
    email = User.objects.normalize_email(email)
    try:
        with transaction.atomic():
            if User.objects.filter(email__iexact=email).exists():
                raise IntegrityError("email taken")
            user = User.objects.create_user(email, password, hospital=hospital,
                                            first_name=first_name, last_name=last_name)
            address = EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
            address.send_confirmation(request, signup=True)  # queued; published after commit
    except IntegrityError:  # taken before, or by a concurrent registration
        make_password(password)  # as slow as the path that creates an account
        emails.account_exists_queue(email=email)
        return None
    return user


def password_changed(*, user, reset: bool = False) -> None:
    """After a password change or reset: every session ends, and the owner is told in case it was not them.

    Refresh tokens are blacklisted here; access tokens die with the password
    hash they carry (simplejwt's CHECK_REVOKE_TOKEN).
    """
    refresh_tokens_revoke(user_id=user.pk)
    audit_record(action=AuditEvent.Action.PASSWORD_RESET if reset else AuditEvent.Action.PASSWORD_CHANGED,
                 actor=user, target=user)
    emails.password_changed_queue(user=user)


def user_create_verified(*, hospital: Hospital | None, email: str, password: str | None,
                         first_name: str = "", last_name: str = "") -> User:
    """An account made by an operator (not self-registered): its email counts as verified.

    ``hospital=None`` makes platform staff.
    """
    with transaction.atomic():
        if hospital is None:
            user = User.objects.create_superuser(email, password, first_name=first_name, last_name=last_name)
        else:
            user = User.objects.create_user(email, password, hospital=hospital,
                                            first_name=first_name, last_name=last_name)
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user
