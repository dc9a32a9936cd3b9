"""Token hardening: stolen refresh tokens, password changes and deactivation end sessions at once."""
from tests.support import PASSWORD, link_in

NEW_PASSWORD = "Brand-new-pass-77"


def refresh(api, token=None):
    return api.post("/accounts/token/refresh/", json={"refresh": token} if token else {})


def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(api_for, hospital_a, user_a):
    laptop, phone = api_for(hospital_a), api_for(hospital_a)
    laptop.login(user_a.email)
    phone.login(user_a.email)
    stolen = laptop.cookie("hospital-refresh")
    assert refresh(laptop).status_code == 200  # rotates: the laptop now holds a newer token
    newer = laptop.cookie("hospital-refresh")

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
    response = here.post("/accounts/password/change/", json={
        "old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
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
    assert api.post("/accounts/password/reset/confirm/", json={
        "uid": uid, "token": token, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}).status_code == 200
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
