"""Multi-factor login over real HTTP with a real TOTP generator (pyotp), on hospital subdomains and the platform."""

from __future__ import annotations

import time
from datetime import timedelta

import pyotp
from django.conf import settings
from django_tenants.utils import schema_context
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import Authenticator
from audit.models import AuditEvent
from tests.support import PASSWORD
from tests.test_abuse import parallel

STEP = 30


def code_at(secret: str, offset_steps: int = 0) -> str:
    """The app's code `offset_steps` time steps from now (the server accepts one step either side)."""
    return pyotp.TOTP(secret).at(time.time() + offset_steps * STEP)


def enrol(api, email: str) -> tuple[str, list[str]]:
    """Logs in and enrols an authenticator app; returns its secret and the recovery codes (and keeps the code that
    confirmed it in `enrol.code`)."""
    access = api.login(email).json()["access"]
    begin = api.post("/accounts/mfa/totp/", token=access)
    assert begin.status_code == 200, begin.text
    body = begin.json()
    secret = body["secret"]
    assert body["otpauth_uri"].startswith("otpauth://totp/") and f"secret={secret}" in body["otpauth_uri"]
    assert "<svg" in body["qr_svg"]
    enrol.code = code_at(secret)  # type: ignore[attr-defined]
    confirmed = api.post(
        "/accounts/mfa/totp/confirm/",
        json={"enrolment_token": body["enrolment_token"], "code": enrol.code},  # type: ignore[attr-defined]
        token=access,
    )
    assert confirmed.status_code == 201, confirmed.text
    return secret, confirmed.json()["recovery_codes"]


def password_step(api, email: str, **extra) -> dict:
    response = api.post("/accounts/login/", json={"email": email, "password": PASSWORD, **extra})
    assert response.status_code == 200, response.text
    assert not response.cookies, "no cookie before the second factor"
    body = response.json()
    assert body["mfa_required"] is True and "access" not in body, body
    return body


def events(hospital, user, action: str) -> list[AuditEvent]:
    with schema_context(hospital.schema_name):
        return list(AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("id"))


