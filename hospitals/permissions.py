"""Who may see a patient: guardian grants per record, capped by the role (roles themselves: staff.permissions).

- hospital admin: everything in its hospital, including granting and revoking access;
- a care-team member: view the patient, its clinical record, and add notes; a doctor may also change it;
- a department head: view the patients (and their clinical records) of the department;
- a receptionist: register patients, and view the demographics of those they registered;
- anyone else, including accounts with no role here: nothing.
Grants are guardian object permissions, stored in the hospital's schema and checked with
`accept_global_perms=False`: global permissions never open a hospital's records.

The patient endpoints apply them with `PatientAccess`, an object permission (the one way they are checked).
"""

from __future__ import annotations

from guardian.core import ObjectPermissionChecker
from rest_framework.permissions import BasePermission

from hospitals.models import Patient
from staff.models import Department, StaffMember
from staff.permissions import DEPARTMENT_PATIENTS, staff_member_of

VIEW = "view_patient"
CHANGE = "change_patient"
CLINICAL = "view_clinical"
ADD_NOTE = "add_note"
ALL_PATIENT_PERMS = frozenset({VIEW, CHANGE, CLINICAL, ADD_NOTE})


def care_team_grants(role: str) -> frozenset[str]:
    """What a place on a care team gives a staff member of this role."""
    grants = {VIEW, CLINICAL, ADD_NOTE}
    if role == StaffMember.Role.DOCTOR:
        grants.add(CHANGE)
    return frozenset(grants)


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


def patient_perms_of(request, patient: Patient) -> frozenset[str]:
    """`patient_perms` of the caller, once per request and patient (the permission check and the answer share it)."""
    if not hasattr(request, "_patient_perms"):
        request._patient_perms = {}
    cache = request._patient_perms
    if patient.pk not in cache:
        staff = staff_member_of(request)
        cache[patient.pk] = patient_perms(staff, patient) if staff else frozenset()
    return cache[patient.pk]


class PatientAccess(BasePermission):
    """The object permission of every endpoint on one patient: the method needs the codename the view names in
    `patient_needs` (`{"GET": VIEW, "POST": ADD_NOTE}`; HEAD follows GET), else 403.

    It only ever sees a patient the caller may view: the views look the patient up among the caller's own
    (`hospitals.selectors.patient_list`), so any other is a 404, never a 403 that confirms it exists
    (`hospitals.views.PatientRecordView.patient`). Like DRF's `DjangoObjectPermissions`.
    """

    message = "You may view this patient, but not do this."

    def has_object_permission(self, request, view, obj) -> bool:
        need = view.patient_needs["GET" if request.method == "HEAD" else request.method]
        return need in patient_perms_of(request, obj)
