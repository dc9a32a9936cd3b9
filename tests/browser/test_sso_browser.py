"""A hospital's staff member signs in through the hospital's IdP in a real browser: the IdP's own login page
(panva's oidc-provider, devtools/idp/), then back to the hospital with the login's cookies."""

import json
import re

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from accounts.models import User
from accounts.services import user_create_verified
from sso.models import Identity, IdentityProvider
from staff.models import StaffMember
from staff.services import staff_member_create
from tenants.services import hospital_host
from tests.processes import OpenIdProvider
from tests.support import PASSWORD, Api, unique_email

pytestmark = pytest.mark.browser


def test_staff_sign_in_through_the_idp_login_page(server_url, hospital_a, screenshots, browser_page, settings):
    port = server_url.rsplit(":", 1)[1]
    origin = f"http://{hospital_host(hospital_a.slug)}:{port}"  # Chromium resolves *.localhost
    idp = OpenIdProvider(
        clients=[
            {
                "client_id": "alpha-web",
                "client_secret": "alpha-web-secret-0123456789",
                "redirect_uris": [f"{origin}/accounts/sso/callback/"],
            }
        ]
    )
    idp.start()
    try:
        # The frontend is the API's profile endpoint here: the redirect's end shows who is signed in.
        settings.FRONTEND_URL = f"http://{{slug}}.{{base_domain}}:{port}/accounts/user"
        admin = user_create_verified(hospital=hospital_a, email=unique_email("admin"), password=PASSWORD)
        with tenant_context(hospital_a):
            staff_member_create(user=admin, role=StaffMember.Role.HOSPITAL_ADMIN)
        api = Api(server_url, hospital_host(hospital_a.slug))
        api.login(admin.email)
        configured = api.put(
            "/api/sso/provider/",
            json={
                "issuer": idp.issuer,
                "client_id": "alpha-web",
                "client_secret": "alpha-web-secret-0123456789",
                "allowed_domains": ["alpha.example"],
                "first_sign_in": "jit",
                "default_role": "nurse",
            },
        )
        assert configured.status_code == 200, configured.text
        email = unique_email("browser", domain="alpha.example")

        with browser_page("sso") as page:
            page.goto(f"{origin}/accounts/sso/start/")
            expect(page).to_have_url(re.compile(re.escape(idp.issuer) + r"/interaction/"))
            page.fill("input[name=login]", email)
            page.fill("input[name=password]", "whatever the IdP asks")
            screenshots.save(page, "sso-1-idp-login")
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{origin}/accounts/user/")
            body = json.loads(page.locator("body").inner_text())
            screenshots.save(page, "sso-2-signed-in")
            # As sent to the SSO paths: the refresh cookie (path /accounts/) and the state cookie included.
            cookies = {cookie["name"]: cookie for cookie in page.context.cookies(f"{origin}/accounts/sso/")}
        assert body["email"] == email and body["hospital"] == hospital_a.slug
        assert cookies["hospital-access"]["httpOnly"] and cookies["hospital-refresh"]["httpOnly"]
        assert "csrftoken" in cookies and "hospital-sso-state" not in cookies
        user = User.objects.get(email=email, hospital=hospital_a)
        with tenant_context(hospital_a):
            assert Identity.objects.filter(user=user).exists()
            assert StaffMember.objects.get(user=user).role == "nurse"
    finally:
        idp.stop()
        with tenant_context(hospital_a):
            IdentityProvider.objects.all().delete()