def test_enrol_totp_then_log_in_in_two_steps_and_codes_are_not_replayed(api_for, hospital_a, user_a, mail_sink):
    api = api_for(hospital_a)
    access = api.login(user_a.email).json()["access"]
    begin = api.post("/accounts/mfa/totp/", token=access).json()
    # A wrong code enrols nothing.
    right = {code_at(begin["secret"], k) for k in (-1, 0, 1)}
    wrong_code = next(c for c in ("111111", "222222", "333333", "444444") if c not in right)
    wrong = api.post(
        "/accounts/mfa/totp/confirm/",
        json={"enrolment_token": begin["enrolment_token"], "code": wrong_code},
        token=access,
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "mfa_code_invalid", wrong.text
    assert not Authenticator.objects.filter(user=user_a).exists()

    secret, recovery = enrol(api_for(hospital_a), user_a.email)
    assert len(recovery) == settings.MFA_RECOVERY_CODE_COUNT
    stored = Authenticator.objects.get(user=user_a, type="totp")
    assert secret not in stored.secret  # encrypted at rest
    codes_row = Authenticator.objects.get(user=user_a, type="recovery_codes")
    assert not any(code in str(codes_row.code_hashes) for code in recovery)  # hashed
    assert mail_sink.wait_for(user_a.email)[0].subject.endswith("your account")
    assert len(events(hospital_a, user_a, AuditEvent.Action.MFA_ENROLLED)) == 1

    # The confirming code is used: its step cannot log in. The next step's code can, once.
    browser = api_for(hospital_a)
    first = password_step(browser, user_a.email)
    assert first["methods"] == ["totp", "recovery_code"]
    replay = browser.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": enrol.code})
    assert replay.status_code == 400 and replay.json()["code"] == "mfa_code_invalid", replay.text
    used = code_at(secret, 1)
    ok = browser.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": used})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["refresh"] == "" and browser.cookie("hospital-refresh") and browser.cookie("hospital-access")
    claims = AccessToken(body["access"])
    assert claims["hospital"] == hospital_a.pk and claims["amr"] == ["pwd", "totp"] and claims["mfa_at"]
    assert browser.get("/accounts/user/").json()["email"] == user_a.email
    assert len(events(hospital_a, user_a, AuditEvent.Action.LOGIN_SUCCEEDED)) == 3  # two to enrol, this one

    # The same token is used up; the same code with a fresh token is a replay.
    again = browser.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": used})
    assert again.status_code == 401 and again.json()["code"] == "mfa_token_invalid"
    second = password_step(api_for(hospital_a), user_a.email)
    replayed = api.post("/accounts/login/mfa/", json={"mfa_token": second["mfa_token"], "code": used})
    assert replayed.status_code == 400, replayed.text


def test_recovery_codes_log_in_once_each_and_are_emailed_about(api_for, hospital_a, user_a, mail_sink):
    _, recovery = enrol(api_for(hospital_a), user_a.email)
    app = api_for(hospital_a)
    first = password_step(app, user_a.email, client="app")
    typed = recovery[0].lower().replace("-", " ")  # as someone types it off paper
    ok = app.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "recovery_code": typed})
    assert ok.status_code == 200, ok.text
    assert ok.json()["refresh"] and not ok.cookies  # `client: app` from the first step
    assert AccessToken(ok.json()["access"])["amr"] == ["pwd", "recovery_code"]
    assert any("recovery code" in m.text for m in mail_sink.wait_for(user_a.email, count=2))

    second = password_step(app, user_a.email)
    used = app.post("/accounts/login/mfa/", json={"mfa_token": second["mfa_token"], "recovery_code": recovery[0]})
    assert used.status_code == 400 and used.json()["code"] == "mfa_code_invalid"
    assert app.post("/accounts/login/mfa/", json={"mfa_token": second["mfa_token"], "recovery_code": recovery[1]}).ok
    used_events = events(hospital_a, user_a, AuditEvent.Action.MFA_RECOVERY_CODE_USED)
    assert [e.detail["remaining"] for e in used_events] == [9, 8]

    # Regenerated: the old ones stop working; the list shows how many are left.
    access = ok.json()["access"]
    fresh = app.post("/accounts/mfa/recovery-codes/", token=access).json()["recovery_codes"]
    third = password_step(app, user_a.email)
    assert (
        app.post(
            "/accounts/login/mfa/", json={"mfa_token": third["mfa_token"], "recovery_code": recovery[2]}
        ).status_code
        == 400
    )
    listed = app.get("/accounts/mfa/authenticators/", token=access).json()
    assert {a["type"]: a["recovery_codes_left"] for a in listed} == {"totp": None, "recovery_codes": len(fresh)}


def test_an_mfa_token_is_good_only_at_its_own_hospital(api_for, hospital_a, hospital_b, user_a):
    secret, _ = enrol(api_for(hospital_a), user_a.email)
    first = password_step(api_for(hospital_a), user_a.email)
    at_b = api_for(hospital_b).post(
        "/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": code_at(secret, 1)}
    )
    assert at_b.status_code == 401 and at_b.json()["code"] == "mfa_token_invalid"
    at_platform = api_for(None).post(
        "/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": code_at(secret, 1)}
    )
    assert at_platform.status_code == 401
    # Refused elsewhere, nothing was used up: the token and the code still work at A.
    at_a = api_for(hospital_a).post(
        "/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": code_at(secret, 1)}
    )
    assert at_a.status_code == 200, at_a.text


def test_parallel_wrong_codes_are_never_evaluated_beyond_the_budget(api_for, hospital_a, user_a, settings):
    settings.MFA_FAILURE_LIMIT = 3
    secret, _ = enrol(api_for(hospital_a), user_a.email)
    token = password_step(api_for(hospital_a), user_a.email)["mfa_token"]
    right = {code_at(secret, k) for k in (-1, 0, 1)}
    wrong = next(c for c in ("111111", "222222", "333333", "444444") if c not in right)

    def guess():
        return api_for(hospital_a).post("/accounts/login/mfa/", json={"mfa_token": token, "code": wrong})

    statuses = parallel([guess] * 12)
    assert sorted(statuses) == [400] * 3 + [429] * 9, statuses
    failed = events(hospital_a, user_a, AuditEvent.Action.MFA_FAILED)
    assert len(failed) == 3 and [bool(e.detail.get("lock")) for e in failed].count(True) == 1
    # Locked: even the right code is not looked at.
    locked = api_for(hospital_a).post("/accounts/login/mfa/", json={"mfa_token": token, "code": code_at(secret, 1)})
    assert locked.status_code == 429 and locked.json()["code"] == "mfa_locked" and locked.headers["Retry-After"]


