"""Single sign-on per hospital, against real OpenID Providers (devtools/idp/: panva's oidc-provider on Node.js,
one per hospital, each in its own process on its own port), through the provider's own login page over HTTP.

A sign-in here is what a browser does: GET /accounts/sso/start/ on the hospital's host, follow the redirect to
the IdP, submit its login form, follow its redirect back to the callback on the hospital's host.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from django.conf import settings
from django.core.cache import cache
from django_tenants.utils import tenant_context
from rest_framework_simplejwt.tokens import UntypedToken

from accounts.models import User
from accounts.services import user_create_verified
from audit.models import AuditEvent
from devtools.waits import free_port
from emails.models import Email
from sso.models import Identity, IdentityProvider, SignIn
from staff.models import StaffMember
from staff.services import invitation_create, staff_member_create
from tenants.services import hospital_host
from tests.processes import OpenIdProvider
from tests.support import ANSWER_TIMEOUT, PASSWORD, unique_email

SECRET = {"alpha": "alpha-client-secret-0123456789abcdef", "beta": "beta-client-secret-0123456789abcdef"}


def _callback(slug: str) -> str:
    return f"http://{hospital_host(slug)}/accounts/sso/callback/"


@pytest.fixture(scope="module")
def idp_a(server_url):
    port = server_url.rsplit(":", 1)[1]
    idp = OpenIdProvider(
        clients=[
            {
                "client_id": "alpha-app",
                "client_secret": SECRET["alpha"],
                "redirect_uris": [_callback("alpha")],
                # The IdP posts here itself (server.mjs resolves *.localhost to loopback): the live server's port.
                "backchannel_logout_uri": f"http://{hospital_host('alpha')}:{port}/accounts/sso/backchannel-logout/",
            }
        ]
    )
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def idp_b():
    idp = OpenIdProvider(
        clients=[{"client_id": "beta-app", "client_secret": SECRET["beta"], "redirect_uris": [_callback("beta")]}]
    )
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture(scope="module", autouse=True)
def sso_off_afterwards(hospital_a, hospital_b):
    """The hospitals are the session's: other modules find them without single sign-on."""
    yield
    for hospital in (hospital_a, hospital_b):
        with tenant_context(hospital):
            IdentityProvider.objects.all().delete()


def admin_of(api_for, hospital):
    user = user_create_verified(hospital=hospital, email=unique_email("ssoadmin"), password=PASSWORD)
    with tenant_context(hospital):
        staff_member_create(user=user, role=StaffMember.Role.HOSPITAL_ADMIN)
    api = api_for(hospital)
    api.login(user.email)
    return api


