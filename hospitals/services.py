"""A hospital's own operations (run in its schema): staff and invitations."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from config.api import ServiceError
from hospitals import emails
from hospitals.models import Invitation, StaffMember

User = get_user_model()


def staff_member_create(*, user, role: str) -> StaffMember:
    """Gives an account a role in the current hospital's schema."""
    return StaffMember.objects.create(user=user, role=role)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(*, hospital, email: str, role: str, invited_by=None,
                      first_name: str = "", last_name: str = "") -> Invitation:
    """Invites `email` to join `hospital` (the current schema) as `role`, by email.

    The address is reserved at once by a pending (inactive, password-less)
    account of this hospital; accepting activates it. Inviting the same address
    again replaces its earlier pending invitations.
    """
    email = User.objects.normalize_email(email)
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ServiceError("Enter a valid email address.", code="email_invalid", field="email") from exc
    if role not in StaffMember.Role.values:
        raise ServiceError(f"Unknown role {role!r}.", code="role_invalid", field="role")
    existing = User.objects.filter(email__iexact=email).first()
    if existing and (existing.hospital_id != hospital.pk or existing.is_active):
        raise ServiceError("This email address already has an account.", code="email_taken", field="email")

    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        if existing is None:
            User.objects.create_user(email, None, hospital=hospital, is_active=False,
                                     first_name=first_name, last_name=last_name)
        Invitation.objects.filter(email=email, accepted_at=None, revoked_at=None).update(revoked_at=now)
        invitation = Invitation.objects.create(
            email=email, role=role, token_hash=_token_hash(token), invited_by=invited_by,
            expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        emails.invitation_queue(invitation=invitation, token=token, hospital=hospital)
    return invitation


def invitation_revoke(*, invitation: Invitation) -> None:
    """Withdraws a pending invitation; the address's pending account goes with it."""
    if invitation.accepted_at:
        raise ServiceError("This invitation was already accepted.", code="invitation_accepted")
    if invitation.revoked_at:
        return
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        if not Invitation.objects.filter(email=invitation.email, accepted_at=None, revoked_at=None).exists():
            # Never activated, so nothing refers to it (StaffMember is made on acceptance).
            (User.objects.filter(email__iexact=invitation.email, is_active=False, last_login=None)
             .exclude(pk__in=StaffMember.objects.values("user_id")).delete())


def invitation_accept(*, hospital, token: str, password: str, first_name: str = "",
                      last_name: str = "") -> User:
    """Activates the invited account in `hospital` (the current schema), with a password and its role."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(token_hash=_token_hash(token)).first()
        if invitation is None:
            raise ServiceError("This invitation link is not valid.", code="invitation_invalid", field="token")
        if invitation.accepted_at:
            raise ServiceError("This invitation was already used.", code="invitation_used", field="token")
        if invitation.revoked_at:
            raise ServiceError("This invitation was revoked.", code="invitation_revoked", field="token")
        if invitation.expires_at <= timezone.now():
            raise ServiceError("This invitation has expired.", code="invitation_expired", field="token")
        user = User.objects.select_for_update().filter(
            email__iexact=invitation.email, hospital=hospital, is_active=False).first()
        if user is None:
            raise ServiceError("This invitation was already used.", code="invitation_used", field="token")
        user.first_name = first_name or user.first_name
        user.last_name = last_name or user.last_name
        try:
            validate_password(password, user=user)
        except ValidationError as exc:
            raise ServiceError(" ".join(exc.messages), code="password_invalid", field="password") from exc
        user.set_password(password)
        user.is_active = True
        user.save()
        # The link reached this mailbox: the address is verified.
        EmailAddress.objects.update_or_create(user=user, email=user.email,
                                              defaults={"verified": True, "primary": True})
        StaffMember.objects.update_or_create(user=user, defaults={"role": invitation.role, "is_active": True})
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
    return user