def test_one_code_sent_twice_at_once_logs_in_once(api_for, hospital_a, user_a):
    secret, _ = enrol(api_for(hospital_a), user_a.email)
    tokens = [password_step(api_for(hospital_a), user_a.email)["mfa_token"] for _ in range(4)]
    code = code_at(secret, 1)
    statuses = parallel(
        [
            lambda t=t: api_for(hospital_a).post("/accounts/login/mfa/", json={"mfa_token": t, "code": code})
            for t in tokens
        ]
    )
    assert sorted(statuses) == [200, 400, 400, 400], statuses


def test_removing_the_app_ends_the_second_step_and_is_emailed(api_for, hospital_a, user_a, mail_sink):
    secret, _ = enrol(api_for(hospital_a), user_a.email)
    api = api_for(hospital_a)
    first = password_step(api, user_a.email)
    access = api.post(
        "/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": code_at(secret, 1)}
    ).json()["access"]
    listed = api.get("/accounts/mfa/authenticators/", token=access).json()
    totp = next(a for a in listed if a["type"] == "totp")
    codes = next(a for a in listed if a["type"] == "recovery_codes")
    assert api.delete(f"/accounts/mfa/authenticators/{codes['id']}/", token=access).status_code == 400
    assert api.delete(f"/accounts/mfa/authenticators/{totp['id']}/", token=access).status_code == 204
    assert not Authenticator.objects.filter(user=user_a).exists()
    assert "access" in api_for(hospital_a).login(user_a.email).json()
    assert len(mail_sink.wait_for(user_a.email, count=2)) == 2
    assert len(events(hospital_a, user_a, AuditEvent.Action.MFA_REMOVED)) == 1


def test_another_users_authenticator_is_a_404(api_for, hospital_a, user_a, user_b, hospital_b):
    enrol(api_for(hospital_a), user_a.email)
    theirs = Authenticator.objects.get(user=user_a, type="totp")
    other = api_for(hospital_b)
    access = other.login(user_b.email).json()["access"]
    assert other.delete(f"/accounts/mfa/authenticators/{theirs.pk}/", token=access).status_code == 404
    assert Authenticator.objects.filter(pk=theirs.pk).exists()


