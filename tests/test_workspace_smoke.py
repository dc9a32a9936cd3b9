"""A first pass over the workspace API: a care team member sees exactly their patient."""

from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from staff.models import StaffMember
from staff.services import staff_member_create
from tests.support import PASSWORD, unique_email


def staff_api(api_for, hospital, role):
    user = user_create_verified(hospital=hospital, email=unique_email(role), password=PASSWORD)
    with tenant_context(hospital):
        staff = staff_member_create(user=user, role=role)
    api = api_for(hospital)
    api.login(user.email)
    return api, staff


def test_care_team_grant_and_revoke_take_effect_on_the_next_request(api_for, hospital_a):
    admin, _ = staff_api(api_for, hospital_a, StaffMember.Role.HOSPITAL_ADMIN)
    doctor, doctor_staff = staff_api(api_for, hospital_a, StaffMember.Role.DOCTOR)
    response = admin.post(
        "/api/patients/",
        json={"mrn": unique_email("mrn")[:20], "first_name": "Pat", "last_name": "Ient", "date_of_birth": "1980-01-02"},
    )
    assert response.status_code == 201, response.text
    patient_id = response.json()["id"]
    assert doctor.get(f"/api/patients/{patient_id}/").status_code == 404
    assert doctor.get("/api/patients/").json()["count"] == 0

    response = admin.post(
        f"/api/patients/{patient_id}/care-team/", json={"staff": doctor_staff.pk, "role": "attending"}
    )
    assert response.status_code == 201, response.text
    member_id = response.json()["id"]
    detail = doctor.get(f"/api/patients/{patient_id}/")
    assert detail.status_code == 200 and set(detail.json()["permissions"]) == {
        "view_patient",
        "change_patient",
        "view_clinical",
        "add_note",
    }
    assert doctor.post(f"/api/patients/{patient_id}/notes/", json={"body": "Seen today."}).status_code == 201
    assert doctor.patch(f"/api/patients/{patient_id}/", json={"phone": "555"}).json()["phone"] == "555"
    assert [p["id"] for p in doctor.get("/api/patients/").json()["results"]] == [patient_id]

    assert admin.delete(f"/api/patients/{patient_id}/care-team/{member_id}/").status_code == 204
    assert doctor.get(f"/api/patients/{patient_id}/").status_code == 404
    assert doctor.get(f"/api/patients/{patient_id}/notes/").status_code == 404
    assert doctor.get("/api/patients/").json()["count"] == 0
