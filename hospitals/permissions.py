"""Who may see a patient: guardian grants per record, capped by the role (roles themselves: staff.permissions).

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

from hospitals.models import Patient
from staff.models import Department, StaffMember
from staff.permissions import DEPARTMENT_PATIENTS

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
