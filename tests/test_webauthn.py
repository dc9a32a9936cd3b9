"""Passkeys and security keys over real HTTP, with a software authenticator (tests/passkey.py) answering the
options exactly as a browser would parse them; Chromium's virtual authenticator does the same in the browser
tier (tests/browser/test_passkey_browser.py)."""

from __future__ import annotations

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import Authenticator
from accounts.services import user_create_verified
from audit.models import AuditEvent
from tests.passkey import NotAllowed, SoftPasskey
from tests.support import PASSWORD, Api, unique_email
from tests.test_abuse import parallel
from tests.test_mfa import code_at, enrol, events, password_step


def origin(api: Api) -> str:
    return f"http://{api.host}"  # the Host the client sends is the page's (the server's port is not in it)


def register(api: Api, email: str, passkey: SoftPasskey, *, access: str | None = None, name: str = "Laptop"):
    """Logs in (unless `access`) and registers `passkey`; returns the confirm answer's body."""
    access = access or api.login(email).json()["access"]
    begin = api.post("/accounts/mfa/webauthn/", token=access)
    assert begin.status_code == 200, begin.text
    body = begin.json()
    credential = passkey.create(body["options"], origin(api))
    confirmed = api.post(
        "/accounts/mfa/webauthn/confirm/",
        json={"registration_token": body["registration_token"], "credential": credential, "name": name},
        token=access,
    )
    assert confirmed.status_code == 201, confirmed.text
    return confirmed.json()


def log_in_with(api: Api, email: str, passkey: SoftPasskey, **answer_options):
    first = password_step(api, email)
    answer = passkey.get(first["webauthn"], origin(api), **answer_options)
    return api.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "webauthn": answer})


def test_register_a_passkey_then_log_in_with_it(api_for, hospital_a, user_a, mail_sink):
    api = api_for(hospital_a)
    passkey = SoftPasskey()
    access = api.login(user_a.email).json()["access"]
    options = api.post("/accounts/mfa/webauthn/", token=access).json()["options"]
    assert options["rp"]["id"] == api.host  # the hospital's own subdomain is the relying party
    assert options["user"]["name"] == user_a.email and options["challenge"]
    enrolled = register(api, user_a.email, passkey, access=access)
    assert enrolled["authenticator"]["type"] == "webauthn" and enrolled["authenticator"]["name"] == "Laptop"
    assert len(enrolled["recovery_codes"]) == 10  # the first factor brings the recovery codes
    stored = Authenticator.objects.get(user=user_a, type="webauthn")
    assert stored.credential_id == passkey.id and stored.sign_count == 0
    [event] = events(hospital_a, user_a, AuditEvent.Action.MFA_ENROLLED)
    assert event.detail == {"type": "webauthn", "name": "Laptop"}
    assert mail_sink.wait_for(user_a.email)[0].subject.endswith("your account")

    browser = api_for(hospital_a)
    first = password_step(browser, user_a.email)
    assert first["methods"] == ["webauthn", "recovery_code"]
    request_options = first["webauthn"]
    assert request_options["rpId"] == api.host
    assert [c["id"] for c in request_options["allowCredentials"]] == [passkey.id]
    answer = passkey.get(request_options, origin(browser))
    ok = browser.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "webauthn": answer})
    assert ok.status_code == 200, ok.text
    assert browser.cookie("hospital-access") and browser.cookie("hospital-refresh")
    claims = AccessToken(ok.json()["access"])
    assert claims["amr"] == ["pwd", "webauthn"] and claims["hospital"] == hospital_a.pk
    assert browser.get("/accounts/user/").json()["email"] == user_a.email
    stored.refresh_from_db()
    assert stored.sign_count == 1 and stored.last_used_at is not None

    # An answer is good once: with its used token, and with a fresh token (whose challenge it did not sign).
    again = browser.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "webauthn": answer})
    assert again.status_code == 401 and again.json()["code"] == "mfa_token_invalid"
    fresh = password_step(api_for(hospital_a), user_a.email)
    replayed = browser.post("/accounts/login/mfa/", json={"mfa_token": fresh["mfa_token"], "webauthn": answer})
    assert replayed.status_code == 400 and replayed.json()["code"] == "mfa_code_invalid", replayed.text
    assert "webauthn" in replayed.json()["fields"]


