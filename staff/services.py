"""A hospital's staff (run in its schema): invitations, roles, departments and their heads.

Role changes are written to the hospital's audit trail (`staff_role_changed`: actor, target, old and new
role). What a role change means for patient grants is `hospitals`' business: it registers a hook
(`staff.hooks`) that runs inside the same transaction and may refuse the change.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from accounts.addresses import canonical_email_or_none
from accounts.models import User
from accounts.security.tokens import sessions_end
from accounts.services import registration_unclaimed_release
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError
from core.tenancy import current_tenant
from staff import emails
from staff.hooks import role_change_hooks_run
from staff.models import Department, Invitation, StaffMember
from staff.permissions import DEPARTMENT_PATIENTS


def _role_change_record(*, staff: StaffMember, old_role: str | None, actor=None, detail: dict | None = None) -> None:
    """One `staff_role_changed` event; `old_role` None: the account had no role here."""
    audit_record(
        action=AuditEvent.Action.STAFF_ROLE_CHANGED,
        actor=actor,
        target=staff,
        detail={"email": staff.user.email, "old_role": old_role, "new_role": staff.role, **(detail or {})},
    )


def staff_member_create(
    *, user, role: str, department: Department | None = None, actor=None, detail: dict | None = None
) -> StaffMember:
    """Gives an account a role in the current hospital's schema (audited as a role change from none)."""
    with transaction.atomic():
        staff = StaffMember.objects.create(user=user, role=role, department=department)
        _role_change_record(staff=staff, old_role=None, actor=actor, detail=detail)
    return staff


def staff_member_add(
    *, hospital, email: str, role: str, department: Department | None = None, actor=None
) -> StaffMember:
    """Gives an existing account of this hospital (e.g. one that registered itself) a role here."""
    user = User.objects.filter(email=canonical_email_or_none(email), hospital=hospital, is_active=True).first()
    if user is None:
        raise ServiceError(
            "No active account of this hospital has this email.", code="account_not_found", field="email"
        )
    if StaffMember.objects.filter(user=user).exists():
        raise ServiceError("This account already has a role here.", code="staff_exists", field="email")
    return staff_member_create(user=user, role=role, department=department, actor=actor)


