"""Every list endpoint runs a constant number of SQL queries, whatever the page size or the rows visible.

Counted in-process (django.test.Client on this thread's connection), with the hospital's Host header.
"""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from hospitals import services
from staff import services as staff_services
from staff.models import StaffMember
from tenants.services import hospital_host
from tests.support import PASSWORD, unique_email

ROWS = 55


@pytest.fixture(scope="module")
def world(hospital_a):
    """55 patients on a doctor's care team, 55 notes, 55 staff, 55 departments, 55 invitations."""
    with tenant_context(hospital_a):

        def member(role):
            user = user_create_verified(hospital=hospital_a, email=unique_email(role), password=PASSWORD)
            return staff_services.staff_member_create(user=user, role=role)

        admin, doctor = member(StaffMember.Role.HOSPITAL_ADMIN), member(StaffMember.Role.DOCTOR)
        department = staff_services.department_create(name="Queries", code=unique_email("q")[:30].replace("@", "-"))
        patients = []
        for i in range(ROWS):
            patient = services.patient_create(
                created_by=admin,
                mrn=f"Q{i}-{unique_email()[:12]}",
                first_name="Query",
                last_name=f"Count{i}",
                date_of_birth="1970-01-01",
                department=department,
            )
            services.care_team_add(patient=patient, staff=doctor, role="attending")
            patients.append(patient)
            member(StaffMember.Role.NURSE)
            staff_services.department_create(name=f"D{i}", code=f"{department.code}-{i}"[:32])
            services.note_add(patient=patients[0], author=doctor, body=f"note {i}")
            staff_services.invitation_create(
                hospital=hospital_a, email=unique_email("qinv"), role="nurse", invited_by=admin.user
            )
    return {"admin": admin, "doctor": doctor, "patient": patients[0], "department": department}


def count_queries(hospital, staff, path: str) -> int:
    client = Client(HTTP_HOST=hospital_host(hospital.slug))
    token = client.post(
        "/accounts/login/", {"email": staff.user.email, "password": PASSWORD}, content_type="application/json"
    ).json()["access"]
    try:
        client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")  # warm the per-process caches (content types)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content
    finally:
        connection.set_schema_to_public()
    return len(queries)


@pytest.mark.parametrize(
    "who, path",
    [
        ("doctor", "/api/patients/"),
        ("admin", "/api/patients/"),
        ("doctor", "/api/patients/?search=Query"),
        ("doctor", "/api/patients/?department={department}"),
        ("doctor", "/api/patients/{patient}/notes/"),
        ("admin", "/api/staff/"),
        ("admin", "/api/departments/"),
        ("admin", "/api/invitations/"),
    ],
)
def test_list_query_count_does_not_depend_on_page_size(world, hospital_a, who, path):
    path = path.format(patient=world["patient"].pk, department=world["department"].pk)
    separator = "&" if "?" in path else "?"
    one = count_queries(hospital_a, world[who], f"{path}{separator}page_size=1")
    fifty = count_queries(hospital_a, world[who], f"{path}{separator}page_size=50")
    assert one == fifty, (path, one, fifty)
    assert fifty <= 14  # routing, auth, role, guardian content types, headed departments, count, page


def test_care_team_list_is_constant_too(world, hospital_a):
    patient = world["patient"]
    before = count_queries(hospital_a, world["doctor"], f"/api/patients/{patient.pk}/care-team/")
    with tenant_context(hospital_a):
        for _ in range(10):
            user = user_create_verified(hospital=hospital_a, email=unique_email("ct"), password=PASSWORD)
            services.care_team_add(
                patient=patient, staff=staff_services.staff_member_create(user=user, role="nurse"), role="nurse"
            )
    assert count_queries(hospital_a, world["doctor"], f"/api/patients/{patient.pk}/care-team/") == before
