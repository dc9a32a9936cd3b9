"""A hospital's MFA policy over real HTTP: who must have a second factor, enrolment-only sessions, admin resets."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import Authenticator
from accounts.services import user_create_verified
from audit.models import AuditEvent
from staff import services as staff_services
from staff.models import MfaPolicy, StaffMember
from tests.conftest import _make_hospital
from tests.passkey import SoftPasskey
from tests.support import PASSWORD, unique_email
from tests.test_mfa import code_at, enrol, events, password_step
from tests.test_webauthn import origin, register

ADMIN, DOCTOR, NURSE = StaffMember.Role.HOSPITAL_ADMIN, StaffMember.Role.DOCTOR, StaffMember.Role.NURSE


@pytest.fixture(scope="module")
def hospital_p(db_access):
    """A hospital of its own: its policy changes nothing for the other tests' hospitals."""
    return _make_hospital("mfapolicy")


@pytest.fixture
def member(hospital_p):
    def make(role: str | None, name: str = "m"):
        user = user_create_verified(hospital=hospital_p, email=unique_email(name), password=PASSWORD)
        if role is not None:
            with tenant_context(hospital_p):
                staff_services.staff_member_create(user=user, role=role)
        return user

    return make


@pytest.fixture
def admin_api(api_for, hospital_p, member):
    api = api_for(hospital_p)
    api.token = api.login(member(ADMIN, "admin").email).json()["access"]  # type: ignore[attr-defined]
    yield api
    with tenant_context(hospital_p):  # back to optional for the next test
        MfaPolicy.objects.all().delete()


def set_policy(admin_api, mode: str, roles=()):
    response = admin_api.put("/api/mfa-policy/", json={"mode": mode, "roles": list(roles)}, token=admin_api.token)
    assert response.status_code == 200, response.text
    return response.json()


def with_factor(api_for, hospital, member, role: str | None, factor: str):
    """A member with `factor` ("none", "totp" or "passkey") enrolled: (user, its second factor or None)."""
    user = member(role, factor)
    if factor == "totp":
        return user, enrol(api_for(hospital), user.email)[0]
    if factor == "passkey":
        passkey = SoftPasskey()
        register(api_for(hospital), user.email, passkey)
        return user, passkey
    return user, None


def outcome(api_for, hospital, user, factor=None) -> str:
    """What logging in gives `user`: `two_step` (then completed with `factor`, and the session checked to be a
    full one), `enrol_only` (and its 403s checked) or `full`."""
    api = api_for(hospital)
    body = api.post("/accounts/login/", json={"email": user.email, "password": PASSWORD}).json()
    if body.get("mfa_required"):
        if factor is None:
            return "two_step"
        if isinstance(factor, SoftPasskey):
            second = {"webauthn": factor.get(body["webauthn"], origin(api))}
        else:
            second = {"code": code_at(factor, 1)}
        done = api.post("/accounts/login/mfa/", json={"mfa_token": body["mfa_token"], **second})
        assert done.status_code == 200, done.text
        access = done.json()["access"]
        assert api.get("/accounts/user/", token=access).status_code == 200
        assert api.get("/api/staff/", token=access).json().get("code") != "mfa_enrollment_required"
        return "two_step"
    access = body["access"]
    profile = api.get("/accounts/user/", token=access)
    workspace = api.get("/api/staff/", token=access)
    if AccessToken(access).get("mfa_enrol"):
        assert profile.status_code == workspace.status_code == 403, (profile.text, workspace.text)
        assert profile.json()["code"] == workspace.json()["code"] == "mfa_enrollment_required"
        assert api.get("/accounts/mfa/authenticators/", token=access).status_code == 200  # enrolment stays open
        return "enrol_only"
    assert profile.status_code == 200, profile.text
    return "full"


@pytest.mark.parametrize(
    ("mode", "roles", "expected"),
    [
        # (doctor, nurse, account with no role), each without a second factor
        ("optional", [], ("full", "full", "full")),
        ("required_for_roles", [DOCTOR], ("enrol_only", "full", "full")),
        ("required_for_all", [], ("enrol_only", "enrol_only", "enrol_only")),
    ],
)
def test_the_policy_matrix(api_for, hospital_p, hospital_a, user_a, member, admin_api, mode, roles, expected):
    """Each policy x each role x {no second factor, TOTP, passkey}: the login, enrolment-only endpoints (in
    `outcome`) and the others."""
    roles_ = (DOCTOR, NURSE, None)
    members = {
        (role, factor): with_factor(api_for, hospital_p, member, role, factor)
        for role in roles_
        for factor in ("none", "totp", "passkey")
    }
    set_policy(admin_api, mode, roles)
    got = {key: outcome(api_for, hospital_p, user, second) for key, (user, second) in members.items()}
    assert tuple(got[(role, "none")] for role in roles_) == expected
    # With a second factor, whatever the policy and role: two steps, then a full session.
    assert {got[(role, factor)] for role in roles_ for factor in ("totp", "passkey")} == {"two_step"}
    assert outcome(api_for, hospital_a, user_a) == "full"  # another hospital's policy changes nothing here