def test_bad_input_is_a_clear_4xx(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    for body in (
        {},
        {"mfa_token": "x"},
        {"mfa_token": "x", "code": "1", "recovery_code": "2"},
        {"mfa_token": ["x"], "code": 1},
    ):
        response = api.post("/accounts/login/mfa/", json=body)
        assert response.status_code == 400 and response.json()["code"] == "invalid", (body, response.text)
    unknown = api.post("/accounts/login/mfa/", json={"mfa_token": "no-such-token", "code": "１２３４５６"})
    assert unknown.status_code == 401, unknown.text
    access = api.login(user_a.email).json()["access"]
    forged = api.post(
        "/accounts/mfa/totp/confirm/", json={"enrolment_token": "nonsense", "code": "123456"}, token=access
    )
    assert forged.status_code == 400 and forged.json()["code"] == "mfa_enrolment_invalid"
    assert api_for(hospital_a).post("/accounts/mfa/totp/").status_code == 401  # no token, no cookie


def test_platform_staff_enrol_and_log_in_in_two_steps(api_for, platform_user):
    secret, _ = enrol(api_for(None), platform_user.email)
    api = api_for(None)
    first = password_step(api, platform_user.email)
    ok = api.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": code_at(secret, 1)})
    assert ok.status_code == 200, ok.text
    assert AccessToken(ok.json()["access"])["hospital"] is None


def test_sensitive_changes_need_a_recent_second_factor(api_for, hospital_a, user_a, settings):
    secret, recovery = enrol(api_for(hospital_a), user_a.email)
    api = api_for(hospital_a)
    first = password_step(api, user_a.email)
    login_code = code_at(secret, 1)  # kept: computed again after a 30 s step boundary it would be another code
    done = api.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": login_code})
    access = done.json()["access"]
    totp_id = Authenticator.objects.get(user=user_a, type="totp").pk
    change = {"old_password": PASSWORD, "new_password1": "Brand-new-pass-77", "new_password2": "Brand-new-pass-77"}

    settings.MFA_STEP_UP_WINDOW = timedelta(seconds=-1)  # every second factor given is now too old
    for response in (
        api.post("/accounts/mfa/recovery-codes/", token=access),
        api.delete(f"/accounts/mfa/authenticators/{totp_id}/", token=access),
        api.post("/accounts/password/change/", json=change, token=access),
    ):
        assert response.status_code == 403 and response.json()["code"] == "reauthentication_required", response.text
    assert Authenticator.objects.filter(pk=totp_id).exists()

    settings.MFA_STEP_UP_WINDOW = timedelta(minutes=10)
    replay = api.post("/accounts/mfa/reauthenticate/", json={"code": login_code}, token=access)
    assert replay.status_code == 400 and replay.json()["code"] == "mfa_code_invalid"  # the login's code is used
    app = api_for(hospital_a)
    stepped = app.post(
        "/accounts/mfa/reauthenticate/", json={"recovery_code": recovery[0], "client": "app"}, token=access
    )
    assert stepped.status_code == 200 and stepped.json()["refresh"] and not stepped.cookies, stepped.text
    fresh = stepped.json()["access"]
    assert AccessToken(fresh)["mfa_at"] >= AccessToken(access)["mfa_at"]
    assert app.post("/accounts/mfa/recovery-codes/", token=fresh).status_code == 200
    assert app.post("/accounts/password/change/", json=change, token=fresh).status_code == 200


def test_an_account_without_mfa_cannot_step_up_and_needs_not(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    access = api.login(user_a.email).json()["access"]
    refused = api.post("/accounts/mfa/reauthenticate/", json={"code": "123456"}, token=access)
    assert refused.status_code == 400 and refused.json()["code"] == "mfa_not_enrolled"


def admin_post(api, email: str, code: str = ""):
    if not api.cookie("csrftoken"):
        api.get("/admin/login/")
    form = {"username": email, "password": PASSWORD, "code": code, "next": "/admin/"}
    return api.post(
        "/admin/login/?next=/admin/",
        allow_redirects=False,
        data={**form, "csrfmiddlewaretoken": api.cookie("csrftoken")},
    )


def test_the_django_admin_asks_platform_staff_for_their_second_factor(api_for, platform_user, settings):
    page = api_for(None).get("/admin/login/")
    assert page.status_code == 200 and 'name="code"' in page.text
    secret, recovery = enrol(api_for(None), platform_user.email)
    without = admin_post(api_for(None), platform_user.email)
    assert without.status_code == 200 and "enter its code" in without.text
    replayed = admin_post(api_for(None), platform_user.email, enrol.code)  # type: ignore[attr-defined]
    assert replayed.status_code == 200 and "Wrong code" in replayed.text
    ok = admin_post(api_for(None), platform_user.email, code_at(secret, 1))
    assert ok.status_code == 302 and ok.headers["Location"] == "/admin/", ok.text[:300]
    assert admin_post(api_for(None), platform_user.email, recovery[0]).status_code == 302


def test_platform_staff_can_be_required_to_have_a_second_factor(api_for, platform_user, settings):
    settings.MFA_REQUIRED_FOR_PLATFORM_STAFF = True
    refused = admin_post(api_for(None), platform_user.email)
    assert refused.status_code == 200 and "must have a second factor" in refused.text
    api = api_for(None)
    access = api.login(platform_user.email).json()["access"]
    assert AccessToken(access)["mfa_enrol"] is True
    assert api.get("/accounts/user/", token=access).json()["code"] == "mfa_enrollment_required"
