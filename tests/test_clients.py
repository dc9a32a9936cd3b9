"""Every kind of client (issue 14): apps without cookies, browsers, and clients written for stock dj-rest-auth.

An app (mobile, CLI, server to server) logs in with `client: app`: the refresh token comes in the body and no
cookie is set; refresh and logout take it from the body and answer the rotated one there. A browser keeps its
HttpOnly cookies and never sees a refresh token in JSON. The second half holds the README's table "Differences
from stock dj-rest-auth" to what it says, one test per row.
"""

import jwt
import pytest

from tests.support import PASSWORD, unique_email
from tests.test_onboarding import invitation_token, new_slug, onboard

INVALID = {"detail": "Token is invalid or expired", "code": "token_not_valid"}


def claims(raw: str) -> dict:
    return jwt.decode(raw, options={"verify_signature": False})


def app_login(api, email, **extra):
    return api.post("/accounts/login/", json={"email": email, "password": PASSWORD, "client": "app", **extra})


def test_an_app_gets_its_refresh_token_in_the_body_and_no_cookie(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    response = app_login(api, user_a.email)
    assert response.status_code == 200, response.text
    body = response.json()
    assert claims(body["refresh"])["token_type"] == "refresh"
    assert claims(body["refresh"])["hospital"] == claims(body["access"])["hospital"] == hospital_a.pk
    assert {"access_expiration", "refresh_expiration", "user"} <= set(body)
    assert "Set-Cookie" not in response.headers  # no tokens, no csrftoken
    assert not api.session.cookies

    # Refresh, again and again: each answer carries the successor, in the body, and sets nothing.
    token = body["refresh"]
    for _ in range(3):
        response = api.post("/accounts/token/refresh/", json={"refresh": token})
        assert response.status_code == 200, response.text
        assert "Set-Cookie" not in response.headers
        answer = response.json()
        assert set(answer) == {"access", "access_expiration", "refresh", "refresh_expiration"}
        assert answer["refresh"] != token and claims(answer["refresh"])["family"] == claims(token)["family"]
        assert api.get("/accounts/user/", token=answer["access"]).json()["email"] == user_a.email
        token = answer["refresh"]

    response = api.post("/accounts/logout/", json={"refresh": token})
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert api.post("/accounts/token/refresh/", json={"refresh": token}).json() == INVALID
    assert not api.session.cookies


def test_a_browser_login_is_unchanged(api_for, hospital_a, user_a):
    for extra in ({}, {"client": "browser"}):
        api = api_for(hospital_a)
        body = api.post("/accounts/login/", json={"email": user_a.email, "password": PASSWORD, **extra}).json()
        assert body["refresh"] == ""
        assert api.cookie("hospital-refresh") and api.cookie("hospital-access") and api.cookie("csrftoken")


def test_an_unknown_client_kind_is_a_clear_400(api_a, user_a):
    response = app_login(api_a, user_a.email, client="mobile")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert "client" in response.json()["fields"]
    assert not api_a.session.cookies


@pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"client": "app"}])
def test_a_cookie_refresh_never_puts_the_refresh_token_in_json(api_a, user_a, body):
    """Whatever a script on the page asks for, an HttpOnly refresh token stays in its cookie."""
    api_a.login(user_a.email)
    before = api_a.cookie("hospital-refresh")
    response = api_a.post("/accounts/token/refresh/", json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"access", "access_expiration"}
    assert before not in response.text and api_a.cookie("hospital-refresh") not in response.text
    assert api_a.cookie("hospital-refresh") != before  # rotated, in the cookie


@pytest.mark.parametrize("path", ["/accounts/token/refresh/", "/accounts/logout/"])
@pytest.mark.parametrize("body", [{}, {"refresh": ""}])
def test_an_empty_body_token_is_the_cookie_and_needs_csrf(api_a, user_a, path, body):
    """A forged request cannot name a body token to skip CSRF: blank means the cookie, and the cookie the header."""
    api_a.login(user_a.email)
    response = api_a.post(path, json=body, csrf=False)
    assert (response.status_code, response.json()["code"]) == (403, "csrf_failed")
    assert api_a.post(path, json=body).status_code == 200  # the frontend, with the header


