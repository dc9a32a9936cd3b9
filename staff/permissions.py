"""Roles decide hospital-wide actions: the caller's StaffMember, and the permission classes built on it.

Roles are hospital-local (a StaffMember row in the hospital's schema), never global Django groups. Per-record
access to patients is `hospitals.permissions`; the department head's grant is declared here, on Department.
"""

from __future__ import annotations

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.permissions import IsTenantMember
from staff.models import StaffMember

# guardian grant on a department (Department.Meta.permissions): its head sees the department's patients.
DEPARTMENT_PATIENTS = "view_department_patients"


def staff_member_of(request) -> StaffMember | None:
    """The caller's active role in this hospital (None for accounts without one), once per request."""
    if not hasattr(request, "_staff_member"):
        request._staff_member = (
            StaffMember.objects.select_related("user").filter(user_id=request.user.pk, is_active=True).first()
            if request.user.is_authenticated
            else None
        )
    return request._staff_member


def staff_member_required(request) -> StaffMember:
    """The caller's role, in views that `IsStaff` already guards (a 403 if it is missing all the same)."""
    staff = staff_member_of(request)
    if staff is None:
        raise PermissionDenied(IsStaff.message)
    return staff


class IsStaff(BasePermission):
    """Has an active role in the hospital being called."""

    message = "You have no role in this hospital."

    def has_permission(self, request, view) -> bool:
        return staff_member_of(request) is not None


class IsHospitalAdmin(BasePermission):
    message = "Only the hospital's administrators may do this."

    def has_permission(self, request, view) -> bool:
        staff = staff_member_of(request)
        return bool(staff and staff.is_admin)


class HasRole(BasePermission):
    """`HasRole.of(...)` : the caller's role is one of these."""

    roles: frozenset[str] = frozenset()
    message = "Your role does not allow this."

    @classmethod
    def of(cls, *roles: str) -> type[HasRole]:
        return type(f"HasRole_{'_'.join(roles)}", (cls,), {"roles": frozenset(roles)})

    def has_permission(self, request, view) -> bool:
        staff = staff_member_of(request)
        return bool(staff and staff.role in self.roles)


# The two guards of the workspace API: any staff member of this hospital, and its administrators.
WORKSPACE = IsTenantMember & IsStaff
ADMIN = IsTenantMember & IsHospitalAdmin
# Who oversees access to patients: the hospital's administrators and privacy officers (access logs, break-glass
# reviews). Neither opens a record by it (a privacy officer holds no patient grant at all).
OVERSIGHT = IsTenantMember & HasRole.of(StaffMember.Role.HOSPITAL_ADMIN, StaffMember.Role.PRIVACY_OFFICER)