def test_a_passkey_and_an_app_side_by_side_share_the_recovery_codes(api_for, hospital_a, user_a):
    secret, recovery = enrol(api_for(hospital_a), user_a.email)
    api = api_for(hospital_a)
    first = password_step(api, user_a.email)
    access = api.post(
        "/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "code": code_at(secret, 1)}
    ).json()["access"]
    # Adding a factor to an account that has one needs it given recently: the login just now counts.
    second = register(api, user_a.email, SoftPasskey(), access=access, name="Security key")
    assert second["recovery_codes"] == []  # the app's codes stay valid
    listed = api.get("/accounts/mfa/authenticators/", token=access).json()
    assert sorted(a["type"] for a in listed) == ["recovery_codes", "totp", "webauthn"]
    assert password_step(api_for(hospital_a), user_a.email)["methods"] == ["webauthn", "totp", "recovery_code"]
    # Removing the passkey leaves the app (and the codes); removing the app then leaves nothing.
    key = next(a for a in listed if a["type"] == "webauthn")
    assert api.delete(f"/accounts/mfa/authenticators/{key['id']}/", token=access).status_code == 204
    assert password_step(api_for(hospital_a), user_a.email)["methods"] == ["totp", "recovery_code"]
    login = password_step(api_for(hospital_a), user_a.email)
    assert login["webauthn"] is None
    ok = api.post("/accounts/login/mfa/", json={"mfa_token": login["mfa_token"], "recovery_code": recovery[0]})
    assert ok.status_code == 200, ok.text


def test_a_passkey_answer_is_worthless_at_another_hospital_and_from_another_origin(
    api_for, hospital_a, hospital_b, user_a, user_b
):
    passkey = SoftPasskey()
    register(api_for(hospital_a), user_a.email, passkey)
    at_a = api_for(hospital_a)
    first = password_step(at_a, user_a.email)

    # The mfa_token is A's: at B (and on the platform) it is unknown.
    answer = passkey.get(first["webauthn"], origin(at_a))
    at_b = api_for(hospital_b).post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "webauthn": answer})
    assert at_b.status_code == 401 and at_b.json()["code"] == "mfa_token_invalid"

    # A phishing page relaying A's challenge reports its own origin: refused, and it costs an attempt.
    relayed = passkey.get(first["webauthn"], origin(at_a), forge_origin="http://alpha-login.localhost")
    phished = at_a.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "webauthn": relayed})
    assert phished.status_code == 400 and phished.json()["code"] == "mfa_code_invalid", phished.text
    # Signed for another relying party (B's host) than this one: refused.
    elsewhere = passkey.get(first["webauthn"], origin(at_a), forge_rp_id=api_for(hospital_b).host)
    wrong_rp = at_a.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "webauthn": elsewhere})
    assert wrong_rp.status_code == 400, wrong_rp.text
    assert [e.detail["method"] for e in events(hospital_a, user_a, AuditEvent.Action.MFA_FAILED)] == ["webauthn"] * 2

    # A browser offers A's passkey to A's host only.
    with pytest.raises(NotAllowed):
        passkey.get({**first["webauthn"], "rpId": api_for(hospital_b).host}, origin(api_for(hospital_b)))
    # Nothing above used the token up: the right answer still logs in at A.
    assert at_a.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "webauthn": answer}).ok

    # B's account cannot claim A's credential: its answer is for B's own challenge and host only, and the
    # same key registered at B is another credential of another relying party.
    b = api_for(hospital_b)
    b_access = b.login(user_b.email).json()["access"]
    b_options = b.post("/accounts/mfa/webauthn/", token=b_access).json()
    with pytest.raises(NotAllowed):
        passkey.create(b_options["options"], origin(at_a))  # A's page cannot answer B's options


def test_a_cloned_authenticator_is_refused_once_the_original_has_signed_past_it(api_for, hospital_a, user_a):
    passkey = SoftPasskey()
    register(api_for(hospital_a), user_a.email, passkey)
    clone = passkey.clone()
    assert log_in_with(api_for(hospital_a), user_a.email, passkey).status_code == 200  # counter 1
    assert log_in_with(api_for(hospital_a), user_a.email, passkey).status_code == 200  # counter 2
    copied = log_in_with(api_for(hospital_a), user_a.email, clone)  # counter 1 again: a step back
    assert copied.status_code == 400 and copied.json()["code"] == "mfa_code_invalid", copied.text
    assert Authenticator.objects.get(user=user_a, type="webauthn").sign_count == 2


def test_an_authenticator_without_a_counter_logs_in_every_time(api_for, hospital_a, user_a):
    passkey = SoftPasskey(counts=False)  # many platform passkeys (synced ones) always report 0
    register(api_for(hospital_a), user_a.email, passkey)
    for _ in range(2):
        assert log_in_with(api_for(hospital_a), user_a.email, passkey).status_code == 200


