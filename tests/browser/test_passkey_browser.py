"""A staff member registers a passkey and logs in with it in a real browser: Chromium's WebAuthn API answered
by its virtual authenticator (DevTools protocol, `WebAuthn.addVirtualAuthenticator`), on the hospital's
subdomain, through the API as a single-page app would call it (fetch, the browser's cookies, the CSRF header)."""

import json

import pytest
from django_tenants.utils import tenant_context

from accounts.models import Authenticator
from accounts.services import user_create_verified
from audit.models import AuditEvent
from tenants.services import hospital_host
from tests.support import PASSWORD, unique_email

pytestmark = pytest.mark.browser

# What a frontend does: JSON over fetch with the browser's cookies, the CSRF cookie echoed in a header.
POST = """
async function post(path, body) {
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1];
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/json", ...(csrf ? {"X-CSRFToken": csrf} : {})},
    body: JSON.stringify(body),
  });
  return {status: response.status, body: await response.json().catch(() => null)};
}
"""

REGISTER = (
    "async ({email, password}) => {"
    + POST
    + """
  const login = await post("/accounts/login/", {email, password});
  const begin = await post("/accounts/mfa/webauthn/", {});
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(begin.body.options);
  const credential = await navigator.credentials.create({publicKey});
  const confirmed = await post("/accounts/mfa/webauthn/confirm/", {
    registration_token: begin.body.registration_token, credential: credential.toJSON(), name: "Chromium",
  });
  return {login: login.status, begin: begin.status, confirmed: confirmed.status, body: confirmed.body};
}"""
)

LOG_IN = (
    "async ({email, password}) => {"
    + POST
    + """
  const first = await post("/accounts/login/", {email, password});
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(first.body.webauthn);
  const assertion = await navigator.credentials.get({publicKey});
  const done = await post("/accounts/login/mfa/", {mfa_token: first.body.mfa_token, webauthn: assertion.toJSON()});
  const me = await fetch("/accounts/user/", {credentials: "same-origin"});
  return {first: first.body, done: done.status, me: me.status, profile: await me.json()};
}"""
)

# The same credential asked for on another hospital's subdomain: the authenticator has none for that RP.
ELSEWHERE = """async ({options}) => {
  try {
    await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
    return "signed";
  } catch (error) {
    return error.name;
  }
}"""


def virtual_authenticator(page) -> tuple:
    """A platform authenticator with user verification that says yes by itself (no one to touch it)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def test_register_a_passkey_and_log_in_with_it(server_url, hospital_a, hospital_b, screenshots, browser_page):
    port = server_url.rsplit(":", 1)[1]
    origin = f"http://{hospital_host(hospital_a.slug)}:{port}"  # Chromium resolves *.localhost, a secure context
    other_origin = f"http://{hospital_host(hospital_b.slug)}:{port}"
    user = user_create_verified(hospital=hospital_a, email=unique_email("passkey"), password=PASSWORD)
    who = {"email": user.email, "password": PASSWORD}

    with browser_page("passkey") as page:
        page.goto(f"{origin}/accounts/user/")  # a page of the hospital's origin, for fetch and WebAuthn
        cdp, authenticator_id = virtual_authenticator(page)
        registered = page.evaluate(REGISTER, who)
        stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]

        page.context.clear_cookies()  # logged out: the next login is in two steps
        page.goto(f"{origin}/accounts/user/")
        logged_in = page.evaluate(LOG_IN, who)
        page.goto(f"{origin}/accounts/user/")
        screenshots.save(page, "passkey-logged-in")
        profile = json.loads(page.locator("body").inner_text())

        page.goto(f"{other_origin}/accounts/user/")
        # A bound on the browser's wait (its answer is NotAllowedError either way, at once or at the bound).
        options = {**logged_in["first"]["webauthn"], "rpId": hospital_host(hospital_b.slug), "timeout": 3000}
        elsewhere = page.evaluate(ELSEWHERE, {"options": options})

    assert (registered["login"], registered["begin"], registered["confirmed"]) == (200, 200, 201), registered
    assert registered["body"]["authenticator"]["name"] == "Chromium" and len(registered["body"]["recovery_codes"]) == 10
    [credential] = stored
    assert credential["rpId"] == hospital_host(hospital_a.slug) and credential["isResidentCredential"]
    assert logged_in["first"]["methods"] == ["webauthn", "recovery_code"]
    assert (logged_in["done"], logged_in["me"]) == (200, 200), logged_in
    assert logged_in["profile"]["email"] == profile["email"] == user.email
    assert elsewhere == "NotAllowedError"  # hospital B's subdomain gets nothing from A's passkey

    passkey = Authenticator.objects.get(user=user, type="webauthn")
    assert passkey.sign_count == credential["signCount"] + 1 or passkey.sign_count == 0
    with tenant_context(hospital_a):
        actions = set(AuditEvent.objects.filter(target_id=str(user.pk)).values_list("action", flat=True))
    assert {AuditEvent.Action.MFA_ENROLLED, AuditEvent.Action.LOGIN_SUCCEEDED} <= actions
