"""A hospital's patient records (run in its schema): patients, care teams, notes, and the grants that let staff
see them. Grants change in the same transaction as the fact that justifies them.
"""

from __future__ import annotations

from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError
from hospitals import permissions as perms
from hospitals.models import CareTeamMembership, ClinicalNote, Patient
from hospitals.permissions import care_team_grants
from staff.models import StaffMember


def staff_role_grants_move(*, staff: StaffMember, old_role: str) -> None:
    """The role-change hook (`staff.hooks`, registered in HospitalsConfig.ready()): moves the patient grants
    that follow the role, inside the role change's transaction. Becoming a receptionist is refused while the
    member sits on a care team: the admin takes them off it first. Refused rather than done silently, so that
    no patient loses its carer unnoticed. (A department's headship is `staff`'s own check.)
    """
    receptionist = StaffMember.Role.RECEPTIONIST
    if staff.role == receptionist and staff.care_teams.exists():
        raise ServiceError(
            "Receptionists are on no care team: take this member off theirs first.", code="on_care_teams", field="role"
        )
    for membership in staff.care_teams.select_related("patient"):
        for codename in care_team_grants(old_role) - care_team_grants(staff.role):
            remove_perm(codename, staff.user, membership.patient)
        for codename in care_team_grants(staff.role):
            assign_perm(codename, staff.user, membership.patient)
    # The front desk's view of whom it registered belongs to the receptionist role.
    registered = staff.registered_patients.all()
    if old_role == receptionist:
        remove_perm(perms.VIEW, staff.user, registered)
    elif staff.role == receptionist:
        for patient in registered:
            assign_perm(perms.VIEW, staff.user, patient)


def patient_create(*, created_by: StaffMember, **fields) -> Patient:
    with transaction.atomic():
        if Patient.objects.filter(mrn=fields["mrn"]).exists():
            raise ServiceError("A patient with this medical record number exists.", code="mrn_taken", field="mrn")
        patient = Patient.objects.create(registered_by=created_by, **fields)
        if created_by.role == StaffMember.Role.RECEPTIONIST:
            assign_perm(perms.VIEW, created_by.user, patient)  # the front desk sees whom it registered
    return patient


def patient_update(*, patient: Patient, **fields) -> Patient:
    if "mrn" in fields and Patient.objects.filter(mrn=fields["mrn"]).exclude(pk=patient.pk).exists():
        raise ServiceError("A patient with this medical record number exists.", code="mrn_taken", field="mrn")
    for name, value in fields.items():
        setattr(patient, name, value)
    patient.save()
    audit_record(action=AuditEvent.Action.PATIENT_CHANGED, target=patient, detail={"fields": sorted(fields)})
    return patient


def care_team_add(*, patient: Patient, staff: StaffMember, role: str) -> CareTeamMembership:
    """Puts `staff` on the care team, with its grants, in one transaction."""
    if not staff.is_active:
        raise ServiceError("This staff member is not active.", code="staff_inactive", field="staff")
    if staff.role == StaffMember.Role.RECEPTIONIST:
        raise ServiceError(
            "Receptionists see demographics only; they join no care team.",
            code="receptionist_not_clinical",
            field="staff",
        )
    with transaction.atomic():
        membership, created = CareTeamMembership.objects.get_or_create(
            patient=patient, staff=staff, defaults={"role": role}
        )
        if not created:
            raise ServiceError("Already on this patient's care team.", code="already_on_team", field="staff")
        for codename in care_team_grants(staff.role):
            assign_perm(codename, staff.user, patient)
        audit_record(
            action=AuditEvent.Action.PERMISSION_GRANTED,
            target=patient,
            detail={
                "staff": staff.pk,
                "as": f"care team ({role})",
                "permissions": sorted(care_team_grants(staff.role)),
            },
        )
    return membership


def care_team_remove(*, membership: CareTeamMembership) -> None:
    """Takes `staff` off the care team and its grants with it, in one transaction."""
    with transaction.atomic():
        for codename in care_team_grants(membership.staff.role):
            remove_perm(codename, membership.staff.user, membership.patient)
        audit_record(
            action=AuditEvent.Action.PERMISSION_REVOKED,
            target=membership.patient,
            detail={"staff": membership.staff_id, "as": f"care team ({membership.role})"},
        )
        membership.delete()


def note_add(*, patient: Patient, author: StaffMember, body: str, corrects: int | None = None) -> ClinicalNote:
    body = (body or "").strip()
    if not body:
        raise ServiceError("A note needs a body.", code="invalid", field="body")
    corrected = None
    if corrects is not None:
        corrected = ClinicalNote.objects.filter(pk=corrects, patient=patient).first()
        if corrected is None:
            raise ServiceError("The corrected note is not a note of this patient.", code="invalid", field="corrects")
    return ClinicalNote.objects.create(patient=patient, author=author, body=body, corrects=corrected)
