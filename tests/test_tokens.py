"""Token hardening: stolen refresh tokens, password changes and deactivation end sessions at once."""

import threading
from datetime import timedelta

import jwt
import pytest
import requests
from django.db.models import F
from django_tenants.utils import tenant_context
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import RefreshTokenFamily
from audit.models import AuditEvent
from tests.support import PASSWORD, link_in

NEW_PASSWORD = "Brand-new-pass-77"


def jwt_id(raw: str) -> str:
    return jwt.decode(raw, options={"verify_signature": False})["jti"]


def refresh(api, token=None):
    return api.post("/accounts/token/refresh/", json={"refresh": token} if token else {})


def window_passed(raw: str) -> None:
    """Time travel: the rotation of `raw` happened long before its reuse interval (no sleeping)."""
    moved = RefreshTokenFamily.objects.filter(outstanding__jti=jwt_id(raw)).update(
        rotated_at=F("rotated_at") - timedelta(days=1)
    )
    assert moved == 1


def live_tokens(raw: str) -> int:
    """How many refresh tokens of `raw`'s family are live (outstanding, unexpired, not blacklisted)."""
    family = RefreshTokenFamily.objects.get(outstanding__jti=jwt_id(raw)).family
    return OutstandingToken.objects.filter(family__family=family, blacklistedtoken__isnull=True).count()


def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(api_for, hospital_a, user_a):
    laptop, phone = api_for(hospital_a), api_for(hospital_a)
    laptop.login(user_a.email)
    phone.login(user_a.email)
    stolen = laptop.cookie("hospital-refresh")
    assert refresh(laptop).status_code == 200  # rotates: the laptop now holds a newer token
    newer = laptop.cookie("hospital-refresh")

    # Each refresh token's family is recorded when it is issued (revocation reads it, decoding nothing).
    families = {
        raw: RefreshTokenFamily.objects.get(outstanding__jti=jwt_id(raw)).family
        for raw in (stolen, newer, phone.cookie("hospital-refresh"))
    }
    assert families[stolen] == families[newer] != families[phone.cookie("hospital-refresh")]

    window_passed(stolen)  # not two tabs racing: the thief replays it later
    response = refresh(api_for(hospital_a), stolen)
    assert response.status_code == 401
    assert refresh(laptop, newer).status_code == 401  # the whole family is gone...
    assert refresh(phone).status_code == 200  # ...but the other login's family is not


