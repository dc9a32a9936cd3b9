"""Staff roles (staff/services.py): every role change is audited; a refused one changes nothing at all.

A role change reaches the patient grants kept by `hospitals` through the hook it registers
(staff/hooks.py); the refusals and the grant moves share the role change's transaction.
"""

import datetime

import pytest
from guardian.shortcuts import get_perms

from accounts.services import user_create_verified
from audit.models import AuditEvent
from core.api import ServiceError
from emails.models import Email
from hospitals import permissions as perms
from hospitals import services as hospital_services
from staff import hooks, services
from staff.models import StaffMember
from tests.fast.conftest import make_staff


def role_changes(staff: StaffMember) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=AuditEvent.Action.STAFF_ROLE_CHANGED, target_type="staff.staffmember", target_id=str(staff.pk)
        ).order_by("id")
    )


def patient(registered_by: StaffMember, mrn: str):
    return hospital_services.patient_create(
        created_by=registered_by, mrn=mrn, first_name="Pat", last_name=mrn, date_of_birth=datetime.date(1980, 1, 1)
    )


def test_a_role_change_is_audited_with_actor_target_and_both_roles(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    nurse = make_staff(in_hospital, StaffMember.Role.NURSE)
    services.staff_member_update(staff=nurse, role=StaffMember.Role.DOCTOR, actor=admin.user)
    (event,) = role_changes(nurse)[1:]  # the first is the role it was given
    assert event.actor_id == admin.user.pk and event.actor_email == admin.user.email
    assert event.detail == {"email": nurse.user.email, "old_role": "nurse", "new_role": "doctor"}
    # Neither the department nor the active flag is a role change.
    services.staff_member_update(staff=nurse, is_active=False, actor=admin.user)
    services.staff_member_update(staff=nurse, role=StaffMember.Role.DOCTOR, actor=admin.user)
    assert len(role_changes(nurse)) == 2


def test_giving_an_account_a_role_is_a_change_from_none(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    account = user_create_verified(hospital=in_hospital, email="no-role@fast.example", password="x-Passw0rd-long")
    added = services.staff_member_add(
        hospital=in_hospital, email=account.email, role=StaffMember.Role.RECEPTIONIST, actor=admin.user
    )
    (event,) = role_changes(added)
    assert event.actor_id == admin.user.pk
    assert event.detail == {"email": account.email, "old_role": None, "new_role": "receptionist"}


def test_a_role_change_refused_by_the_hospitals_hook_changes_nothing(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    nurse = make_staff(in_hospital, StaffMember.Role.NURSE)
    record = patient(admin, "MRN-RF-1")
    hospital_services.care_team_add(patient=record, staff=nurse, role="nurse")
    with pytest.raises(ServiceError) as refused:
        services.staff_member_update(staff=nurse, role=StaffMember.Role.RECEPTIONIST, actor=admin.user)
    assert refused.value.code == "on_care_teams"
    assert StaffMember.objects.get(pk=nurse.pk).role == StaffMember.Role.NURSE
    assert set(get_perms(nurse.user, record)) == {perms.VIEW, perms.CLINICAL, perms.ADD_NOTE}
    assert len(role_changes(nurse)) == 1  # only the role it was given


def test_a_refusal_after_the_hook_ran_rolls_the_hooks_grants_back(in_hospital):
    """The hook gives a doctor-turned-receptionist the front desk's view of whom it registered; staff then
    refuses the change (the doctor heads a department): the grant must not survive the refusal."""
    doctor = make_staff(in_hospital, StaffMember.Role.DOCTOR)
    registered = patient(doctor, "MRN-RF-2")
    services.department_create(name="Renal", code="RENAL", head=doctor)
    with pytest.raises(ServiceError) as refused:
        services.staff_member_update(staff=doctor, role=StaffMember.Role.RECEPTIONIST)
    assert refused.value.code == "heads_department"
    assert get_perms(doctor.user, registered) == []
    assert StaffMember.objects.get(pk=doctor.pk).role == StaffMember.Role.DOCTOR
    assert len(role_changes(doctor)) == 1


def test_the_role_change_moves_the_grants_kept_by_hospitals(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    doctor = make_staff(in_hospital, StaffMember.Role.DOCTOR)
    record = patient(admin, "MRN-RF-3")
    hospital_services.care_team_add(patient=record, staff=doctor, role="attending")
    assert perms.CHANGE in get_perms(doctor.user, record)
    services.staff_member_update(staff=doctor, role=StaffMember.Role.NURSE)
    assert set(get_perms(doctor.user, record)) == {perms.VIEW, perms.CLINICAL, perms.ADD_NOTE}


def test_hospitals_registers_its_hook_once():
    assert hooks.role_change_hooks() == (hospital_services.staff_role_grants_move,)
    hooks.role_change_hook_register(hospital_services.staff_role_grants_move)  # as a second ready() would
    assert hooks.role_change_hooks() == (hospital_services.staff_role_grants_move,)


def test_an_accepted_invitation_records_the_role_with_the_inviter_as_actor(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    invitation = services.invitation_create(
        hospital=in_hospital, email="invited@fast.example", role=StaffMember.Role.NURSE, invited_by=admin.user
    )
    # The token is only in the queued email's link (never stored in the hospital's schema).
    link = Email.objects.get(to="invited@fast.example", kind=Email.Kind.INVITATION).context["link"]
    token = link.rstrip("/").rsplit("/", 1)[-1]
    user = services.invitation_accept(hospital=in_hospital, token=token, password="invited-Passw0rd-long")
    staff = StaffMember.objects.get(user=user)
    (event,) = role_changes(staff)
    assert event.actor_id == admin.user.pk
    assert event.detail == {
        "email": "invited@fast.example",
        "old_role": None,
        "new_role": "nurse",
        "invitation": invitation.pk,
    }
