"""The seed's flows, end to end on a hospital subdomain, over real HTTP."""

import re

from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken

from tests.support import PASSWORD, link_in, unique_email

User = get_user_model()
NEW_PASSWORD = "another-Secret-pass-42"


def register(api, email, password=PASSWORD, **extra):
    return api.post(
        "/accounts/registration/", json={"email": email, "password1": password, "password2": password, **extra}
    )


def test_full_seed_flow_on_a_hospital_subdomain(api_a, hospital_a, mail_sink):
    email = unique_email("flow")

    response = register(api_a, email, first_name="Flo", last_name="Nightingale")
    assert response.status_code == 201, response.text
    assert response.json() == {"detail": "Verification e-mail sent."}
    user = User.objects.get(email=email)
    assert user.hospital_id == hospital_a.pk

    # Verification is mandatory before login.
    response = api_a.post("/accounts/login/", json={"email": email, "password": PASSWORD})
    assert response.status_code == 400
    assert "not verified" in response.json()["detail"]

    mail = mail_sink.wait_for(email)[0]
    assert hospital_a.name in mail.subject
    key = link_in(
        mail,
        rf"http://{hospital_a.slug}\.localhost:8000/accounts/registration/"
        r"account-confirm-email/([^/\s]+)/",
    ).group(1)
    assert api_a.post("/accounts/registration/verify-email/", json={"key": key}).status_code == 200

    response = api_a.post("/accounts/login/", json={"email": email.upper(), "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["email"] == email and body["user"]["hospital"] == hospital_a.slug
    assert AccessToken(body["access"])["hospital"] == hospital_a.pk
    assert body["refresh"] == ""  # the refresh token lives only in its HttpOnly cookie
    assert api_a.cookie("hospital-refresh") and api_a.cookie("hospital-access")
    assert "sessionid" not in api_a.session.cookies  # pure JWT
    user.refresh_from_db()
    assert user.last_login is not None

    # Get and patch the profile, with the Bearer token and with the cookie.
    me = api_a.get("/accounts/user/", token=body["access"])
    assert me.status_code == 200 and me.json()["name"] == "Flo Nightingale"
    response = api_a.patch("/accounts/user/", json={"first_name": "Florence"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Florence Nightingale"

    # Change the password (old one required), then log in with the new one.
    response = api_a.post(
        "/accounts/password/change/",
        json={"old_password": "wrong-old-password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 400
    response = api_a.post(
        "/accounts/password/change/",
        json={"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert "sessionid" not in response.cookies  # no session here either
    assert api_a.post("/accounts/login/", json={"email": email, "password": PASSWORD}).status_code == 400
    api_a.login(email, NEW_PASSWORD)

    # Refresh rotates the refresh token; the old one is dead.
    old_refresh = api_a.cookie("hospital-refresh")
    response = api_a.post("/accounts/token/refresh/")
    assert response.status_code == 200, response.text
    assert response.json()["access"]
    new_refresh = api_a.cookie("hospital-refresh")
    assert new_refresh and new_refresh != old_refresh

    # Logout blacklists the refresh token and clears the cookies; neither token refreshes any more.
    response = api_a.post("/accounts/logout/")
    assert response.status_code == 200, response.text
    assert not api_a.cookie("hospital-refresh") and not api_a.cookie("hospital-access")
    for token in (new_refresh, old_refresh):
        response = api_a.post("/accounts/token/refresh/", json={"refresh": token})
        assert response.status_code == 401
        assert response.json()["code"] == "token_not_valid"


def test_password_reset_by_email_link(api_a, hospital_a, user_a, mail_sink):
    response = api_a.post("/accounts/password/reset/", json={"email": user_a.email})
    assert response.status_code == 200
    mail = mail_sink.wait_for(user_a.email)[-1]
    assert hospital_a.name in mail.subject
    uid, token = link_in(
        mail,
        rf"http://{hospital_a.slug}\.localhost:8000/accounts/password/reset/confirm/"
        r"([^/\s]+)/([^/\s]+)/",
    ).groups()

    # The link itself answers JSON telling what to post.
    landing = api_a.get(f"/accounts/password/reset/confirm/{uid}/{token}/")
    assert landing.status_code == 200 and landing.json()["uid"] == uid

    response = api_a.post(
        "/accounts/password/reset/confirm/",
        json={"uid": uid, "token": token, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200, response.text
    api_a.login(user_a.email, NEW_PASSWORD)
    # The link is single-use.
    response = api_a.post(
        "/accounts/password/reset/confirm/",
        json={"uid": uid, "token": token, "new_password1": PASSWORD, "new_password2": PASSWORD},
    )
    assert response.status_code == 400


def test_resend_verification_email(api_a, mail_sink):
    email = unique_email("resend")
    assert register(api_a, email).status_code == 201
    mail_sink.wait_for(email, count=1)
    assert api_a.post("/accounts/registration/resend-email/", json={"email": email}).status_code == 200
    second = mail_sink.wait_for(email, count=2)[-1]
    assert re.search(r"account-confirm-email/", second.text)


def test_token_verify(api_a, user_a):
    access = api_a.login(user_a.email).json()["access"]
    assert api_a.post("/accounts/token/verify/", json={"token": access}).status_code == 200
    assert api_a.post("/accounts/token/verify/", json={"token": access[:-2] + "xx"}).status_code == 401


def test_platform_staff_sign_in_on_the_platform_domain(api_for, platform_user):
    api = api_for(None)
    body = api.login(platform_user.email).json()
    assert body["user"]["hospital"] is None
    assert api.get("/accounts/user/", token=body["access"]).json()["email"] == platform_user.email
    # The platform domain has no self-registration.
    response = api.post(
        "/accounts/registration/", json={"email": unique_email(), "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 404
