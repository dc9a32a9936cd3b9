"""Nothing of hospital A works on hospital B or on the platform domain: tokens, cookies, credentials, links."""

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from tests.support import PASSWORD, link_in, unique_email

User = get_user_model()


def login_body(api, email, password=PASSWORD):
    return api.post("/accounts/login/", json={"email": email, "password": password})


def test_credentials_of_a_fail_on_b_exactly_like_a_wrong_password(api_a, api_b, user_a, user_b):
    foreign = login_body(api_b, user_a.email)
    wrong_password = login_body(api_b, user_b.email, "not-the-password-1")
    unknown = login_body(api_b, unique_email("nobody"))
    assert foreign.status_code == wrong_password.status_code == unknown.status_code == 400
    assert foreign.json() == wrong_password.json() == unknown.json()
    assert "hospital-access" not in foreign.cookies
    assert login_body(api_a, user_a.email).status_code == 200


def test_hospital_credentials_fail_on_the_platform_domain_and_back(api_for, api_a, user_a, platform_user):
    assert login_body(api_for(None), user_a.email).status_code == 400
    assert login_body(api_a, platform_user.email).status_code == 400


@pytest.mark.parametrize(
    "method, path, payload",
    [
        ("GET", "/accounts/user/", None),
        ("PATCH", "/accounts/user/", {"first_name": "Mallory"}),
        ("PUT", "/accounts/user/", {"first_name": "Mallory", "last_name": "M"}),
        (
            "POST",
            "/accounts/password/change/",
            {"old_password": PASSWORD, "new_password1": "x-New-pass-123", "new_password2": "x-New-pass-123"},
        ),
    ],
)
def test_access_token_of_a_is_rejected_on_b_and_on_the_platform(api_a, api_b, api_for, user_a, method, path, payload):
    access = api_a.login(user_a.email).json()["access"]
    for other in (api_b, api_for(None)):
        by_header = other.request(method, path, token=access, json=payload)
        assert by_header.status_code == 401, by_header.text
        assert by_header.json()["code"] == "token_not_valid"
        assert user_a.email not in by_header.text
        # The same token as a cookie, with A's CSRF cookie replayed too.
        other.session.cookies.set("hospital-access", access)
        other.session.cookies.set("csrftoken", api_a.cookie("csrftoken"))
        by_cookie = other.request(method, path, json=payload)
        assert by_cookie.status_code == 401, by_cookie.text
    user_a.refresh_from_db()
    assert user_a.first_name == "Ann" and user_a.check_password(PASSWORD)


def test_refresh_token_of_a_is_rejected_on_b_and_left_intact(api_a, api_b, user_a):
    api_a.login(user_a.email)
    refresh = api_a.cookie("hospital-refresh")
    assert api_b.post("/accounts/token/refresh/", json={"refresh": refresh}).status_code == 401
    api_b.session.cookies.set("hospital-refresh", refresh)
    api_b.session.cookies.set("csrftoken", "c" * 32)  # a cookie's token needs the CSRF header (sent with it)
    assert api_b.post("/accounts/token/refresh/").status_code == 401
    # Logging out on B with A's refresh token neither works nor blacklists it.
    assert api_b.post("/accounts/logout/", json={"refresh": refresh}).status_code == 401
    assert api_a.post("/accounts/token/refresh/").status_code == 200


def test_token_verify_on_b_rejects_a_token(api_a, api_b, user_a):
    access = api_a.login(user_a.email).json()["access"]
    assert api_b.post("/accounts/token/verify/", json={"token": access}).status_code == 401
    assert api_a.post("/accounts/token/verify/", json={"token": access}).status_code == 200


def test_login_cookies_are_host_only_httponly_and_lax(api_a, user_a):
    response = api_a.login(user_a.email)
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.raw.headers.getlist("Set-Cookie")}
    for name in ("hospital-access", "hospital-refresh"):
        attributes = cookies[name]
        assert "httponly" in attributes and "samesite=lax" in attributes
        assert "domain=" not in attributes  # never sent to a sibling subdomain
    assert "path=/accounts/" in cookies["hospital-refresh"]