def test_logging_out_with_a_rotated_token_also_revokes_the_family(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    api.login(user_a.email)
    old = api.cookie("hospital-refresh")
    refresh(api)
    newer = api.cookie("hospital-refresh")
    assert api_for(hospital_a).post("/accounts/logout/", json={"refresh": old}).status_code == 401
    assert refresh(api, newer).status_code == 401


def test_password_change_ends_every_session(api_for, hospital_a, user_a):
    here, elsewhere = api_for(hospital_a), api_for(hospital_a)
    here.login(user_a.email)
    other_access = elsewhere.login(user_a.email).json()["access"]
    response = here.post(
        "/accounts/password/change/",
        json={"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert elsewhere.get("/accounts/user/", token=other_access).status_code == 401  # access token: at once
    assert refresh(elsewhere).status_code == 401
    assert refresh(here).status_code == 401
    here.login(user_a.email, NEW_PASSWORD)
    assert here.get("/accounts/user/").status_code == 200


def test_password_reset_ends_every_session(api_for, hospital_a, user_a, mail_sink):
    session = api_for(hospital_a)
    access = session.login(user_a.email).json()["access"]
    api = api_for(hospital_a)
    api.post("/accounts/password/reset/", json={"email": user_a.email})
    mail = [m for m in mail_sink.wait_for(user_a.email) if "Reset" in m.subject][-1]
    uid, token = link_in(mail, r"/accounts/password/reset/confirm/([^/\s]+)/([^/\s]+)/").groups()
    assert (
        api.post(
            "/accounts/password/reset/confirm/",
            json={"uid": uid, "token": token, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        ).status_code
        == 200
    )
    assert session.get("/accounts/user/", token=access).status_code == 401
    assert refresh(session).status_code == 401


def test_a_deactivated_account_loses_access_on_the_next_request(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    access = api.login(user_a.email).json()["access"]
    assert api.get("/accounts/user/", token=access).status_code == 200
    user_a.is_active = False
    user_a.save(update_fields=["is_active"])
    assert api.get("/accounts/user/", token=access).status_code == 401
    assert refresh(api).status_code == 401


# Issue 11, #8: a token of hospital A presented at hospital B.

INVALID = {"detail": "Token is invalid or expired", "code": "token_not_valid"}


def reuse_events(hospital, user) -> list[dict]:
    with tenant_context(hospital):
        return list(
            AuditEvent.objects.filter(
                action=AuditEvent.Action.REFRESH_TOKEN_REUSED, target_id=str(user.pk)
            ).values_list("detail", flat=True)
        )


@pytest.mark.parametrize("path", ["/accounts/token/refresh/", "/accounts/logout/"])
def test_a_stale_token_of_a_at_b_is_refused_like_garbage_revoked_and_audited_at_a(
    api_for, hospital_a, hospital_b, user_a, path
):
    api = api_for(hospital_a)
    api.login(user_a.email)
    stale = api.cookie("hospital-refresh")
    assert refresh(api).status_code == 200
    newer = api.cookie("hospital-refresh")

    b = api_for(hospital_b)  # inside the reuse interval: no grace at another hospital
    garbage = b.post(path, json={"refresh": "not-a-token"})
    response = b.post(path, json={"refresh": stale})
    assert (response.status_code, response.json()) == (garbage.status_code, garbage.json()) == (401, INVALID)
    # A copy exists, so A's family is revoked, and that is A's news: in A's trail, nothing of it in B's.
    assert reuse_events(hospital_a, user_a) == [{"revoked_tokens": 1, "presented_elsewhere": True}]
    assert reuse_events(hospital_b, user_a) == []
    assert refresh(api, newer).status_code == 401


def test_a_live_token_of_a_at_b_is_refused_like_garbage_and_left_alone(api_for, hospital_a, hospital_b, user_a):
    api = api_for(hospital_a)
    api.login(user_a.email)
    live = api.cookie("hospital-refresh")
    for path in ("/accounts/token/refresh/", "/accounts/logout/"):
        response = api_for(hospital_b).post(path, json={"refresh": live})
        assert (response.status_code, response.json()) == (401, INVALID)
    assert reuse_events(hospital_a, user_a) == reuse_events(hospital_b, user_a) == []
    assert refresh(api).status_code == 200


def test_a_stale_token_at_home_is_audited_at_home(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    api.login(user_a.email)
    stale = api.cookie("hospital-refresh")
    assert refresh(api).status_code == 200
    window_passed(stale)
    response = refresh(api_for(hospital_a), stale)
    assert (response.status_code, response.json()) == (401, INVALID)
    assert reuse_events(hospital_a, user_a) == [{"revoked_tokens": 1}]


# Issue 11, #7: the refresh cookie is sent by the browser on its own, also for a sibling hospital's page.


@pytest.mark.parametrize("path", ["/accounts/token/refresh/", "/accounts/logout/"])
def test_a_cookie_only_refresh_or_logout_needs_the_csrf_header(api_for, hospital_a, user_a, path):
    api = api_for(hospital_a)
    api.login(user_a.email)
    cookie = api.cookie("hospital-refresh")
    for headers in ({}, {"X-CSRFToken": "x" * 32}):  # what a page of another origin can send
        response = api.post(path, csrf=False, headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "csrf_failed" and response.json()["detail"]
        assert "hospital-" not in response.headers.get("Set-Cookie", "")  # the cookies are not cleared either
    assert api.cookie("hospital-refresh") == cookie
    assert api.get("/accounts/user/").status_code == 200
    assert api.post(path).status_code == 200  # with the header, as the frontend sends it


@pytest.mark.parametrize("path", ["/accounts/token/refresh/", "/accounts/logout/"])
def test_a_refresh_token_in_the_body_needs_no_csrf_token(api_for, hospital_a, user_a, path):
    api = api_for(hospital_a)
    api.login(user_a.email)
    token = api.cookie("hospital-refresh")
    api.session.cookies.set("csrftoken", None)  # a native app: whatever cookies it keeps, no CSRF token
    assert api.post(path, json={"refresh": token}, csrf=False).status_code == 200


# Issue 14, #3: the reuse interval. Two tabs refreshing at once are a race, not a theft.


def concurrently(*calls) -> list[requests.Response]:
    """Runs the calls at once, one thread each, released together by a barrier; their responses in order."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait(timeout=120)
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(answer is not None for answer in answers), "every request answered"
    return answers


@pytest.fixture
def generous_interval(settings):
    """A reuse interval no machine is slow enough to leave: verdicts never depend on speed."""
    settings.REFRESH_TOKEN_REUSE_INTERVAL = timedelta(minutes=10)


def test_two_concurrent_refreshes_with_one_token_both_succeed_and_the_family_lives(
    api_for, hospital_a, user_a, generous_interval
):
    api = api_for(hospital_a)
    api.login(user_a.email)
    token = api.cookie("hospital-refresh")
    tabs = [api_for(hospital_a), api_for(hospital_a)]  # two clients holding the same refresh token
    answers = concurrently(*(lambda tab=tab: refresh(tab, token) for tab in tabs))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    # Both got a working access token and the same refresh token: the family's one live token (in the body,
    # where they sent theirs).
    issued = {answer.json()["refresh"] for answer in answers}
    assert len(issued) == 1 and token not in issued
    (current,) = issued
    assert live_tokens(current) == 1
    for tab, answer in zip(tabs, answers, strict=True):
        assert tab.get("/accounts/user/", token=answer.json()["access"]).status_code == 200
    assert reuse_events(hospital_a, user_a) == []
    # The family goes on: its current token rotates as usual.
    assert refresh(tabs[0], current).status_code == 200
    assert live_tokens(current) == 1


def test_a_third_concurrent_presentation_revokes_instead_of_forking(api_for, hospital_a, user_a, generous_interval):
    """One exchange, one grace per successor: a third copy presented at once is a copy too many."""
    api = api_for(hospital_a)
    api.login(user_a.email)
    token = api.cookie("hospital-refresh")
    answers = concurrently(*(lambda: refresh(api_for(hospital_a), token) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 200, 401]
    assert live_tokens(token) == 0  # never more than one live token, and now none
    assert reuse_events(hospital_a, user_a) == [{"revoked_tokens": 1}]


def test_the_grace_is_once_per_successor_and_never_for_an_older_ancestor(
    api_for, hospital_a, user_a, generous_interval
):
    api = api_for(hospital_a)
    api.login(user_a.email)
    first = api.cookie("hospital-refresh")
    assert refresh(api).status_code == 200
    second = api.cookie("hospital-refresh")
    again = refresh(api_for(hospital_a), first)  # the other tab, a moment late: its successor, once
    assert again.status_code == 200 and live_tokens(second) == 1
    assert refresh(api_for(hospital_a), first).status_code == 401  # twice: reuse
    assert live_tokens(second) == 0

    api.login(user_a.email)
    first = api.cookie("hospital-refresh")
    refresh(api)
    refresh(api)  # first -> second -> third: `first` is no longer the current token's predecessor
    third = api.cookie("hospital-refresh")
    assert refresh(api_for(hospital_a), first).status_code == 401
    assert refresh(api, third).status_code == 401


def test_after_the_interval_a_replay_revokes_the_family(api_for, hospital_a, user_a, settings):
    api = api_for(hospital_a)
    api.login(user_a.email)
    old = api.cookie("hospital-refresh")
    assert refresh(api).status_code == 200
    current = api.cookie("hospital-refresh")
    settings.REFRESH_TOKEN_REUSE_INTERVAL = timedelta(0)  # the setting, read on every refresh
    assert refresh(api_for(hospital_a), old).status_code == 401
    assert reuse_events(hospital_a, user_a) == [{"revoked_tokens": 1}]
    assert refresh(api, current).status_code == 401


def test_a_concurrent_replay_after_the_interval_still_revokes(api_for, hospital_a, user_a):
    """Two copies of a token whose rotation is long past (moved back in the database): both refused."""
    api = api_for(hospital_a)
    api.login(user_a.email)
    old = api.cookie("hospital-refresh")
    assert refresh(api).status_code == 200
    window_passed(old)
    answers = concurrently(*(lambda: refresh(api_for(hospital_a), old) for _ in range(2)))
    assert [a.status_code for a in answers] == [401, 401]
    assert live_tokens(old) == 0