def test_app_tokens_are_bound_to_their_hospital(api_for, hospital_a, hospital_b, user_a):
    body = app_login(api_for(hospital_a), user_a.email).json()
    b = api_for(hospital_b)
    for path in ("/accounts/token/refresh/", "/accounts/logout/"):
        response = b.post(path, json={"refresh": body["refresh"]})
        assert (response.status_code, response.json()) == (401, INVALID)
    assert b.get("/accounts/user/", token=body["access"]).status_code == 401
    assert b.post("/accounts/token/verify/", json={"token": body["access"]}).json() == INVALID
    # ...and still good at home.
    assert api_for(hospital_a).post("/accounts/token/refresh/", json={"refresh": body["refresh"]}).status_code == 200


def test_an_invitation_accepted_by_an_app_answers_like_an_app_login(platform_api, api_for, mail_sink):
    slug, email = new_slug("app"), unique_email("app-admin")
    assert onboard(platform_api, slug, email).status_code == 201
    api = api_for(host=f"{slug}.localhost")
    response = api.post(
        "/accounts/invitations/accept/",
        json={"token": invitation_token(mail_sink, email, slug), "password": PASSWORD, "client": "app"},
    )
    assert response.status_code == 200, response.text
    assert claims(response.json()["refresh"])["token_type"] == "refresh"
    assert "Set-Cookie" not in response.headers


# The README's "Differences from stock dj-rest-auth", row by row.


def test_logout_without_a_refresh_token_is_401_like_upstream(api_a):
    response = api_a.post("/accounts/logout/", json={})
    assert (response.status_code, response.json()["code"]) == (401, "refresh_missing")


def test_the_login_bodys_empty_refresh_sent_back_uses_the_cookie(api_a, user_a):
    login = api_a.login(user_a.email).json()
    response = api_a.post("/accounts/token/refresh/", json={"refresh": login["refresh"]})  # ""
    assert response.status_code == 200, response.text


def test_token_verify_is_200_empty_or_401_token_not_valid(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    body = app_login(api, user_a.email).json()
    response = api.post("/accounts/token/verify/", json={"token": body["access"]})
    assert (response.status_code, response.json()) == (200, {})
    assert api.post("/accounts/logout/", json={"refresh": body["refresh"]}).status_code == 200
    response = api.post("/accounts/token/verify/", json={"token": body["refresh"]})  # blacklisted now
    assert (response.status_code, response.json()) == (401, INVALID)  # simplejwt: 400 "Token is blacklisted"
    response = api.post("/accounts/token/verify/", json={"token": "garbage"})
    assert (response.status_code, response.json()["code"]) == (401, "token_not_valid")


def test_no_credentials_is_not_authenticated_a_bad_token_is_token_not_valid(api_a):
    response = api_a.get("/accounts/user/")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    response = api_a.get("/accounts/user/", token="not-a-token")
    assert (response.status_code, response.json()["code"]) == (401, "token_not_valid")


def test_only_the_bearer_scheme_is_read(api_for, hospital_a, user_a):
    api = api_for(hospital_a)
    access = app_login(api, user_a.email).json()["access"]
    assert api.get("/accounts/user/", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    response = api.get("/accounts/user/", headers={"Authorization": f"JWT {access}"})
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")  # the scheme to use


def test_a_password_change_ends_access_tokens_at_once(api_for, hospital_a, user_a):
    """Also tests/test_tokens.py::test_password_change_ends_every_session (refresh tokens too)."""
    api = api_for(hospital_a)
    access = app_login(api, user_a.email).json()["access"]
    new = "Changed-pass-314"
    response = api.post(
        "/accounts/password/change/",
        token=access,
        json={"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 200, response.text
    assert api.get("/accounts/user/", token=access).status_code == 401