def test_password_reset_on_b_for_a_user_sends_nothing(api_a, api_b, user_a, mail_sink):
    before = len(mail_sink.to(user_a.email))
    response_b = api_b.post("/accounts/password/reset/", json={"email": user_a.email})
    response_unknown = api_b.post("/accounts/password/reset/", json={"email": unique_email("ghost")})
    assert response_b.status_code == response_unknown.status_code == 200
    assert response_b.json() == response_unknown.json()
    # A's real reset link does nothing on B either.
    api_a.post("/accounts/password/reset/", json={"email": user_a.email})
    mail = mail_sink.wait_for(user_a.email, count=before + 1)[-1]
    assert len(mail_sink.to(user_a.email)) == before + 1
    uid, token = link_in(mail, r"/accounts/password/reset/confirm/([^/\s]+)/([^/\s]+)/").groups()
    new = {"uid": uid, "token": token, "new_password1": "b-Side-pass-991", "new_password2": "b-Side-pass-991"}
    assert api_b.post("/accounts/password/reset/confirm/", json=new).status_code == 400
    user_a.refresh_from_db()
    assert user_a.check_password(PASSWORD)
    assert api_a.post("/accounts/password/reset/confirm/", json=new).status_code == 200


def test_email_verification_key_of_a_does_nothing_on_b(api_a, api_b, mail_sink):
    email = unique_email("verify")
    api_a.post("/accounts/registration/", json={"email": email, "password1": PASSWORD, "password2": PASSWORD})
    key = link_in(mail_sink.wait_for(email)[0], r"account-confirm-email/([^/\s]+)/").group(1)
    assert api_b.post("/accounts/registration/verify-email/", json={"key": key}).status_code == 404
    assert not EmailAddress.objects.get(email=email).verified
    # Resending from B sends nothing to A's address.
    assert api_b.post("/accounts/registration/resend-email/", json={"email": email}).status_code == 200
    assert len(mail_sink.to(email)) == 1
    assert api_a.post("/accounts/registration/verify-email/", json={"key": key}).status_code == 200


def test_registering_an_existing_email_changes_nothing_and_looks_normal(api_a, api_b, user_a, mail_sink):
    fresh = api_a.post(
        "/accounts/registration/", json={"email": unique_email("fresh"), "password1": PASSWORD, "password2": PASSWORD}
    )
    for email in (user_a.email.upper(), user_a.email):
        again = api_a.post(
            "/accounts/registration/",
            json={
                "email": email,
                "password1": "Hijack-attempt-77",
                "password2": "Hijack-attempt-77",
                "first_name": "Mallory",
            },
        )
        assert again.status_code == fresh.status_code == 201
        assert again.json() == fresh.json()
    assert User.objects.filter(email=user_a.email).count() == 1
    user_a.refresh_from_db()
    assert user_a.hospital.slug == "alpha" and user_a.first_name == "Ann" and user_a.check_password(PASSWORD)
    # The owner is told, with a link to reset at their hospital.
    notices = [m for m in mail_sink.wait_for(user_a.email, count=2) if "already" in m.text]
    assert len(notices) == 2 and all("alpha.localhost" in m.text for m in notices)

    # At another hospital the address is free: a separate account of B, and A's is untouched.
    at_b = api_b.post(
        "/accounts/registration/",
        json={"email": user_a.email, "password1": "Beta-own-pass-77", "password2": "Beta-own-pass-77"},
    )
    assert at_b.status_code == 201 and at_b.json() == fresh.json()
    assert sorted(User.objects.filter(email=user_a.email).values_list("hospital__slug", flat=True)) == ["alpha", "beta"]
    user_a.refresh_from_db()
    assert user_a.check_password(PASSWORD)


def test_platform_token_is_rejected_on_a_hospital(api_for, api_a, platform_user):
    access = api_for(None).login(platform_user.email).json()["access"]
    assert api_a.get("/accounts/user/", token=access).status_code == 401
