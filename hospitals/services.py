"""A hospital's patient records (run in its schema): patients, care teams, notes, and the grants that let staff
see them. Grants change in the same transaction as the fact that justifies them.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError
from hospitals import emails
from hospitals import permissions as perms
from hospitals.models import AccessPolicy, BreakGlassGrant, CareTeamMembership, ClinicalNote, Patient
from hospitals.permissions import BREAK_GLASS_ROLES, PatientGrants, Via, care_team_grants, live_break_glass
from staff.models import NON_CLINICAL_ROLES, StaffMember

BREAK_GLASS_REASON_MIN = 20  # characters, once canonical (below)
BREAK_GLASS_REASON_MIN_LETTERS = 10
BREAK_GLASS_REASON_MAX = 2000


def _access_detail(access: PatientGrants | None, **detail) -> dict:
    """An audit event's detail on a patient: what happened, and under which grant the caller did it."""
    return {**(access.audit_detail() if access is not None else {}), **detail}


def patient_access_record(*, action: str, patient: Patient, access: PatientGrants, **detail) -> None:
    """A read of a patient's record, notes or care team, in the trail with the grant it was made under."""
    audit_record(action=action, target=patient, detail=_access_detail(access, **detail))


def staff_role_grants_move(*, staff: StaffMember, old_role: str) -> None:
    """The role-change hook (`staff.hooks`, registered in HospitalsConfig.ready()): moves the patient grants
    that follow the role, inside the role change's transaction. Becoming a receptionist is refused while the
    member sits on a care team: the admin takes them off it first. Refused rather than done silently, so that
    no patient loses its carer unnoticed. (A department's headship is `staff`'s own check.)
    """
    receptionist = StaffMember.Role.RECEPTIONIST
    if staff.role in NON_CLINICAL_ROLES and staff.care_teams.exists():
        raise ServiceError(
            "Receptionists and privacy officers are on no care team: take this member off theirs first.",
            code="on_care_teams",
            field="role",
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


def patient_update(*, patient: Patient, access: PatientGrants | None = None, **fields) -> Patient:
    if "mrn" in fields and Patient.objects.filter(mrn=fields["mrn"]).exclude(pk=patient.pk).exists():
        raise ServiceError("A patient with this medical record number exists.", code="mrn_taken", field="mrn")
    for name, value in fields.items():
        setattr(patient, name, value)
    patient.save()
    audit_record(
        action=AuditEvent.Action.PATIENT_CHANGED, target=patient, detail=_access_detail(access, fields=sorted(fields))
    )
    return patient


def care_team_add(
    *, patient: Patient, staff: StaffMember, role: str, access: PatientGrants | None = None
) -> CareTeamMembership:
    """Puts `staff` on the care team, with its grants, in one transaction."""
    if not staff.is_active:
        raise ServiceError("This staff member is not active.", code="staff_inactive", field="staff")
    if staff.role in NON_CLINICAL_ROLES:
        raise ServiceError(
            "Receptionists and privacy officers see no clinical record; they join no care team.",
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
            detail=_access_detail(
                access,
                staff=staff.pk,
                **{"as": f"care team ({role})"},
                permissions=sorted(care_team_grants(staff.role)),
            ),
        )
    return membership


def care_team_remove(*, membership: CareTeamMembership, access: PatientGrants | None = None) -> None:
    """Takes `staff` off the care team and its grants with it, in one transaction."""
    with transaction.atomic():
        for codename in care_team_grants(membership.staff.role):
            remove_perm(codename, membership.staff.user, membership.patient)
        audit_record(
            action=AuditEvent.Action.PERMISSION_REVOKED,
            target=membership.patient,
            detail=_access_detail(access, staff=membership.staff_id, **{"as": f"care team ({membership.role})"}),
        )
        membership.delete()


def note_add(
    *,
    patient: Patient,
    author: StaffMember,
    body: str,
    corrects: int | None = None,
    access: PatientGrants | None = None,
) -> ClinicalNote:
    body = (body or "").strip()
    if not body:
        raise ServiceError("A note needs a body.", code="invalid", field="body")
    corrected = None
    if corrects is not None:
        corrected = ClinicalNote.objects.filter(pk=corrects, patient=patient).first()
        if corrected is None:
            raise ServiceError("The corrected note is not a note of this patient.", code="invalid", field="corrects")
    with transaction.atomic():
        note = ClinicalNote.objects.create(patient=patient, author=author, body=body, corrects=corrected)
        audit_record(
            action=AuditEvent.Action.NOTE_ADDED,
            actor=author.user,
            target=patient,
            detail=_access_detail(access, note=note.pk, corrects=corrects),
        )
    return note


# Break-glass (emergency) access ----------------------------------------------------------------------------


def access_policy_get() -> AccessPolicy:
    """The hospital's access policy (its one row, made with the defaults on first read)."""
    try:
        return AccessPolicy.objects.get_or_create(pk=1)[0]
    except IntegrityError:  # two first reads at once: the other one made it
        return AccessPolicy.objects.get(pk=1)


def access_policy_update(*, break_glass_minutes: int, actor=None) -> AccessPolicy:
    with transaction.atomic():
        policy = access_policy_get()
        old = policy.break_glass_minutes
        policy.break_glass_minutes = break_glass_minutes
        policy.full_clean()
        policy.save()
        audit_record(
            action=AuditEvent.Action.ACCESS_POLICY_CHANGED,
            actor=actor,
            target=policy,
            detail={"break_glass_minutes": [old, break_glass_minutes]},
        )
    return policy


def break_glass_reason_clean(reason: str) -> str:
    """The reason in its canonical form: NFKC (look-alike and full-width forms folded), without the control and
    format characters that carry no readable text (zero-width spaces, direction marks, NUL), whitespace runs
    collapsed. What is left must read as a sentence: a minimum length, and letters in it."""
    text = unicodedata.normalize("NFKC", reason or "")
    text = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cf") else " " for ch in text)
    text = " ".join(text.split())
    letters = sum(ch.isalpha() for ch in text)
    if len(text) < BREAK_GLASS_REASON_MIN or letters < BREAK_GLASS_REASON_MIN_LETTERS:
        raise ServiceError(
            f"Say why, in at least {BREAK_GLASS_REASON_MIN} characters: the reason is reviewed.",
            code="reason_too_short",
            field="reason",
        )
    if len(text) > BREAK_GLASS_REASON_MAX:
        raise ServiceError(
            f"Keep the reason under {BREAK_GLASS_REASON_MAX} characters.", code="reason_too_long", field="reason"
        )
    return text


def break_glass_open(*, staff: StaffMember, patient: Patient, reason: str) -> BreakGlassGrant:
    """Opens `patient`'s record to `staff` (a doctor or nurse off its care team) for the hospital's
    break-glass time: view, clinical record, notes. Audited with the reason; admins and privacy officers are
    mailed through the outbox, in the same transaction."""
    if staff.role not in BREAK_GLASS_ROLES or not staff.is_active:
        raise ServiceError("Only doctors and nurses may break the glass.", code="role_not_clinical", status=403)
    reason = break_glass_reason_clean(reason)
    with transaction.atomic():
        # One opening at a time per member: parallel requests queue here and see each other's grant.
        StaffMember.objects.select_for_update().filter(pk=staff.pk).first()
        if patient.care_team.filter(staff=staff).exists():
            raise ServiceError(
                "You are on this patient's care team: open the record as usual.", code="on_care_team", status=409
            )
        if live_break_glass(staff).filter(patient=patient).exists():
            raise ServiceError(
                "You already have emergency access to this patient.", code="break_glass_open", status=409
            )
        minutes = access_policy_get().break_glass_minutes
        now = timezone.now()
        grant = BreakGlassGrant.objects.create(
            patient=patient, staff=staff, reason=reason, opened_at=now, expires_at=now + timedelta(minutes=minutes)
        )
        access = PatientGrants(perms.BREAK_GLASS_GRANTS, (Via.BREAK_GLASS,), grant.pk, reason)
        audit_record(
            action=AuditEvent.Action.BREAK_GLASS_OPENED,
            actor=staff.user,
            target=patient,
            detail=_access_detail(access, expires_at=grant.expires_at.isoformat(), minutes=minutes),
        )
        emails.break_glass_notify(grant=grant)
    return grant


def break_glass_review(
    *, grant: BreakGlassGrant, reviewer: StaffMember, outcome: str, comment: str = ""
) -> BreakGlassGrant:
    """Records a review's outcome, once. "Not justified" also ends the access at once if it is still running."""
    if grant.staff_id == reviewer.pk:
        raise ServiceError("Nobody reviews their own emergency access.", code="own_grant", status=403)
    if outcome not in BreakGlassGrant.Outcome.values:
        raise ServiceError("Unknown outcome.", code="invalid", field="outcome")
    with transaction.atomic():
        grant = BreakGlassGrant.objects.select_for_update().select_related("patient").get(pk=grant.pk)
        if grant.reviewed_at is not None:
            raise ServiceError("This access was reviewed already.", code="already_reviewed", status=409)
        now = timezone.now()
        ended_early = outcome == BreakGlassGrant.Outcome.NOT_JUSTIFIED and grant.expires_at > now
        grant.outcome, grant.review_comment = outcome, " ".join((comment or "").split())
        grant.reviewed_by, grant.reviewed_at = reviewer, now
        if ended_early:
            grant.expires_at, grant.ended_at = max(now, grant.opened_at + timedelta(microseconds=1)), now
        grant.save()
        audit_record(
            action=AuditEvent.Action.BREAK_GLASS_REVIEWED,
            actor=reviewer.user,
            target=grant.patient,
            detail={
                "break_glass": {"id": grant.pk, "reason": grant.reason},
                "staff": grant.staff_id,
                "outcome": outcome,
                "comment": grant.review_comment,
                "ended_early": ended_early,
            },
        )
    return grant


def break_glass_expired_end() -> int:
    """Records the end of every expired grant of the current hospital (access already ended at the deadline:
    the check reads it; this is the trail's entry, and what the queue shows as ended)."""
    ended = 0
    with transaction.atomic():
        for grant in BreakGlassGrant.objects.select_for_update(skip_locked=True).filter(
            ended_at__isnull=True, expires_at__lte=Now()
        ):
            grant.ended_at = timezone.now()
            grant.save(update_fields=["ended_at"])
            audit_record(
                action=AuditEvent.Action.BREAK_GLASS_ENDED,
                target_type=Patient._meta.label_lower,
                target_id=grant.patient_id,
                detail={"break_glass": {"id": grant.pk, "reason": grant.reason}, "staff": grant.staff_id},
            )
            ended += 1
    return ended
