"""Who may do what in a hospital: roles (StaffMember) for hospital-wide actions, guardian grants per record.

- hospital admin: everything in its hospital, including granting and revoking access;
- a care-team member: view the patient, its clinical record, and add notes; a doctor may also change it;
- a department head: view the patients (and their clinical records) of the department;
- a receptionist: register patients, and view the demographics of those they registered;
- anyone else, including accounts with no role here: nothing.
Grants are guardian object permissions, stored in the hospital's schema and checked with
`accept_global_perms=False`: global permissions never open a hospital's records.
"""

from __future__ import annotations

from guardian.core import ObjectPermissionChecker
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from hospitals.models import Department, Patient, StaffMember

VIEW = "view_patient"
CHANGE = "change_patient"
CLINICAL = "view_clinical"
ADD_NOTE = "add_note"
DEPARTMENT_PATIENTS = "view_department_patients"
ALL_PATIENT_PERMS = frozenset({VIEW, CHANGE, CLINICAL, ADD_NOTE})


def care_team_grants(role: str) -> frozenset[str]:
    """What a place on a care team gives a staff member of this role."""
    grants = {VIEW, CLINICAL, ADD_NOTE}
    if role == StaffMember.Role.DOCTOR:
        grants.add(CHANGE)
    return frozenset(grants)


def staff_member_of(request) -> StaffMember | None:
    """The caller's active role in this hospital (None for accounts without one), once per request."""
    if not hasattr(request, "_staff_member"):
        request._staff_member = (
            StaffMember.objects.select_related("user").filter(user_id=request.user.pk, is_active=True).first()
            if request.user.is_authenticated
            else None
        )
    return request._staff_member


def patient_perms(staff: StaffMember, patient: Patient) -> frozenset[str]:
    """The codenames `staff` holds on `patient` (two queries at most)."""
    if staff.is_admin:
        return ALL_PATIENT_PERMS
    checker = ObjectPermissionChecker(staff.user)
    perms = set(checker.get_user_perms(patient))
    if staff.role == StaffMember.Role.RECEPTIONIST:
        # The role caps the grants: whatever a receptionist still holds from an earlier role
        # (e.g. an account re-invited as receptionist), it sees demographics only.
        return frozenset(perms & {VIEW})
    if patient.department_id and DEPARTMENT_PATIENTS in checker.get_user_perms(Department(pk=patient.department_id)):
        perms |= {VIEW, CLINICAL}
    return frozenset(perms & ALL_PATIENT_PERMS)


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