def test_one_answer_sent_many_times_at_once_logs_in_once(api_for, hospital_a, user_a):
    passkey = SoftPasskey()
    register(api_for(hospital_a), user_a.email, passkey)
    api = api_for(hospital_a)
    first = password_step(api, user_a.email)
    answer = passkey.get(first["webauthn"], origin(api))
    body = {"mfa_token": first["mfa_token"], "webauthn": answer}
    # Four: within the attempt budget (MFA_FAILURE_LIMIT, 5), so none is turned away before it is looked at.
    statuses = parallel([lambda: api_for(hospital_a).post("/accounts/login/mfa/", json=body)] * 4)
    assert sorted(statuses) == [200, 401, 401, 401], statuses


def test_step_up_with_a_passkey(api_for, hospital_a, user_a, settings):
    passkey = SoftPasskey()
    register(api_for(hospital_a), user_a.email, passkey)
    api = api_for(hospital_a)
    access = log_in_with(api, user_a.email, passkey).json()["access"]
    key_id = Authenticator.objects.get(user=user_a, type="webauthn").pk

    settings.MFA_STEP_UP_WINDOW = settings.MFA_STEP_UP_WINDOW * -1  # every second factor given is too old
    for refused in (
        api.delete(f"/accounts/mfa/authenticators/{key_id}/", token=access),
        api.post("/accounts/mfa/webauthn/", token=access),  # adding another factor
        api.post("/accounts/mfa/totp/", token=access),
        api.post("/accounts/mfa/recovery-codes/", token=access),
    ):
        assert refused.status_code == 403 and refused.json()["code"] == "reauthentication_required", refused.text
    settings.MFA_STEP_UP_WINDOW = settings.MFA_STEP_UP_WINDOW * -1

    challenge = api.post("/accounts/mfa/reauthenticate/webauthn/", token=access)
    assert challenge.status_code == 200, challenge.text
    challenge = challenge.json()
    answer = passkey.get(challenge["webauthn"], origin(api))
    # A step-up challenge is no login's: its token does not finish a login.
    as_login = api_for(hospital_a).post(
        "/accounts/login/mfa/", json={"mfa_token": challenge["mfa_token"], "webauthn": answer}
    )
    assert as_login.status_code == 401
    no_token = api.post("/accounts/mfa/reauthenticate/", json={"webauthn": answer}, token=access)
    assert no_token.status_code == 400, no_token.text
    stepped = api.post(
        "/accounts/mfa/reauthenticate/",
        json={"webauthn": answer, "mfa_token": challenge["mfa_token"], "client": "app"},
        token=access,
    )
    assert stepped.status_code == 200, stepped.text
    fresh = stepped.json()["access"]
    assert AccessToken(fresh)["amr"] == ["pwd", "webauthn"]
    replay = api.post(
        "/accounts/mfa/reauthenticate/",
        json={"webauthn": answer, "mfa_token": challenge["mfa_token"]},
        token=access,
    )
    assert replay.status_code == 400 and replay.json()["code"] == "mfa_token_invalid"
    assert api.delete(f"/accounts/mfa/authenticators/{key_id}/", token=fresh).status_code == 204
    assert not Authenticator.objects.filter(user=user_a).exists()  # the recovery codes went with it


def test_platform_staff_register_a_passkey_for_the_platform_domain(api_for, platform_user, settings):
    api = api_for(None)
    passkey = SoftPasskey()
    access = api.login(platform_user.email).json()["access"]
    options = api.post("/accounts/mfa/webauthn/", token=access).json()["options"]
    assert options["rp"]["id"] == settings.BASE_DOMAIN
    register(api, platform_user.email, passkey, access=access)
    ok = log_in_with(api_for(None), platform_user.email, passkey)
    assert ok.status_code == 200, ok.text
    assert AccessToken(ok.json()["access"])["hospital"] is None


