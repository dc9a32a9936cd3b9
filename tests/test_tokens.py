"""Token hardening: stolen refresh tokens, password changes and deactivation end sessions at once."""

import jwt
import pytest
from django_tenants.utils import tenant_context

from accounts.models import RefreshTokenFamily
from audit.models import AuditEvent
from tests.support import PASSWORD, link_in

NEW_PASSWORD = "Brand-new-pass-77"


def jwt_id(raw: str) -> str:
    return jwt.decode(raw, options={"verify_signature": False})["jti"]


def refresh(api, token=None):
    return api.post("/accounts/token/refresh/", json={"refresh": token} if token else {})


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

    response = refresh(api_for(hospital_a), stolen)  # the thief (or a confused client) replays the old one
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

    b = api_for(hospital_b)
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
