"""The audit trail: who did what, per hospital; append-only in the database itself."""

import pytest
from django.db import DatabaseError, transaction
from django_tenants.utils import schema_context, tenant_context

from accounts.services import user_create_verified
from audit.models import AuditEvent
from staff.models import StaffMember
from staff.services import staff_member_create
from tests.support import PASSWORD, unique_email


def admin_api(api_for, hospital):
    user = user_create_verified(hospital=hospital, email=unique_email("auditor"), password=PASSWORD)
    with tenant_context(hospital):
        staff_member_create(user=user, role=StaffMember.Role.HOSPITAL_ADMIN)
    api = api_for(hospital)
    api.login(user.email)
    return api, user


def events(api, **filters):
    response = api.get("/api/audit/", params={"page_size": 100, **filters})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_auth_and_record_events_are_recorded_with_actor_ip_and_agent(api_for, hospital_a, hospital_b, user_a):
    api, admin = admin_api(api_for, hospital_a)
    staff = api_for(hospital_a)
    staff.post(
        "/accounts/login/",
        json={"email": user_a.email, "password": "wrong-password-1"},
        headers={"User-Agent": "audit-test/1.0"},
    )
    staff.login(user_a.email)
    response = api.post(
        "/api/patients/",
        json={"mrn": unique_email("aud")[:20], "first_name": "Au", "last_name": "Dit", "date_of_birth": "1960-05-05"},
    )
    patient_id = response.json()["id"]
    assert api.get(f"/api/patients/{patient_id}/").status_code == 200
    assert api.patch(f"/api/patients/{patient_id}/", json={"phone": "123"}).status_code == 200
    with tenant_context(hospital_a):
        member = StaffMember.objects.create(user=user_a, role=StaffMember.Role.NURSE)
    granted = api.post(f"/api/patients/{patient_id}/care-team/", json={"staff": member.pk, "role": "nurse"})
    api.delete(f"/api/patients/{patient_id}/care-team/{granted.json()['id']}/")
    staff.post("/accounts/logout/")

    failed = events(api, action="login_failed", actor="")
    assert any(
        e["detail"]["email"] == user_a.email and e["user_agent"] == "audit-test/1.0" and e["ip"] == "127.0.0.1"
        for e in failed
    )
    assert "wrong-password-1" not in str(failed)
    mine = {e["action"] for e in events(api, actor=admin.email)}
    assert {"login_succeeded", "patient_viewed", "patient_changed", "permission_granted", "permission_revoked"} <= mine
    assert any(e["target_id"] == str(patient_id) for e in events(api, action="patient_viewed"))
    assert events(api, action="logout")
    # Hospital B's trail has none of it.
    api_b, _ = admin_api(api_for, hospital_b)
    assert not [e for e in events(api_b) if e["actor_email"] in (admin.email, user_a.email)]


def test_role_changes_are_recorded_with_actor_target_and_both_roles(api_for, hospital_a):
    api, admin = admin_api(api_for, hospital_a)
    member = user_create_verified(hospital=hospital_a, email=unique_email("role"), password=PASSWORD)
    added = api.post("/api/staff/", json={"email": member.email, "role": "nurse"})
    assert added.status_code == 201, added.text
    staff_id = added.json()["id"]
    assert api.patch(f"/api/staff/{staff_id}/", json={"role": "doctor"}).status_code == 200
    assert api.patch(f"/api/staff/{staff_id}/", json={"is_active": False}).status_code == 200  # not a role change

    changes = [e for e in events(api, action="staff_role_changed") if e["target_id"] == str(staff_id)]
    assert [(e["detail"]["old_role"], e["detail"]["new_role"]) for e in changes] == [
        ("nurse", "doctor"),
        (None, "nurse"),
    ]
    for event in changes:
        assert event["actor_email"] == admin.email and event["target_type"] == "staff.staffmember"
        assert event["detail"]["email"] == member.email