def test_bad_passkey_input_is_a_clear_4xx(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    access = api.login(user_a.email).json()["access"]
    begin = api.post("/accounts/mfa/webauthn/", token=access).json()
    good = SoftPasskey().create(begin["options"], origin(api))
    for credential in (
        {},
        {"id": "x", "rawId": "x", "type": "public-key", "response": {}},
        {**good, "response": {**good["response"], "attestationObject": "not base64!"}},
        {**good, "response": {**good["response"], "clientDataJSON": "e30"}},  # "{}"
        {**good, "rawId": 12},
    ):
        response = api.post(
            "/accounts/mfa/webauthn/confirm/",
            json={"registration_token": begin["registration_token"], "credential": credential},
            token=access,
        )
        assert response.status_code == 400 and response.json()["code"] == "webauthn_invalid", response.text
    oversized = SoftPasskey()
    oversized.credential_id = bytes(1024)  # one byte over WebAuthn's limit
    too_long = oversized.create(begin["options"], origin(api))
    response = api.post(
        "/accounts/mfa/webauthn/confirm/",
        json={"registration_token": begin["registration_token"], "credential": too_long},
        token=access,
    )
    assert response.status_code == 400 and response.json()["code"] == "webauthn_invalid", response.text
    for body in (
        {"registration_token": "nonsense", "credential": good},
        {"registration_token": begin["registration_token"], "credential": "a string"},
        {"registration_token": begin["registration_token"]},
    ):
        response = api.post("/accounts/mfa/webauthn/confirm/", json=body, token=access)
        assert response.status_code == 400, response.text
    # A registration token is its user's own: another account at this hospital cannot use it.
    colleague = user_create_verified(hospital=hospital_a, email=unique_email("colleague"), password=PASSWORD)
    other = api_for(hospital_a)
    other_access = other.login(colleague.email).json()["access"]
    theirs = other.post(
        "/accounts/mfa/webauthn/confirm/",
        json={"registration_token": begin["registration_token"], "credential": good},
        token=other_access,
    )
    assert theirs.status_code == 400 and theirs.json()["code"] == "mfa_enrolment_invalid", theirs.text
    assert not Authenticator.objects.filter(user__in=[user_a, colleague]).exists()
    # The right one registers once; the same answer again is refused.
    body = {"registration_token": begin["registration_token"], "credential": good}
    assert api.post("/accounts/mfa/webauthn/confirm/", json=body, token=access).status_code == 201
    twice = api.post("/accounts/mfa/webauthn/confirm/", json=body, token=access)
    assert twice.status_code == 400 and twice.json()["code"] == "mfa_already_enrolled", twice.text
    first = password_step(api_for(hospital_a), user_a.email)
    for answer in ({}, {"id": "x"}, {"response": "y"}):
        response = api.post("/accounts/login/mfa/", json={"mfa_token": first["mfa_token"], "webauthn": answer})
        assert response.status_code == 400, response.text


def test_a_login_with_a_passkey_takes_an_email_and_password_first(api_for, hospital_a, user_a):
    """The passkey is a second factor: without the password nothing is offered for it."""
    register(api_for(hospital_a), user_a.email, SoftPasskey())
    wrong = api_for(hospital_a).post("/accounts/login/", json={"email": user_a.email, "password": PASSWORD + "x"})
    assert wrong.status_code == 400 and "webauthn" not in wrong.text


def test_parallel_wrong_passkey_answers_are_never_checked_beyond_the_budget(api_for, hospital_a, user_a, settings):
    settings.MFA_FAILURE_LIMIT = 3
    passkey = SoftPasskey()
    register(api_for(hospital_a), user_a.email, passkey)
    api = api_for(hospital_a)
    first = password_step(api, user_a.email)
    relayed = passkey.get(first["webauthn"], origin(api), forge_origin="http://elsewhere.localhost")
    body = {"mfa_token": first["mfa_token"], "webauthn": relayed}
    statuses = parallel([lambda: api_for(hospital_a).post("/accounts/login/mfa/", json=body)] * 12)
    assert sorted(statuses) == [400] * 3 + [429] * 9, statuses
    assert len(events(hospital_a, user_a, AuditEvent.Action.MFA_FAILED)) == 3
    # Locked: even the right answer is not looked at.
    right = {"mfa_token": first["mfa_token"], "webauthn": passkey.get(first["webauthn"], origin(api))}
    locked = api.post("/accounts/login/mfa/", json=right)
    assert locked.status_code == 429 and locked.json()["code"] == "mfa_locked"


def test_an_enrol_only_session_registers_a_passkey_and_steps_up_with_it(api_for, platform_user, settings):
    settings.MFA_REQUIRED_FOR_PLATFORM_STAFF = True
    api = api_for(None)
    access = api.login(platform_user.email).json()["access"]
    assert AccessToken(access)["mfa_enrol"] is True
    assert api.get("/accounts/user/", token=access).json()["code"] == "mfa_enrollment_required"
    passkey = SoftPasskey()
    register(api, platform_user.email, passkey, access=access)  # enrolment is open to this session
    assert api.get("/accounts/user/", token=access).json()["code"] == "mfa_enrollment_required"  # same token
    challenge = api.post("/accounts/mfa/reauthenticate/webauthn/", token=access).json()
    stepped = api.post(
        "/accounts/mfa/reauthenticate/",
        json={"mfa_token": challenge["mfa_token"], "webauthn": passkey.get(challenge["webauthn"], origin(api))},
        token=access,
    )
    assert stepped.status_code == 200, stepped.text
    full = stepped.json()["access"]
    assert "mfa_enrol" not in AccessToken(full)
    assert api.get("/accounts/user/", token=full).status_code == 200
