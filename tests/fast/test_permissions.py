"""Who may see a patient (hospitals/permissions.py, hospitals/selectors.py): roles and guardian grants."""

import datetime

import pytest
from django.http import Http404
from django.test import RequestFactory
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from accounts.models import User
from accounts.permissions import IsPlatformStaff
from accounts.services import user_create_verified
from hospitals import permissions as perms
from hospitals import selectors, services
from hospitals.views import PatientRecordView
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


def record_view(view_class, staff: StaffMember, method: str, pk: int):
    """A patient endpoint as DRF sets it up for `method` by `staff`, up to the point its handler looks the record up."""
    request = Request(getattr(RequestFactory(), method.lower())(f"/api/patients/{pk}/"))
    request.user = staff.user
    view = view_class()
    view.request, view.args, view.kwargs, view.format_kwarg = request, (), {"pk": pk}, None
    return view


def test_a_patient_the_caller_may_not_view_is_a_404_and_a_missing_grant_a_403(in_hospital):
    admin = make_staff(in_hospital, StaffMember.Role.HOSPITAL_ADMIN)
    receptionist = make_staff(in_hospital, StaffMember.Role.RECEPTIONIST)
    outsider = make_staff(in_hospital, StaffMember.Role.DOCTOR)
    registered = patient(receptionist, "MRN-PA-1")  # the receptionist may view it, demographics only
    endpoints = [(view, method) for view in PatientRecordView.__subclasses__() for method in view.patient_needs]
    assert len(endpoints) == 8
    for view, method in endpoints:
        # Every method, whatever it needs: a record outside the caller's patients does not exist for it.
        with pytest.raises(Http404):
            record_view(view, outsider, method, registered.pk).patient()
        assert record_view(view, admin, method, registered.pk).patient() == registered
        if view.patient_needs[method] == perms.VIEW:
            assert record_view(view, receptionist, method, registered.pk).patient() == registered
        else:  # it may view the record, so it learns only that it may not do this
            with pytest.raises(PermissionDenied, match="You may view this patient, but not do this."):
                record_view(view, receptionist, method, registered.pk).patient()


def test_every_patient_endpoint_names_the_grant_each_of_its_methods_needs():
    for view in PatientRecordView.__subclasses__():
        handlers = {name.upper() for name in view.http_method_names if name not in {"options", "head"}}
        assert {method for method in handlers if hasattr(view, method.lower())} == set(view.patient_needs), view