def test_an_enrol_only_session_enrols_then_a_fresh_login_is_needed(api_for, hospital_p, member, admin_api):
    set_policy(admin_api, "required_for_all")
    nurse = member(NURSE)
    api = api_for(hospital_p)
    access = api.login(nurse.email).json()["access"]
    begin = api.post("/accounts/mfa/totp/", token=access).json()
    secret = begin["secret"]
    confirmed = api.post(
        "/accounts/mfa/totp/confirm/",
        json={"enrolment_token": begin["enrolment_token"], "code": code_at(secret)},
        token=access,
    )
    assert confirmed.status_code == 201, confirmed.text
    # The enrolment-only token stays what it was (README "Multi-factor login"): a step-up with the new app
    # turns the session into a full one (new tokens), or the next login is in two steps.
    assert api.get("/accounts/user/", token=access).json()["code"] == "mfa_enrollment_required"
    stepped = api.post("/accounts/mfa/reauthenticate/", json={"code": code_at(secret, 1)}, token=access)
    assert stepped.status_code == 200, stepped.text
    assert api.get("/accounts/user/", token=stepped.json()["access"]).status_code == 200
    # (that code is used now: the login below waits for nothing, it uses a recovery code)
    first = password_step(api_for(hospital_p), nurse.email)
    recovery = confirmed.json()["recovery_codes"][0]
    done = api.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "recovery_code": recovery})
    assert done.status_code == 200, done.text
    fresh = done.json()["access"]
    assert api.get("/accounts/user/", token=fresh).status_code == 200
    # Where the policy requires a second factor, the last one cannot be removed.
    totp = next(a for a in api.get("/accounts/mfa/authenticators/", token=fresh).json() if a["type"] == "totp")
    refused = api.delete(f"/accounts/mfa/authenticators/{totp['id']}/", token=fresh)
    assert refused.status_code == 400 and refused.json()["code"] == "mfa_required_by_policy"


def test_only_admins_set_the_policy_and_every_change_is_audited(api_for, hospital_p, member, admin_api):
    nurse_api = api_for(hospital_p)
    access = nurse_api.login(member(NURSE).email).json()["access"]
    assert nurse_api.put("/api/mfa-policy/", json={"mode": "optional"}, token=access).status_code == 403
    for bad in ({"mode": "sometimes"}, {"mode": "required_for_roles"}, {"mode": "required_for_all", "roles": [DOCTOR]}):
        response = admin_api.put("/api/mfa-policy/", json=bad, token=admin_api.token)
        assert response.status_code == 400, (bad, response.text)
    assert set_policy(admin_api, "required_for_roles", [NURSE, DOCTOR, NURSE]) == {
        "mode": "required_for_roles",
        "roles": [DOCTOR, NURSE],
    }
    assert admin_api.get("/api/mfa-policy/", token=admin_api.token).json()["mode"] == "required_for_roles"
    with tenant_context(hospital_p):
        last = AuditEvent.objects.filter(action=AuditEvent.Action.MFA_POLICY_CHANGED).order_by("-id").first()
    assert last is not None and last.detail["new"] == {"mode": "required_for_roles", "roles": [DOCTOR, NURSE]}


def test_an_admin_resets_a_staff_members_factors_audited_and_emailed(
    api_for, hospital_p, hospital_a, member, admin_api, mail_sink
):
    doctor = member(DOCTOR)
    secret, _ = enrol(api_for(hospital_p), doctor.email)
    doctor_api = api_for(hospital_p)
    first = password_step(doctor_api, doctor.email)
    session = doctor_api.post(
        "/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": code_at(secret, 1)}
    )
    assert doctor_api.get("/accounts/user/", token=session.json()["access"]).status_code == 200
    with tenant_context(hospital_p):
        staff_pk = StaffMember.objects.get(user=doctor).pk
    reset = admin_api.post(f"/api/staff/{staff_pk}/mfa-reset/", token=admin_api.token)
    assert reset.status_code == 204, reset.text
    assert not Authenticator.objects.filter(user=doctor).exists()
    # The sessions opened with the lost factor end with it: whoever holds the device holds no session.
    assert doctor_api.get("/accounts/user/", token=session.json()["access"]).status_code == 401
    refresh = doctor_api.post("/accounts/token/refresh/")
    assert refresh.status_code == 401, refresh.text
    assert outcome(api_for, hospital_p, doctor) == "full"
    [event] = events(hospital_p, doctor, AuditEvent.Action.MFA_RESET)
    assert event.detail["removed"] == ["recovery_codes", "totp"] and event.actor_id is not None
    assert event.detail["sessions_ended"] >= 2  # the enrolment's login and the two-step one
    assert any("administrator removed" in m.text for m in mail_sink.wait_for(doctor.email, count=2))
    again = admin_api.post(f"/api/staff/{staff_pk}/mfa-reset/", token=admin_api.token)
    assert again.status_code == 400 and again.json()["code"] == "mfa_not_enrolled"
    # Another hospital's admin cannot reach this staff member at all.
    assert api_for(hospital_a).post(f"/api/staff/{staff_pk}/mfa-reset/").status_code in (401, 403, 404)
