"""Break-glass access and the grants an access is made under (hospitals.services, permissions, selectors)."""

import datetime

import pytest
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import audit_target_history
from core.api import ServiceError
from emails.models import Email
from hospitals import permissions as perms
from hospitals import selectors, services
from hospitals.models import BreakGlassGrant, Patient
from hospitals.permissions import Via
from staff import services as staff_services
from staff.models import StaffMember
from tests.fast.conftest import make_staff

REASON = "Unconscious patient in the ER, allergies unknown, attending unreachable."
Role = StaffMember.Role


def patient(registered_by, mrn: str, **fields) -> Patient:
    return services.patient_create(
        created_by=registered_by,
        mrn=mrn,
        first_name="Pat",
        last_name=mrn,
        date_of_birth=datetime.date(1980, 1, 1),
        **fields,
    )


def expire(grant: BreakGlassGrant) -> None:
    """Moves the deadline into the past in the database (nobody sleeps)."""
    BreakGlassGrant.objects.filter(pk=grant.pk).update(
        opened_at=F("opened_at") - datetime.timedelta(hours=2), expires_at=F("expires_at") - datetime.timedelta(hours=2)
    )


def test_break_glass_opens_the_record_until_the_deadline_exactly(in_hospital):
    admin, nurse = make_staff(in_hospital, Role.HOSPITAL_ADMIN), make_staff(in_hospital, Role.NURSE)
    record = patient(admin, "BG-1")
    assert perms.patient_perms(nurse, record) == frozenset()
    assert selectors.patient_get(staff=nurse, pk=record.pk) is None

    grant = services.break_glass_open(staff=nurse, patient=record, reason=REASON)
    assert grant.expires_at - grant.opened_at == datetime.timedelta(minutes=60)  # the default policy
    assert perms.patient_perms(nurse, record) == perms.BREAK_GLASS_GRANTS
    assert list(selectors.patient_list(staff=nurse)) == [record]
    found = selectors.patient_get(staff=nurse, pk=record.pk)
    assert found.break_glass_id == grant.pk and found.break_glass_reason == REASON
    access = perms.patient_grants(nurse, found)
    assert access.via == (Via.BREAK_GLASS,) and access.audit_detail() == {
        "via": ["break_glass"],
        "break_glass": {"id": grant.pk, "reason": REASON},
    }
    opened = AuditEvent.objects.get(action=AuditEvent.Action.BREAK_GLASS_OPENED, target_id=str(record.pk))
    assert opened.actor_id == nurse.user_id and opened.detail["break_glass"]["reason"] == REASON
    # The admin (and only the admins and privacy officers) are mailed, through the outbox.
    assert set(Email.objects.filter(kind=Email.Kind.BREAK_GLASS_OPENED).values_list("to", flat=True)) == {
        s.user.email for s in StaffMember.objects.filter(role__in=[Role.HOSPITAL_ADMIN, Role.PRIVACY_OFFICER])
    }

    expire(grant)  # no task has run: the checks read the deadline themselves
    assert perms.patient_perms(nurse, record) == frozenset()
    assert list(selectors.patient_list(staff=nurse)) == []
    assert selectors.patient_get(staff=nurse, pk=record.pk) is None
    assert BreakGlassGrant.objects.get(pk=grant.pk).ended_at is None


def test_the_policy_sets_the_duration(in_hospital):
    admin, doctor = make_staff(in_hospital, Role.HOSPITAL_ADMIN), make_staff(in_hospital, Role.DOCTOR)
    services.access_policy_update(break_glass_minutes=15, actor=admin.user)
    grant = services.break_glass_open(staff=doctor, patient=patient(admin, "BG-P"), reason=REASON)
    assert grant.expires_at - grant.opened_at == datetime.timedelta(minutes=15)
    with pytest.raises(Exception):  # noqa: B017  (Django's ValidationError: the API answers 400)
        services.access_policy_update(break_glass_minutes=0)


@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.PRIVACY_OFFICER, Role.HOSPITAL_ADMIN])
def test_only_doctors_and_nurses_break_the_glass(in_hospital, role):
    admin = make_staff(in_hospital, Role.HOSPITAL_ADMIN)
    with pytest.raises(ServiceError) as refused:
        services.break_glass_open(staff=make_staff(in_hospital, role), patient=patient(admin, "BG-R"), reason=REASON)
    assert (refused.value.code, refused.value.status) == ("role_not_clinical", 403)
    assert not BreakGlassGrant.objects.exists()