def test_the_trail_is_append_only_in_the_database(hospital_a):
    with tenant_context(hospital_a):
        event = AuditEvent.objects.create(action=AuditEvent.Action.LOGIN_FAILED, detail={"email": "x@y.org"})
        for attempt in (
            lambda: AuditEvent.objects.filter(pk=event.pk).update(action="logout"),
            lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
        ):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                attempt()
        assert AuditEvent.objects.get(pk=event.pk).action == AuditEvent.Action.LOGIN_FAILED


def test_only_hospital_admins_read_the_trail_and_filters_are_checked(api_for, hospital_a, user_a):
    staff = api_for(hospital_a)
    staff.login(user_a.email)
    assert staff.get("/api/audit/").status_code == 403
    api, _ = admin_api(api_for, hospital_a)
    assert api.get("/api/audit/?action=nope").status_code == 400
    assert api.get("/api/audit/?since=yesterday").status_code == 400
    assert api.get("/api/audit/?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z").status_code == 200


def test_platform_events_live_in_public_for_platform_staff(api_for, platform_user, api_a, user_a):
    platform = api_for(None)
    platform.login(platform_user.email)
    slug = f"audit-{unique_email('s').split('-')[1].split('@')[0]}"
    assert (
        platform.post(
            "/api/platform/hospitals/", json={"name": "Audited", "slug": slug, "admin_email": unique_email("aud")}
        ).status_code
        == 201
    )
    platform.post(f"/api/platform/hospitals/{slug}/suspend/")
    response = platform.get("/api/platform/audit/", params={"actor": platform_user.email, "page_size": 100})
    actions = {(e["action"], e["detail"].get("slug", "")) for e in response.json()["results"]}
    assert ("hospital_onboarded", slug) in actions
    assert any(e["action"] == "hospital_suspended" for e in response.json()["results"])
    with schema_context("public"):
        assert AuditEvent.objects.filter(action="hospital_onboarded", detail__slug=slug).exists()
    hospital_token = api_a.login(user_a.email).json()["access"]
    assert api_for(None).get("/api/platform/audit/", token=hospital_token).status_code == 401


BAD_FILTERS = [
    (name, value)
    for name in ("since", "until")
    for value in (
        "2026-13-01T00:00:00",
        "2026-02-30T00:00:00",
        "2026-01-01T25:00:00",
        "0000-01-01T00:00:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-01-01T00:00:00\x00",
        "yesterday",
    )
] + [("actor", "\x00"), ("actor", "a\x00@example.org"), ("actor", "x" * 300), ("action", "\x00"), ("action", "nope")]


@pytest.mark.parametrize(("name", "value"), BAD_FILTERS)
def test_invalid_filters_are_a_json_400_naming_the_parameter(api_for, hospital_a, platform_user, name, value):
    """Issue 11, #6: impossible dates, NUL characters and unknown actions were 500s."""
    hospital_admin, _ = admin_api(api_for, hospital_a)
    platform = api_for(None)
    platform.login(platform_user.email)
    for api, path in ((hospital_admin, "/api/audit/"), (platform, "/api/platform/audit/")):
        response = api.get(path, params={name: value})
        assert response.status_code == 400, (path, name, value, response.text)
        body = response.json()
        assert body["code"] == "invalid" and list(body["fields"]) == [name], body


def test_valid_and_empty_filters_still_filter(api_for, hospital_a):
    api, admin = admin_api(api_for, hospital_a)
    assert {e["action"] for e in events(api, actor=str(admin.pk))} == {"login_succeeded"}
    assert events(
        api, actor=admin.email.upper(), action="login_succeeded", since="2000-01-01", until="2999-01-01T00:00:00+02:00"
    )
    assert not events(api, actor=admin.email, until="2000-01-01T00:00:00Z")
    assert events(api, actor=admin.email, since="", until=" ", action="")  # an empty filter is no filter
