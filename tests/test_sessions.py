"""Sessions a user and a hospital can see and end (issue 17, part 3): one per login (token family).

Logging out means logged out: an ended session's access tokens are refused on the next request, not when
they expire. Timeouts are tested by moving the session's timestamps in the database, never by waiting.
"""

from datetime import timedelta

import jwt
import pytest
from django.db.models import F
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import LoginSession
from accounts.services import user_create_verified
from audit.models import AuditEvent
from staff.models import StaffMember
from staff.services import staff_member_create
from tenants.models import Hospital
from tests.support import PASSWORD, unique_email
from tests.test_tokens import concurrently, live_tokens, refresh


def app_login(api, email: str, agent: str = "pytest") -> dict:
    """A `client: app` login: both tokens in the body, no cookies."""
    response = api.post(
        "/accounts/login/",
        json={"email": email, "password": PASSWORD, "client": "app"},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200, response.text
    return response.json()


def session_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["family"]


def me(api, access: str) -> int:
    return api.get("/accounts/user/", token=access).status_code


def test_my_sessions_are_listed_one_per_login_with_the_current_one_marked(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    laptop = app_login(api, user_a.email, agent="Laptop browser")
    phone = app_login(api, user_a.email, agent="Ward phone")
    response = api.get("/accounts/sessions/", token=phone["access"])
    assert response.status_code == 200, response.text
    sessions = {s["id"]: s for s in response.json()}
    assert set(sessions) == {session_of(laptop["access"]), session_of(phone["access"])}
    current = sessions[session_of(phone["access"])]
    assert current["current"] is True and current["user_agent"] == "Ward phone"
    assert current["client_address"] == "127.0.0.1"
    assert current["created"] and current["last_used"] and current["expires_at"]
    assert sessions[session_of(laptop["access"])]["current"] is False
    # The refresh token carries the same session as its access token.
    assert session_of(phone["refresh"]) == session_of(phone["access"])


def test_logout_refuses_the_sessions_access_token_at_once_and_no_other(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    ended, other = app_login(api, user_a.email), app_login(api, user_a.email)
    assert me(api, ended["access"]) == 200
    assert api.post("/accounts/logout/", json={"refresh": ended["refresh"]}).status_code == 200
    assert me(api, ended["access"]) == 401  # not after its 10 minutes: now
    assert api.post("/accounts/token/verify/", json={"token": ended["access"]}).status_code == 401
    assert api.post("/accounts/token/verify/", json={"token": other["access"]}).status_code == 200
    assert refresh(api, ended["refresh"]).status_code == 401
    assert me(api, other["access"]) == 200
    assert LoginSession.objects.get(pk=session_of(ended["access"])).end_reason == "logout"


def test_a_browser_logout_with_cookies_ends_the_session_too(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    access = api.login(user_a.email).json()["access"]
    assert api.post("/accounts/logout/").status_code == 200
    assert me(api_for(hospital_a), access) == 401


def test_ending_one_of_my_sessions_and_not_someone_elses(api_for, hospital_a, hospital_b, user_a, user_b):
    api = api_for(hospital_a)
    mine, lost_phone = app_login(api, user_a.email), app_login(api, user_a.email)
    colleague_email = unique_email("colleague")
    user_create_verified(hospital=hospital_a, email=colleague_email, password=PASSWORD)
    colleague = app_login(api, colleague_email)
    at_b = app_login(api_for(hospital_b), user_b.email)

    # Someone else's session, at this hospital or another, is no session of mine: 404, and it lives on.
    for other in (colleague, at_b):
        response = api.delete(f"/accounts/sessions/{session_of(other['access'])}/", token=mine["access"])
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    assert me(api, colleague["access"]) == 200
    assert me(api_for(hospital_b), at_b["access"]) == 200

    response = api.delete(f"/accounts/sessions/{session_of(lost_phone['access'])}/", token=mine["access"])
    assert response.status_code == 204, response.text
    assert me(api, lost_phone["access"]) == 401
    assert refresh(api, lost_phone["refresh"]).status_code == 401
    assert me(api, mine["access"]) == 200
    listed = api.get("/accounts/sessions/", token=mine["access"]).json()
    assert [s["id"] for s in listed] == [session_of(mine["access"])]
    # Already ended: 404 as well.
    again = api.delete(f"/accounts/sessions/{session_of(lost_phone['access'])}/", token=mine["access"])
    assert again.status_code == 404


def test_ending_all_my_other_sessions_keeps_the_current_one(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    others = [app_login(api, user_a.email) for _ in range(3)]
    mine = app_login(api, user_a.email)
    response = api.delete("/accounts/sessions/", token=mine["access"])
    assert response.status_code == 200, response.text
    assert response.json() == {"ended": 3}
    for other in others:
        assert me(api, other["access"]) == 401
        assert refresh(api, other["refresh"]).status_code == 401
    assert me(api, mine["access"]) == 200
    assert refresh(api, mine["refresh"]).status_code == 200


def test_sessions_need_a_login(api_a):
    assert api_a.get("/accounts/sessions/").status_code == 401
    assert api_a.delete("/accounts/sessions/").status_code == 401


def test_a_password_change_ends_every_session_at_once(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    elsewhere, here = app_login(api, user_a.email), app_login(api, user_a.email)
    response = api.post(
        "/accounts/password/change/",
        token=here["access"],
        json={"old_password": PASSWORD, "new_password1": "Brand-new-pass-77", "new_password2": "Brand-new-pass-77"},
    )
    assert response.status_code == 200, response.text
    assert me(api, elsewhere["access"]) == 401
    assert not LoginSession.objects.filter(user=user_a, ended_at__isnull=True).exists()
    assert set(LoginSession.objects.filter(user=user_a).values_list("end_reason", flat=True)) == {"password_changed"}


def test_a_logout_racing_refreshes_leaves_no_live_token(api_for, hospital_a, user_a):
    """Whatever order the database puts them in, nothing of the session survives the logout."""
    api = api_for(hospital_a)
    login = app_login(api, user_a.email)
    token = login["refresh"]
    calls = [lambda: refresh(api_for(hospital_a), token) for _ in range(3)]
    calls.append(lambda: api_for(hospital_a).post("/accounts/logout/", json={"refresh": token}))
    answers = concurrently(*calls)
    assert answers[-1].status_code in (200, 401), answers[-1].text
    assert live_tokens(token) == 0
    for answer in answers[:-1]:
        if answer.status_code == 200:  # a refresh that came first: its tokens died with the session
            assert me(api, answer.json()["access"]) == 401
            assert refresh(api, answer.json()["refresh"]).status_code == 401
    assert me(api, login["access"]) == 401
    assert not LoginSession.objects.filter(pk=session_of(token), ended_at__isnull=True).exists()


# Hospital admins: a staff member's sessions.


def staff_login(api_for, hospital, role: str) -> tuple[StaffMember, dict]:
    user = user_create_verified(hospital=hospital, email=unique_email(role), password=PASSWORD)
    with tenant_context(hospital):
        staff = staff_member_create(user=user, role=role)
    return staff, app_login(api_for(hospital), user.email)


def test_a_hospital_admin_lists_and_ends_a_staff_members_sessions(api_for, hospital_a, mail_sink):
    api = api_for(hospital_a)
    _, admin = staff_login(api_for, hospital_a, StaffMember.Role.HOSPITAL_ADMIN)
    nurse, nurse_login = staff_login(api_for, hospital_a, StaffMember.Role.NURSE)
    second = app_login(api, nurse.user.email, agent="Ward 3 workstation")

    listed = api.get(f"/api/staff/{nurse.pk}/sessions/", token=admin["access"])
    assert listed.status_code == 200, listed.text
    assert {s["id"] for s in listed.json()} == {session_of(nurse_login["access"]), session_of(second["access"])}
    assert {s["user_agent"] for s in listed.json()} == {"pytest", "Ward 3 workstation"}

    # Other staff may not.
    for token in (nurse_login["access"],):
        assert api.get(f"/api/staff/{nurse.pk}/sessions/", token=token).status_code == 403
        assert api.delete(f"/api/staff/{nurse.pk}/sessions/", token=token).status_code == 403

    ended = api.delete(f"/api/staff/{nurse.pk}/sessions/", token=admin["access"])
    assert ended.status_code == 200, ended.text
    assert ended.json() == {"ended": 2}
    for login in (nurse_login, second):
        assert me(api, login["access"]) == 401
        assert refresh(api, login["refresh"]).status_code == 401
    assert me(api, admin["access"]) == 200
    with tenant_context(hospital_a):
        event = AuditEvent.objects.filter(action=AuditEvent.Action.SESSIONS_ENDED, target_id=str(nurse.user_id)).get()
    assert event.detail["sessions"] == 2
    (mail,) = mail_sink.wait_for(nurse.user.email)
    assert "signed" in mail.subject.lower() and "2 sessions" in mail.text
    # Unknown staff: 404.
    assert api.get("/api/staff/999999/sessions/", token=admin["access"]).status_code == 404


def test_another_hospitals_admin_cannot_reach_these_sessions(api_for, hospital_a, hospital_b):
    nurse, nurse_login = staff_login(api_for, hospital_a, StaffMember.Role.NURSE)
    _, admin_b = staff_login(api_for, hospital_b, StaffMember.Role.HOSPITAL_ADMIN)
    at_a = api_for(hospital_a).delete(f"/api/staff/{nurse.pk}/sessions/", token=admin_b["access"])
    assert at_a.status_code == 401  # B's token means nothing at A
    assert me(api_for(hospital_a), nurse_login["access"]) == 200


def test_deactivating_a_staff_member_ends_their_sessions_at_once(api_for, hospital_a):
    api = api_for(hospital_a)
    _, admin = staff_login(api_for, hospital_a, StaffMember.Role.HOSPITAL_ADMIN)
    doctor, doctor_login = staff_login(api_for, hospital_a, StaffMember.Role.DOCTOR)
    response = api.patch(f"/api/staff/{doctor.pk}/", token=admin["access"], json={"is_active": False})
    assert response.status_code == 200, response.text
    assert me(api, doctor_login["access"]) == 401
    assert refresh(api, doctor_login["refresh"]).status_code == 401


# Idle and absolute timeouts, per hospital.


@pytest.fixture
def hospital_limits(hospital_a):
    """Sets hospital A's session limits for one test (other tests' logins get them meanwhile: harmless,
    they are far longer than any test)."""

    def set_limits(*, idle: int | None = None, absolute: int | None = None) -> None:
        Hospital.objects.filter(pk=hospital_a.pk).update(session_idle_minutes=idle, session_max_minutes=absolute)

    yield set_limits
    set_limits()


def moved_back(session_id: str, minutes: int) -> None:
    """Time travel: the session's login and last use happened `minutes` earlier."""
    back = timedelta(minutes=minutes)
    LoginSession.objects.filter(pk=session_id).update(
        created=F("created") - back, last_used=F("last_used") - back, expires_at=F("expires_at") - back
    )


def test_by_default_a_session_lasts_as_long_as_its_refresh_token(api_for, hospital_a, user_a):
    login = app_login(api_for(hospital_a), user_a.email)
    session = LoginSession.objects.get(pk=session_of(login["access"]))
    refresh_exp = jwt.decode(login["refresh"], options={"verify_signature": False})["exp"]
    assert int(session.expires_at.timestamp()) == refresh_exp


def test_an_idle_session_ends_and_a_refresh_keeps_it_alive(api_for, hospital_a, user_a, hospital_limits):
    hospital_limits(idle=15)
    api = api_for(hospital_a)
    login = app_login(api, user_a.email)
    session_id = session_of(login["access"])
    session = LoginSession.objects.get(pk=session_id)
    assert session.expires_at == session.last_used + timedelta(minutes=15)

    moved_back(session_id, 14)  # 14 idle minutes: still alive, and a refresh moves the deadline on
    fresh = refresh(api, login["refresh"])
    assert fresh.status_code == 200, fresh.text
    session.refresh_from_db()
    assert session.expires_at == session.last_used + timedelta(minutes=15)
    assert timezone.now() - session.last_used < timedelta(minutes=14)

    moved_back(session_id, 16)  # 16 idle minutes: over
    assert me(api, fresh.json()["access"]) == 401  # its access token too, though it has minutes left
    assert refresh(api, fresh.json()["refresh"]).status_code == 401
    assert session_id not in {
        s["id"] for s in api.get("/accounts/sessions/", token=app_login(api, user_a.email)["access"]).json()
    }


def test_the_absolute_lifetime_caps_a_session_however_busy(api_for, hospital_a, user_a, hospital_limits):
    hospital_limits(idle=30, absolute=120)
    api = api_for(hospital_a)
    login = app_login(api, user_a.email)
    session_id = session_of(login["access"])
    moved_back(session_id, 110)  # logged in 110 minutes ago
    LoginSession.objects.filter(pk=session_id).update(
        last_used=timezone.now(), expires_at=timezone.now() + timedelta(minutes=10)
    )
    fresh = refresh(api, login["refresh"])
    assert fresh.status_code == 200, fresh.text
    session = LoginSession.objects.get(pk=session_id)
    assert session.expires_at == session.created + timedelta(minutes=120)  # not last_used + 30

    moved_back(session_id, 11)  # now 121 minutes after the login
    assert me(api, fresh.json()["access"]) == 401
    assert refresh(api, fresh.json()["refresh"]).status_code == 401


def test_platform_staff_set_a_hospitals_session_limits_and_bad_values_are_400(platform_api, hospital_a):
    path = f"/api/platform/hospitals/{hospital_a.slug}/"
    try:
        response = platform_api.patch(path, json={"session_idle_minutes": 20, "session_max_minutes": 480})
        assert response.status_code == 200, response.text
        assert response.json()["session_idle_minutes"] == 20
        for bad in (0, -5, "soon"):
            refused = platform_api.patch(path, json={"session_idle_minutes": bad})
            assert refused.status_code == 400, refused.text
    finally:
        Hospital.objects.filter(pk=hospital_a.pk).update(session_idle_minutes=None, session_max_minutes=None)
