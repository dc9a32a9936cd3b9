"""Who may see a patient: guardian grants per record, capped by the role (roles themselves: staff.permissions).

- hospital admin: everything in its hospital, including granting and revoking access;
- a care-team member: view the patient, its clinical record, and add notes; a doctor may also change it;
- a department head: view the patients (and their clinical records) of the department;
- a doctor or nurse who broke the glass (hospitals.services.break_glass_open): view, clinical record and notes,
  until the grant's `expires_at`, read in the same query as the record (see `live_break_glass`);
- a receptionist: register patients, and view the demographics of those they registered;
- a privacy officer: no record (it reads access logs and reviews break-glass openings);
- anyone else, including accounts with no role here: nothing.
Grants are guardian object permissions, stored in the hospital's schema and checked with
`accept_global_perms=False`: global permissions never open a hospital's records. A break-glass grant is a row
with a deadline instead (BreakGlassGrant), because a guardian row has none: the deadline must be read at access
time anyway, and a guardian row it shared with the care team's could not be swept without taking the care
team's with it.

The patient endpoints apply them with `PatientAccess`, an object permission (the one way they are checked);
`patient_grants` also says which grants an access was made under, for the audit trail (`Via`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.db.models.functions import Now
from guardian.core import ObjectPermissionChecker
from rest_framework.permissions import BasePermission

from hospitals.models import BreakGlassGrant, Patient
from staff.models import NON_CLINICAL_ROLES, Department, StaffMember
from staff.permissions import DEPARTMENT_PATIENTS, staff_member_of

VIEW = "view_patient"
CHANGE = "change_patient"
CLINICAL = "view_clinical"
ADD_NOTE = "add_note"
ALL_PATIENT_PERMS = frozenset({VIEW, CHANGE, CLINICAL, ADD_NOTE})


BREAK_GLASS_GRANTS = frozenset({VIEW, CLINICAL, ADD_NOTE})
BREAK_GLASS_ROLES = frozenset({StaffMember.Role.DOCTOR, StaffMember.Role.NURSE})


class Via:
    """Under which grant an access happened: recorded in the audit event's detail (`via`), shown in access logs."""

    ADMIN = "admin_role"
    CARE_TEAM = "care_team"
    DEPARTMENT_HEAD = "department_head"
    BREAK_GLASS = "break_glass"
    REGISTERED = "registered_by"  # the front desk's view of whom it registered
    ALL = (ADMIN, CARE_TEAM, DEPARTMENT_HEAD, BREAK_GLASS, REGISTERED)


@dataclass(frozen=True)
class PatientGrants:
    """What the caller holds on a patient, and the grants it holds it by."""

    perms: frozenset[str]
    via: tuple[str, ...] = ()
    break_glass_id: int | None = None
    break_glass_reason: str = ""

    def audit_detail(self) -> dict:
        detail: dict = {"via": list(self.via)}
        if self.break_glass_id is not None:
            detail["break_glass"] = {"id": self.break_glass_id, "reason": self.break_glass_reason}
        return detail


def live_break_glass(staff: StaffMember) -> QuerySet[BreakGlassGrant]:
    """`staff`'s break-glass grants still running, by the database's clock (`now()` of the query that reads it)."""
    return BreakGlassGrant.objects.filter(staff=staff, expires_at__gt=Now())


def care_team_grants(role: str) -> frozenset[str]:
    """What a place on a care team gives a staff member of this role."""
    grants = {VIEW, CLINICAL, ADD_NOTE}
    if role == StaffMember.Role.DOCTOR:
        grants.add(CHANGE)
    return frozenset(grants)


def patient_perms(staff: StaffMember, patient: Patient) -> frozenset[str]:
    """The codenames `staff` holds on `patient` (three queries at most)."""
    return patient_grants(staff, patient).perms


def patient_grants(staff: StaffMember, patient: Patient) -> PatientGrants:
    """What `staff` holds on `patient` and by which grants. A patient read by `selectors.patient_get` carries the
    caller's live break-glass grant already (read in the same query); any other costs one more query."""
    if staff.is_admin:
        return PatientGrants(ALL_PATIENT_PERMS, (Via.ADMIN,))
    checker = ObjectPermissionChecker(staff.user)
    perms = set(checker.get_user_perms(patient)) & ALL_PATIENT_PERMS
    if staff.role in NON_CLINICAL_ROLES:
        # The role caps the grants: whatever a receptionist still holds from an earlier role
        # (e.g. an account re-invited as receptionist), it sees demographics only.
        perms &= {VIEW} if staff.role == StaffMember.Role.RECEPTIONIST else set()
        return PatientGrants(frozenset(perms), (Via.REGISTERED,) if perms else ())
    via = [Via.CARE_TEAM] if perms else []
    if patient.department_id and DEPARTMENT_PATIENTS in checker.get_user_perms(Department(pk=patient.department_id)):
        perms |= {VIEW, CLINICAL}
        via.append(Via.DEPARTMENT_HEAD)
    if hasattr(patient, "break_glass_id"):
        grant_id, reason = patient.break_glass_id, getattr(patient, "break_glass_reason", "")
    else:
        grant_id, reason = next(
            iter(live_break_glass(staff).filter(patient=patient).order_by("-expires_at").values_list("id", "reason")),
            (None, ""),
        )
    if grant_id is not None and staff.role in BREAK_GLASS_ROLES:
        perms |= BREAK_GLASS_GRANTS
        via.append(Via.BREAK_GLASS)
    return PatientGrants(frozenset(perms), tuple(via), grant_id if Via.BREAK_GLASS in via else None, reason or "")


def patient_grants_of(request, patient: Patient) -> PatientGrants:
    """`patient_grants` of the caller, once per request and patient (the permission check, the answer and the
    audit event share it)."""
    if not hasattr(request, "_patient_grants"):
        request._patient_grants = {}
    cache = request._patient_grants
    if patient.pk not in cache:
        staff = staff_member_of(request)
        cache[patient.pk] = patient_grants(staff, patient) if staff else PatientGrants(frozenset())
    return cache[patient.pk]


def patient_perms_of(request, patient: Patient) -> frozenset[str]:
    """`patient_perms` of the caller, once per request and patient."""
    return patient_grants_of(request, patient).perms


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