def staff_member_update(*, staff: StaffMember, actor=None, detail: dict | None = None, **fields) -> StaffMember:
    """Changes role, department or active flag. A role change runs the registered hooks (the grants that
    follow the role, in `hospitals`), is refused while a receptionist-to-be heads a department, and is audited;
    all of it in one transaction.
    """
    with transaction.atomic():
        old_role, was_active = staff.role, staff.is_active
        for name, value in fields.items():
            setattr(staff, name, value)
        if staff.role != old_role:
            role_change_hooks_run(staff=staff, old_role=old_role)
            # Refused rather than done silently, so that no department is left without a head unnoticed:
            # the admin names another head first (a headship is clinical, see department_set_head).
            if staff.role == StaffMember.Role.RECEPTIONIST and Department.objects.filter(head=staff).exists():
                raise ServiceError(
                    "Receptionists head no department: name another head of theirs first.",
                    code="heads_department",
                    field="role",
                )
        staff.save()
        if staff.role != old_role:
            _role_change_record(staff=staff, old_role=old_role, actor=actor, detail=detail)
        if was_active and not staff.is_active:  # deactivated: logged out everywhere, at once
            sessions_end(user_id=staff.user_id, reason="deactivated")
    return staff


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(
    *, hospital, email: str, role: str, invited_by=None, first_name: str = "", last_name: str = ""
) -> Invitation:
    """Invites `email` to join `hospital` (the current schema) as `role`, by email.

    The address is reserved at once by a pending (inactive, password-less)
    account of this hospital; accepting activates it. Inviting the same address
    again replaces its earlier pending invitations. Only this hospital's accounts
    matter (a hospital is a realm): the same address at another hospital is
    another account, and nothing about it is observable from here. An unverified,
    never-used self-registration of the address here is taken over.
    """
    try:
        email = User.objects.normalize_email(email)
    except ValueError as exc:
        raise ServiceError(str(exc), code="email_invalid", field="email") from exc
    if role not in StaffMember.Role.values:
        raise ServiceError(f"Unknown role {role!r}.", code="role_invalid", field="role")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        registration_unclaimed_release(hospital=hospital, email=email, expired_only=False)
        existing = User.objects.filter(email=email, hospital=hospital).first()
        if existing and existing.is_active:
            raise ServiceError("This email address already has an account here.", code="email_taken", field="email")
        if existing is None:
            User.objects.create_user(
                email, None, hospital=hospital, is_active=False, first_name=first_name, last_name=last_name
            )
        Invitation.objects.filter(email=email, accepted_at=None, revoked_at=None).update(revoked_at=now)
        invitation = Invitation.objects.create(
            email=email,
            role=role,
            token_hash=_token_hash(token),
            invited_by=invited_by,
            expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        emails.invitation_queue(invitation=invitation, token=token, hospital=hospital)
        audit_record(
            action=AuditEvent.Action.INVITATION_SENT,
            actor=invited_by,
            target=invitation,
            detail={"email": email, "role": role},
        )
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
        audit_record(action=AuditEvent.Action.INVITATION_REVOKED, target=invitation, detail={"email": invitation.email})
        if not Invitation.objects.filter(email=invitation.email, accepted_at=None, revoked_at=None).exists():
            # Never activated, so nothing refers to it (StaffMember is made on acceptance).
            (
                User.objects.filter(email=invitation.email, hospital=current_tenant(), is_active=False, last_login=None)
                .exclude(pk__in=StaffMember.objects.values("user_id"))
                .delete()
            )


def invitation_accept(*, hospital, token: str, password: str, first_name: str = "", last_name: str = "") -> User:
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
        user = (
            User.objects.select_for_update().filter(email=invitation.email, hospital=hospital, is_active=False).first()
        )
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
        EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
        # The role is the inviter's choice: the trail names them as the role change's actor.
        # A former member invited back: its role changes as any role change does, grants moving with it
        # (and refused, like there, while it heads a department or sits on care teams it could not keep).
        staff = StaffMember.objects.filter(user=user).first()
        via = {"invitation": invitation.pk}
        if staff is None:
            staff_member_create(user=user, role=invitation.role, actor=invitation.invited_by, detail=via)
        else:
            staff_member_update(
                staff=staff, role=invitation.role, is_active=True, actor=invitation.invited_by, detail=via
            )
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        audit_record(
            action=AuditEvent.Action.INVITATION_ACCEPTED,
            actor=user,
            target=invitation,
            detail={"role": invitation.role},
        )
    return user


# Departments: the head's grant over the department's patients changes in the same transaction as the head.


def department_create(*, name: str, code: str, head: StaffMember | None = None) -> Department:
    with transaction.atomic():
        department = Department.objects.create(name=name, code=code)
        if head is not None:
            department_set_head(department=department, head=head)
    return department


def department_update(*, department: Department, **fields) -> Department:
    """Changes name/code and, when `head` is given, moves the head's grant over the department's patients."""
    with transaction.atomic():
        head = fields.pop("head", department.head)
        for name, value in fields.items():
            setattr(department, name, value)
        department.save()
        if head != department.head:
            department_set_head(department=department, head=head)
    return department


def department_set_head(*, department: Department, head: StaffMember | None) -> None:
    """Moves the head's grant over the department's patients (and their clinical records) to `head`.

    That grant is clinical, so a head holds a clinical role: a receptionist is refused, as on care teams.
    """
    if head is not None and head.role == StaffMember.Role.RECEPTIONIST:
        raise ServiceError(
            "A department head sees its patients' clinical records; receptionists cannot head one.",
            code="receptionist_not_clinical",
            field="head",
        )
    if department.head is not None:
        remove_perm(DEPARTMENT_PATIENTS, department.head.user, department)
        audit_record(
            action=AuditEvent.Action.PERMISSION_REVOKED,
            target=department,
            detail={"staff": department.head.pk, "as": "department head"},
        )
    department.head = head
    department.save(update_fields=["head"])
    if head is not None:
        assign_perm(DEPARTMENT_PATIENTS, head.user, department)
        audit_record(
            action=AuditEvent.Action.PERMISSION_GRANTED,
            target=department,
            detail={"staff": head.pk, "as": "department head"},
        )