@pytest.mark.parametrize(
    "reason",
    [
        "",
        "emergency",
        "1234567890" * 3,
        "emergency\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b",  # zero-width padding
        "emergency" + " " * 30,
        "emergency\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    ],
)
def test_a_reason_must_say_something(in_hospital, reason):
    admin, nurse = make_staff(in_hospital, Role.HOSPITAL_ADMIN), make_staff(in_hospital, Role.NURSE)
    record = patient(admin, "BG-S")
    with pytest.raises(ServiceError) as refused:
        services.break_glass_open(staff=nurse, patient=record, reason=reason)
    assert refused.value.code == "reason_too_short"


def test_a_reason_is_kept_in_canonical_form(in_hospital):
    admin, nurse = make_staff(in_hospital, Role.HOSPITAL_ADMIN), make_staff(in_hospital, Role.NURSE)
    # Full-width letters (NFKC folds them), a zero-width joiner and a right-to-left mark, runs of spaces.
    grant = services.break_glass_open(
        staff=nurse,
        patient=patient(admin, "BG-C"),
        reason="\uff25\uff32  cardiac\u200d arrest,\u200f   no team member on the ward",
    )
    assert grant.reason == "ER cardiac arrest, no team member on the ward"


def test_care_team_members_and_repeats_are_refused(in_hospital):
    admin, nurse = make_staff(in_hospital, Role.HOSPITAL_ADMIN), make_staff(in_hospital, Role.NURSE)
    mine, other = patient(admin, "BG-T1"), patient(admin, "BG-T2")
    services.care_team_add(patient=mine, staff=nurse, role="nurse")
    with pytest.raises(ServiceError) as refused:
        services.break_glass_open(staff=nurse, patient=mine, reason=REASON)
    assert refused.value.code == "on_care_team"
    first = services.break_glass_open(staff=nurse, patient=other, reason=REASON)
    with pytest.raises(ServiceError) as refused:
        services.break_glass_open(staff=nurse, patient=other, reason=REASON)
    assert (refused.value.code, refused.value.status) == ("break_glass_open", 409)
    expire(first)
    assert services.break_glass_open(staff=nurse, patient=other, reason=REASON).pk != first.pk  # again, once over


def test_a_role_without_break_glass_loses_a_running_grant_at_once(in_hospital):
    admin, nurse = make_staff(in_hospital, Role.HOSPITAL_ADMIN), make_staff(in_hospital, Role.NURSE)
    record = patient(admin, "BG-ROLE")
    services.break_glass_open(staff=nurse, patient=record, reason=REASON)
    staff_services.staff_member_update(staff=nurse, role=Role.RECEPTIONIST)
    assert perms.patient_perms(nurse, record) == frozenset()
    assert list(selectors.patient_list(staff=nurse)) == []


def test_the_sweep_records_the_end_of_expired_grants_only(in_hospital):
    admin = make_staff(in_hospital, Role.HOSPITAL_ADMIN)
    nurse, doctor = make_staff(in_hospital, Role.NURSE), make_staff(in_hospital, Role.DOCTOR)
    record = patient(admin, "BG-SW")
    expired = services.break_glass_open(staff=nurse, patient=record, reason=REASON)
    live = services.break_glass_open(staff=doctor, patient=record, reason=REASON)
    expire(expired)
    assert services.break_glass_expired_end() == 1
    assert BreakGlassGrant.objects.get(pk=expired.pk).ended_at is not None
    assert BreakGlassGrant.objects.get(pk=live.pk).ended_at is None
    ended = AuditEvent.objects.get(action=AuditEvent.Action.BREAK_GLASS_ENDED)
    assert ended.target_id == str(record.pk) and ended.detail["break_glass"] == {"id": expired.pk, "reason": REASON}
    assert services.break_glass_expired_end() == 0  # once


def test_review_once_never_ones_own_and_not_justified_ends_access(in_hospital):
    admin, nurse = make_staff(in_hospital, Role.HOSPITAL_ADMIN), make_staff(in_hospital, Role.NURSE)
    officer = make_staff(in_hospital, Role.PRIVACY_OFFICER)
    record = patient(admin, "BG-REV")
    grant = services.break_glass_open(staff=nurse, patient=record, reason=REASON)
    with pytest.raises(ServiceError) as refused:
        services.break_glass_review(grant=grant, reviewer=nurse, outcome="justified")
    assert refused.value.code == "own_grant"

    reviewed = services.break_glass_review(grant=grant, reviewer=officer, outcome="not_justified", comment="  No  ER. ")
    assert (reviewed.outcome, reviewed.review_comment, reviewed.reviewed_by) == ("not_justified", "No ER.", officer)
    assert reviewed.expires_at <= timezone.now() and reviewed.ended_at is not None
    assert perms.patient_perms(nurse, record) == frozenset()
    with pytest.raises(ServiceError) as refused:
        services.break_glass_review(grant=grant, reviewer=admin, outcome="justified")
    assert refused.value.code == "already_reviewed"
    event = AuditEvent.objects.get(action=AuditEvent.Action.BREAK_GLASS_REVIEWED)
    assert event.actor_id == officer.user_id and event.detail["outcome"] == "not_justified"
    assert event.detail["ended_early"] is True

    assert list(selectors.break_glass_list(state="closed")) == [reviewed]
    assert list(selectors.break_glass_list(state="open")) == []
    assert list(selectors.break_glass_list(staff_id=nurse.pk, patient_id=record.pk)) == [reviewed]
    assert list(selectors.break_glass_list(since=timezone.now() + datetime.timedelta(minutes=1))) == []


def test_privacy_officers_see_no_record_and_join_no_care_team(in_hospital):
    admin, officer = make_staff(in_hospital, Role.HOSPITAL_ADMIN), make_staff(in_hospital, Role.PRIVACY_OFFICER)
    record = patient(admin, "BG-PO")
    assert perms.patient_perms(officer, record) == frozenset()
    assert list(selectors.patient_list(staff=officer)) == []
    with pytest.raises(ServiceError):
        services.care_team_add(patient=record, staff=officer, role="other")
    with pytest.raises(ServiceError):
        staff_services.department_create(name="Privacy", code="PRIV", head=officer)
    # Nor does a carer become one while on a care team.
    nurse = make_staff(in_hospital, Role.NURSE)
    services.care_team_add(patient=record, staff=nurse, role="nurse")
    with pytest.raises(ServiceError) as refused:
        staff_services.staff_member_update(staff=nurse, role=Role.PRIVACY_OFFICER)
    assert refused.value.code == "on_care_teams"


def test_each_grant_is_named_in_the_access(in_hospital):
    admin = make_staff(in_hospital, Role.HOSPITAL_ADMIN)
    carer, head = make_staff(in_hospital, Role.NURSE), make_staff(in_hospital, Role.DOCTOR)
    desk = make_staff(in_hospital, Role.RECEPTIONIST)
    department = staff_services.department_create(name="Cardiology", code="CARDIO-BG", head=head)
    record = patient(desk, "BG-VIA", department=department)
    services.care_team_add(patient=record, staff=carer, role="nurse")
    assert perms.patient_grants(admin, record).via == (Via.ADMIN,)
    assert perms.patient_grants(carer, record).via == (Via.CARE_TEAM,)
    assert perms.patient_grants(head, record).via == (Via.DEPARTMENT_HEAD,)
    assert perms.patient_grants(desk, record).via == (Via.REGISTERED,)

    # Events on the record carry it; the access log filters on it.
    access = perms.patient_grants(carer, record)
    services.patient_access_record(action=AuditEvent.Action.PATIENT_VIEWED, patient=record, access=access)
    services.note_add(patient=record, author=carer, body="Seen.", access=access)
    history = audit_target_history(target_type="hospitals.patient", target_id=str(record.pk), via=Via.CARE_TEAM)
    assert [e.action for e in history] == [AuditEvent.Action.NOTE_ADDED, AuditEvent.Action.PATIENT_VIEWED]
    assert not audit_target_history(target_type="hospitals.patient", target_id=str(record.pk), via=Via.BREAK_GLASS)
