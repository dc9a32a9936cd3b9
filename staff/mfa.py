"""A hospital's MFA policy and what it requires of one account (registered with accounts/mfa/policy.py)."""

from __future__ import annotations

from django.db import transaction

from accounts.mfa.services import mfa_methods, mfa_reset
from accounts.models import User
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError
from staff.models import MfaPolicy, StaffMember


def mfa_policy_get() -> MfaPolicy:
    """The current schema's policy (an unsaved optional one if none was ever set)."""
    return MfaPolicy.objects.first() or MfaPolicy()


def mfa_policy_set(*, mode: str, roles: list[str], actor) -> MfaPolicy:
    """Sets the hospital's policy; `roles` only with `required_for_roles` (and then at least one)."""
    if mode == MfaPolicy.Mode.ROLES and not roles:
        raise ServiceError("Name at least one role.", field="roles")
    if mode != MfaPolicy.Mode.ROLES and roles:
        raise ServiceError("Roles are only for `required_for_roles`.", field="roles")
    with transaction.atomic():
        policy, _ = MfaPolicy.objects.select_for_update().get_or_create(singleton=True)
        old = {"mode": policy.mode, "roles": policy.roles}
        policy.mode, policy.roles = mode, sorted(set(roles))
        policy.save()
        audit_record(
            action=AuditEvent.Action.MFA_POLICY_CHANGED,
            actor=actor,
            target=policy,
            detail={"old": old, "new": {"mode": policy.mode, "roles": policy.roles}},
        )
    return policy


def staff_mfa_required(user: User) -> bool:
    """The requirement `staff` registers: the policy of the hospital of the current schema, for `user`."""
    if user.hospital_id is None:
        return False  # platform staff: not a hospital's rule
    policy = MfaPolicy.objects.first()
    if policy is None or policy.mode == MfaPolicy.Mode.OPTIONAL:
        return False
    if policy.mode == MfaPolicy.Mode.ALL:
        return True
    return StaffMember.objects.filter(user=user, is_active=True, role__in=policy.roles).exists()


def staff_mfa_reset(*, staff: StaffMember, actor) -> None:
    """A hospital admin removes a staff member's second factors (a lost phone): audited, the owner emailed."""
    if not mfa_methods(staff.user):
        raise ServiceError("This staff member has no second factor.", code="mfa_not_enrolled")
    mfa_reset(user=staff.user, actor=actor)
