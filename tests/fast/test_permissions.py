"""Who may see a patient (hospitals/permissions.py, hospitals/selectors.py): roles and guardian grants."""

import datetime

from django.test import RequestFactory

from accounts.models import User
from accounts.permissions import IsPlatformStaff
from accounts.services import user_create_verified
from hospitals import permissions as perms
from hospitals import selectors, services
from staff import services as staff_services
from staff.models import StaffMember
from tenants.models import Hospital
from tests.fast.conftest import make_staff


def patient(registered_by, mrn: str, **fields):
    return services.patient_create(
        created_by=registered_by,
        mrn=mrn,
        first_name="Pat",
        last_name=mrn,
        date_of_birth=datetime.date(1980, 1, 1),
        **fields,
    )


def test_a_care_team_grants_view_and_notes_and_a_doctor_may_change(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    nurse, doctor = make_staff(in_hospital), make_staff(in_hospital, StaffMember.Role.DOCTOR)
    record = patient(admin, "MRN-CT-1")
    assert perms.patient_perms(nurse, record) == frozenset()
    services.care_team_add(patient=record, staff=nurse, role="nurse")
    services.care_team_add(patient=record, staff=doctor, role="attending")
    assert perms.patient_perms(nurse, record) == {perms.VIEW, perms.CLINICAL, perms.ADD_NOTE}
    assert perms.patient_perms(doctor, record) == perms.ALL_PATIENT_PERMS
    assert list(selectors.patient_list(staff=nurse)) == [record]


def test_a_receptionist_sees_whom_it_registered_and_nothing_clinical(in_hospital):
    receptionist = make_staff(in_hospital, StaffMember.Role.RECEPTIONIST)
    other = make_staff(in_hospital, StaffMember.Role.RECEPTIONIST)
    record = patient(receptionist, "MRN-RC-1")
    assert perms.patient_perms(receptionist, record) == {perms.VIEW}
    assert list(selectors.patient_list(staff=receptionist)) == [record]
    assert list(selectors.patient_list(staff=other)) == []


def test_a_department_head_sees_the_departments_patients(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    head = make_staff(in_hospital, StaffMember.Role.DOCTOR)
    department = staff_services.department_create(name="Neurology", code="NEURO", head=head)
    inside, outside = patient(admin, "MRN-DH-1", department=department), patient(admin, "MRN-DH-2")
    assert perms.patient_perms(head, inside) == {perms.VIEW, perms.CLINICAL}
    assert list(selectors.patient_list(staff=head)) == [inside]
    assert perms.patient_perms(head, outside) == frozenset()


def test_an_admin_sees_everything_and_nobody_else_does_by_default(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    records = [patient(admin, f"MRN-AD-{i}") for i in range(3)]
    assert set(selectors.patient_list(staff=admin)) >= set(records)
    assert list(selectors.patient_list(staff=make_staff(in_hospital))) == []


def test_platform_staff_only_on_the_platform_domain(hospital_a):
    platform = Hospital.objects.get(schema_name="public")
    staff = User.objects.create_superuser("ops@fast.example", "ops-Passw0rd-long")
    member = user_create_verified(hospital=hospital_a, email="member@fast.example", password="m-Passw0rd-long")

    def allowed(user, tenant) -> bool:
        request = RequestFactory().get("/api/platform/hospitals/")
        request.user, request.tenant = user, tenant
        return IsPlatformStaff().has_permission(request, None)

    assert allowed(staff, platform)
    assert not allowed(staff, hospital_a)  # platform staff have no say inside a hospital
    assert not allowed(member, platform) and not allowed(member, hospital_a)