def configure(api, idp, **fields):
    slug = api.host.split(".")[0]
    body = {
        "issuer": idp.issuer,
        "client_id": f"{slug}-app",
        "client_secret": SECRET[slug],
        "allowed_domains": [f"{slug}.example"],
        "first_sign_in": "jit",
        "default_role": "doctor",
        **fields,
    }
    response = api.put("/api/sso/provider/", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def sso_a(api_for, hospital_a, idp_a):
    """Hospital A signs in through idp_a (just in time, default role doctor, domain alpha.example)."""
    api = admin_of(api_for, hospital_a)
    configure(api, idp_a)
    return api


@pytest.fixture
def sso_b(api_for, hospital_b, idp_b):
    api = admin_of(api_for, hospital_b)
    configure(api, idp_b)
    return api


def idp_login(api, login: str) -> str:
    """Starts a sign-in on `api`'s hospital and signs in as `login` at the IdP's own login page.

    Returns the callback URL the IdP sends the browser back to (not yet followed).
    """
    start = api.get("/accounts/sso/start/", allow_redirects=False)
    assert start.status_code == 302, start.text
    url = start.headers["Location"]
    for _ in range(10):
        if url.startswith(f"http://{api.host}/"):
            return url
        page = api.session.get(url, allow_redirects=False, timeout=ANSWER_TIMEOUT)
        if page.status_code in (302, 303):
            url = urljoin(url, page.headers["Location"])
            continue
        assert page.status_code == 200, page.text
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        assert action and 'name="login"' in page.text, page.text  # the provider's login page
        answer = api.session.post(
            urljoin(url, action[1]),
            data={"prompt": "login", "login": login, "password": "anything"},
            allow_redirects=False,
            timeout=ANSWER_TIMEOUT,
        )
        assert answer.status_code in (302, 303), answer.text
        url = urljoin(url, answer.headers["Location"])
    raise AssertionError(f"the IdP never sent the browser back: {url}")


def callback(api, url: str):
    """Follows the IdP's redirect to the callback on the hospital's host (the live server, its Host header)."""
    parts = urlsplit(url)
    return api.get(f"{parts.path}?{parts.query}", allow_redirects=False)


def sign_in(api, login: str):
    return callback(api, idp_login(api, login))


def users_with(hospital, email: str):
    return User.objects.filter(hospital=hospital, email=email)


def test_admin_configures_the_idp_secret_never_returned_and_audited(api_for, hospital_a, hospital_b, idp_a, user_a):
    api = admin_of(api_for, hospital_a)
    body = configure(api, idp_a, first_sign_in="existing")
    assert "client_secret" not in body and body["client_secret_set"] is True
    assert body["redirect_uri"] == _callback("alpha")
    assert api.get("/api/sso/provider/").json() == body
    with tenant_context(hospital_a):
        stored = IdentityProvider.objects.get()
        assert SECRET["alpha"] not in stored.client_secret_encrypted
        event = AuditEvent.objects.filter(action="sso_configured").first()
        assert event is not None and SECRET["alpha"] not in str(event.detail)
        assert event.detail["changes"]["client_secret"]["new"] == "(changed)"
    # A change without a secret keeps the stored one.
    keep = {k: v for k, v in body.items() if k in ("issuer", "client_id", "allowed_domains")}
    assert api.put("/api/sso/provider/", json={**keep, "first_sign_in": "jit"}).status_code == 200
    with tenant_context(hospital_a):
        assert IdentityProvider.objects.get().client_secret_encrypted == stored.client_secret_encrypted

    report = api.post("/api/sso/provider/test/")
    assert report.status_code == 200, report.text
    assert report.json()["ok"] is True and report.json()["issuer"] == idp_a.issuer
    assert [key["kid"] for key in report.json()["keys"]] == list(idp_a.kids)

    bad = api.put("/api/sso/provider/", json={**keep, "issuer": "ftp://idp.example", "client_secret": "x"})
    assert bad.status_code == 400 and bad.json()["fields"]["issuer"]
    no_domains = api.put("/api/sso/provider/", json={**keep, "allowed_domains": []})
    assert no_domains.status_code == 400, no_domains.text

    member = api_for(hospital_a)
    member.login(user_a.email)
    assert member.get("/api/sso/provider/").status_code == 403
    assert member.put("/api/sso/provider/", json=body).status_code == 403
    # Nothing of A's configuration is visible at B.
    other = admin_of(api_for, hospital_b)
    with tenant_context(hospital_b):
        IdentityProvider.objects.all().delete()
    assert other.get("/api/sso/provider/").status_code == 404


def test_test_connection_reports_an_unreachable_idp(sso_a, hospital_a):
    body = sso_a.get("/api/sso/provider/").json()
    down = {k: body[k] for k in ("client_id", "allowed_domains")}
    assert (
        sso_a.put("/api/sso/provider/", json={**down, "issuer": f"http://127.0.0.1:{free_port()}"}).status_code == 200
    )
    report = sso_a.post("/api/sso/provider/test/").json()
    assert report["ok"] is False and report["error"]


def _claims(api) -> dict:
    return UntypedToken(api.cookie("hospital-access")).payload


def test_just_in_time_first_sign_in_ends_like_a_password_login(sso_a, api_for, hospital_a, user_a):
    email = unique_email("jit", domain="alpha.example")
    api = api_for(hospital_a)
    answer = sign_in(api, email)
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"] == settings.FRONTEND_URL.format(slug="alpha", base_domain="localhost") + "/"
    assert "token" not in answer.headers["Location"] and "code" not in answer.headers["Location"]
    assert api.cookie("hospital-access") and api.cookie("hospital-refresh") and api.cookie("csrftoken")
    me = api.get("/accounts/user/")
    assert me.status_code == 200 and me.json()["email"] == email and me.json()["hospital"] == "alpha"
    user = users_with(hospital_a, email).get()
    assert not user.has_usable_password() and user.last_login is not None
    with tenant_context(hospital_a):
        assert StaffMember.objects.get(user=user).role == "doctor"
        assert Identity.objects.get(user=user).email_at_link == email
        assert AuditEvent.objects.filter(action="sso_identity_linked", actor_id=user.pk).exists()
        assert AuditEvent.objects.filter(action="login_succeeded", actor_id=user.pk).exists()
    # The same claims as a password login's tokens (hospital binding, token family).
    password = api_for(hospital_a)
    password.login(user_a.email)
    assert set(_claims(api)) == set(_claims(password))
    assert _claims(api)["hospital"] == hospital_a.pk and _claims(api)["family"] != _claims(password)["family"]
    # The refresh cookie works like any login's.
    refreshed = api.post("/accounts/token/refresh/")
    assert refreshed.status_code == 200, refreshed.text


def test_second_sign_in_finds_the_account_by_sub_even_with_a_new_email(sso_a, api_for, hospital_a):
    email = unique_email("sub", domain="alpha.example")
    subject = f"stable-{email}"
    assert sign_in(api_for(hospital_a), f"{email};sub={subject}").status_code == 302
    user = users_with(hospital_a, email).get()
    renamed = unique_email("renamed", domain="elsewhere.example")  # not even an allowed domain now
    again = api_for(hospital_a)
    assert sign_in(again, f"{renamed};sub={subject}").status_code == 302
    assert again.get("/accounts/user/").json()["pk"] == user.pk
    assert not User.objects.filter(email=renamed).exists()


def test_invited_account_signs_in_with_its_invited_role(sso_a, api_for, hospital_a, idp_a, fresh_limits):
    configure(sso_a, idp_a, first_sign_in="existing")
    email = unique_email("invited", domain="alpha.example")
    with tenant_context(hospital_a):
        invitation = invitation_create(hospital=hospital_a, email=email, role=StaffMember.Role.NURSE)
    api = api_for(hospital_a)
    assert sign_in(api, email).status_code == 302
    user = users_with(hospital_a, email).get()
    assert user.is_active
    with tenant_context(hospital_a):
        invitation.refresh_from_db()
        assert invitation.accepted_at is not None
        assert StaffMember.objects.get(user=user).role == "nurse"


def test_existing_accounts_only_refuses_an_unknown_address_and_creates_nothing(sso_a, api_for, hospital_a, idp_a):
    configure(sso_a, idp_a, first_sign_in="existing")
    email = unique_email("stranger", domain="alpha.example")
    answer = sign_in(api_for(hospital_a), email)
    assert answer.status_code == 403 and answer.json()["code"] == "sso_refused", answer.text
    assert not users_with(hospital_a, email).exists()
    with tenant_context(hospital_a):
        event = AuditEvent.objects.filter(action="sso_sign_in_refused").first()
        assert event is not None and event.detail["reason"] == "account_unknown"


def test_existing_account_of_this_hospital_is_linked_never_platform_staff(
    sso_a, api_for, hospital_a, platform_user, idp_a
):
    configure(sso_a, idp_a, first_sign_in="existing")
    email = unique_email("existing", domain="alpha.example")
    user = user_create_verified(hospital=hospital_a, email=email, password=PASSWORD)
    api = api_for(hospital_a)
    assert sign_in(api, email).status_code == 302
    assert api.get("/accounts/user/").json()["pk"] == user.pk
    # A platform operator's address: the IdP's identity never becomes (or reaches) platform staff.
    staff_email = unique_email("operator", domain="alpha.example")
    User.objects.filter(pk=platform_user.pk).update(email=staff_email)
    refused = sign_in(api_for(hospital_a), staff_email)
    assert refused.status_code == 403, refused.text
    assert User.objects.filter(email=staff_email).count() == 1
    with tenant_context(hospital_a):
        assert not Identity.objects.filter(user=platform_user).exists()


@pytest.mark.parametrize(
    "login, reason",
    [
        ("{n}@outside.example", "domain_refused"),
        ("{n}@alpha.example;verified=false", "email_unverified"),
    ],
)
def test_an_address_the_hospital_did_not_allow_is_refused(sso_a, api_for, hospital_a, login, reason):
    login = login.format(n=unique_email("x").split("@")[0])
    answer = sign_in(api_for(hospital_a), login)
    assert answer.status_code == 403 and answer.json()["code"] == "sso_refused", answer.text
    assert not User.objects.filter(email=login.split(";")[0]).exists()
    with tenant_context(hospital_a):
        assert AuditEvent.objects.filter(action="sso_sign_in_refused").first().detail["reason"] == reason


def test_hospital_a_identity_at_b_callback_is_refused(sso_a, sso_b, api_for, hospital_a, hospital_b):
    email = unique_email("crossing", domain="alpha.example")
    api = api_for(hospital_a)
    url = idp_login(api, email)
    # The attacker holds the whole redirect (code, state) and the state cookie, and replays them at B.
    at_b = api_for(hospital_b)
    for cookie in api.session.cookies:
        if cookie.name == "hospital-sso-state":
            at_b.session.cookies.set(cookie.name, cookie.value, domain=cookie.domain, path=cookie.path)
    answer = callback(at_b, url)
    assert answer.status_code == 400 and answer.json()["code"] == "sso_state_invalid", answer.text
    assert not User.objects.filter(email=email).exists()
    assert at_b.cookie("hospital-access") is None


def test_tampered_state_is_refused(sso_a, api_for, hospital_a):
    email = unique_email("tamper", domain="alpha.example")
    api = api_for(hospital_a)
    url = idp_login(api, email)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = {**query, "state": query["state"][:-2] + ("AA" if not query["state"].endswith("AA") else "BB")}
    answer = api.get(f"{parts.path}?{urlencode(forged)}", allow_redirects=False)
    assert answer.status_code == 400 and answer.json()["code"] == "sso_state_invalid", answer.text
    no_state = api.get(f"{parts.path}?{urlencode({'code': query['code']})}", allow_redirects=False)
    assert no_state.status_code == 400
    assert not User.objects.filter(email=email).exists()


def test_a_replayed_callback_or_code_is_refused(sso_a, api_for, hospital_a):
    email = unique_email("replay", domain="alpha.example")
    api = api_for(hospital_a)
    url = idp_login(api, email)
    state_cookie = api.cookie("hospital-sso-state")
    assert callback(api, url).status_code == 302
    # The same redirect again, with its state cookie: the sign-in is used up.
    api.session.cookies.set("hospital-sso-state", state_cookie, path="/accounts/sso/")
    again = callback(api, url)
    assert again.status_code == 400 and again.json()["code"] == "sso_state_invalid", again.text
    # The same code under a fresh sign-in (its own state and cookie): the IdP refuses a used code.
    api = api_for(hospital_a)
    fresh = api.get("/accounts/sso/start/", allow_redirects=False)
    new_state = parse_qs(urlsplit(fresh.headers["Location"]).query)["state"][0]
    code = parse_qs(urlsplit(url).query)["code"][0]
    replay = api.get(f"/accounts/sso/callback/?{urlencode({'code': code, 'state': new_state})}", allow_redirects=False)
    assert replay.status_code == 400 and replay.json()["code"] == "sso_code_invalid", replay.text


def test_parallel_callbacks_of_one_sign_in_sign_in_once(sso_a, api_for, hospital_a):
    email = unique_email("burst", domain="alpha.example")
    api = api_for(hospital_a)
    url = idp_login(api, email)
    state_cookie = api.cookie("hospital-sso-state")
    answers: list[int] = []

    def one():
        browser = api_for(hospital_a)
        browser.session.cookies.set("hospital-sso-state", state_cookie, path="/accounts/sso/")
        answers.append(callback(browser, url).status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ANSWER_TIMEOUT)
    assert sorted(answers) == [302] + [400] * 5, answers
    assert users_with(hospital_a, email).count() == 1


def test_idp_down_is_a_clear_error_and_creates_nothing_then_a_key_rotation_is_followed(
    sso_a, api_for, hospital_a, idp_a
):
    # A sign-in first, so that the IdP's discovery and key set are in the cache, as in production.
    assert sign_in(api_for(hospital_a), unique_email("before", domain="alpha.example")).status_code == 302
    email = unique_email("down", domain="alpha.example")
    api = api_for(hospital_a)
    url = idp_login(api, email)
    idp_a.stop()
    try:
        answer = callback(api, url)
        assert answer.status_code == 502 and answer.json()["code"] == "idp_unavailable", answer.text
        assert not users_with(hospital_a, email).exists()
        with tenant_context(hospital_a):
            before = SignIn.objects.count()
        # Starting while the IdP is down: the same clear error (once its cached discovery is gone).
        with tenant_context(hospital_a):  # the cache's keys are per schema (django-tenants' key function)
            cache.delete(f"sso:discovery:{idp_a.issuer}")
        start = api_for(hospital_a).get("/accounts/sso/start/", allow_redirects=False)
        assert start.status_code == 502 and start.json()["code"] == "idp_unavailable", start.text
        with tenant_context(hospital_a):
            assert SignIn.objects.count() == before
    finally:
        # Back with new signing keys: a key rotation, which the next sign-in follows by itself.
        idp_a.restart(kids=("k2",))
    rotated = api_for(hospital_a)
    assert sign_in(rotated, email).status_code == 302
    assert rotated.get("/accounts/user/").json()["email"] == email


def test_sso_is_not_configured_elsewhere(api_for, hospital_b):
    with tenant_context(hospital_b):
        IdentityProvider.objects.all().delete()
    answer = api_for(hospital_b).get("/accounts/sso/start/", allow_redirects=False)
    assert answer.status_code == 404 and answer.json()["code"] == "sso_not_configured"
    bad = api_for(hospital_b).get("/accounts/sso/callback/?code=x&state=y", allow_redirects=False)
    assert bad.status_code == 400 and bad.json()["code"] == "sso_state_invalid"


def test_sso_required_refuses_passwords_except_break_glass_accounts(
    sso_a, api_for, hospital_a, idp_a, user_a, fresh_limits
):
    glass = user_create_verified(hospital=hospital_a, email=unique_email("glass"), password=PASSWORD)
    refused = sso_a.put(
        "/api/sso/provider/",
        json={
            "issuer": idp_a.issuer,
            "client_id": "alpha-app",
            "allowed_domains": ["alpha.example"],
            "sso_required": True,
        },
    )
    assert refused.status_code == 400 and "break_glass_emails" in refused.json()["fields"], refused.text
    configure(sso_a, idp_a, sso_required=True, break_glass_emails=[glass.email.upper()])
    try:
        # Password login: the right password of an ordinary account is refused; a wrong one answers as ever.
        ordinary = api_for(hospital_a).post("/accounts/login/", json={"email": user_a.email, "password": PASSWORD})
        assert ordinary.status_code == 403 and ordinary.json()["code"] == "sso_required", ordinary.text
        wrong = api_for(hospital_a).post("/accounts/login/", json={"email": user_a.email, "password": "wrong-1"})
        assert wrong.status_code == 400, wrong.text
        api_for(hospital_a).login(glass.email)  # break glass: 200
        registration = api_for(hospital_a).post(
            "/accounts/registration/",
            json={"email": unique_email("new", domain="alpha.example"), "password1": PASSWORD, "password2": PASSWORD},
        )
        assert registration.status_code == 403 and registration.json()["code"] == "sso_required"
        # Reset: the same answer, and no mail for an ordinary account.
        reset = api_for(hospital_a).post("/accounts/password/reset/", json={"email": user_a.email})
        assert reset.status_code == 200, reset.text
        assert not Email.objects.filter(to=user_a.email, kind="password_reset").exists()
        glass_reset = api_for(hospital_a).post("/accounts/password/reset/", json={"email": glass.email})
        assert glass_reset.status_code == 200
        assert Email.objects.filter(to=glass.email).exists()
        # Single sign-on itself goes on.
        assert sign_in(api_for(hospital_a), unique_email("required", domain="alpha.example")).status_code == 302
    finally:
        configure(sso_a, idp_a)
    assert api_for(hospital_a).login(user_a.email).status_code == 200


def test_platform_staff_see_which_hospitals_use_sso_never_secrets(sso_a, platform_api, api_for, hospital_a, user_a):
    answer = platform_api.get("/api/platform/sso/", params={"page_size": 100})
    assert answer.status_code == 200, answer.text
    rows = {row["slug"]: row for row in answer.json()["results"]}
    assert rows["alpha"]["configured"] and rows["alpha"]["enabled"] and rows["alpha"]["issuer"]
    assert "client_id" not in rows["alpha"] and SECRET["alpha"] not in answer.text and "alpha-app" not in answer.text
    member = api_for(None)
    member.session.headers["Authorization"] = "Bearer " + api_for(hospital_a).login(user_a.email).json()["access"]
    assert member.get("/api/platform/sso/").status_code in (401, 403)


def test_backchannel_logout_from_the_idp_ends_the_refresh_tokens(sso_a, api_for, hospital_a, idp_a):
    email = unique_email("leaver", domain="alpha.example")
    api = api_for(hospital_a)
    assert sign_in(api, email).status_code == 302
    assert api.post("/accounts/token/refresh/").status_code == 200
    # The user signs out at the IdP (its own logout page): the IdP posts a logout token to the hospital.
    page = api.session.get(f"{idp_a.issuer}/session/end", timeout=ANSWER_TIMEOUT)
    assert page.status_code == 200, page.text
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    xsrf = re.search(r'name="xsrf" value="([^"]+)"', page.text)
    assert action and xsrf, page.text
    done = api.session.post(
        urljoin(idp_a.issuer, action[1]),
        data={"xsrf": xsrf[1], "logout": "yes"},
        allow_redirects=False,
        timeout=ANSWER_TIMEOUT,
    )
    assert done.status_code in (200, 302, 303), done.text
    user = users_with(hospital_a, email).get()
    with tenant_context(hospital_a):
        event = AuditEvent.objects.filter(action="logout", target_id=str(user.pk)).first()
        assert event is not None and event.detail["via"] == "sso_backchannel", idp_a.log.read_text()[-2000:]
    refreshed = api.post("/accounts/token/refresh/")
    assert refreshed.status_code == 401, refreshed.text
    # A forged or replayed logout token changes nothing.
    forged = api_for(hospital_a).post("/accounts/sso/backchannel-logout/", data={"logout_token": "a.b.c"})
    assert forged.status_code == 400 and forged.json()["code"] == "logout_token_invalid", forged.text
    json_body = api_for(hospital_a).post("/accounts/sso/backchannel-logout/", json={"logout_token": "a.b.c"})
    assert json_body.status_code == 415, json_body.text
