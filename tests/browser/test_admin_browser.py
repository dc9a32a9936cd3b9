"""Platform staff run hospitals from the Django admin in a real browser: log in, onboard, suspend, reactivate."""

import re
import uuid

import pytest
from django.conf import settings
from playwright.sync_api import expect

from audit.models import AuditEvent
from tenants.models import Hospital
from tenants.services import hospital_host
from tests.support import PASSWORD, Api, link_in, unique_email

pytestmark = pytest.mark.browser


def run_action(page, row, action: str) -> None:
    """Tick the row, pick the action, press Go: the admin's own way of acting on a selection."""
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def test_platform_staff_onboard_suspend_and_reactivate_a_hospital_in_the_admin(
    server_url, platform_user, mail_sink, screenshots, browser_page
):
    slug, admin_email = f"browser-{uuid.uuid4().hex[:8]}", unique_email("chief")
    host = hospital_host(slug)
    port = server_url.rsplit(":", 1)[1]
    admin_url = f"http://{settings.BASE_DOMAIN}:{port}/admin"  # Chromium resolves localhost and *.localhost
    hospital_api = Api(server_url, host)

    with browser_page("admin") as page:
        # Logging in through the real login form.
        page.goto(f"{admin_url}/")
        expect(page).to_have_url(re.compile(r"/admin/login/"))
        page.fill("#id_username", platform_user.email)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#site-name")).to_be_visible()

        # Onboarding from the add form: the service creates the schema and domain and invites the admin.
        page.goto(f"{admin_url}/tenants/hospital/add/")
        page.fill("#id_name", "Browser General")
        page.fill("#id_slug", slug)
        page.fill("#id_admin_email", admin_email)
        page.fill("#id_admin_first_name", "Bea")
        page.click("input[name=_save]")
        messages = page.locator(".messagelist")
        expect(messages).to_contain_text(f"An invitation to {host} has been emailed to {admin_email}.")
        row = page.locator("#result_list tbody tr", has_text=host)
        expect(row).to_contain_text("Browser General")
        expect(row).to_contain_text("Active")
        screenshots.save(page, "1-onboarded")

        # Suspending with the action; the subdomain then refuses everything, the invitation included.
        page.fill("#searchbar", slug)
        page.press("#searchbar", "Enter")
        run_action(page, row, "suspend")
        expect(messages).to_contain_text("Suspended: Browser General.")
        expect(row).to_contain_text("Suspended")
        screenshots.save(page, "2-suspended")
        token = link_in(mail_sink.wait_for(admin_email)[0], r"/accounts/invitations/accept/([^/\s]+)/").group(1)
        accept = {"token": token, "password": PASSWORD}
        response = hospital_api.post("/accounts/invitations/accept/", json=accept)
        assert response.status_code == 403 and response.json()["code"] == "hospital_suspended", response.text
        assert page.goto(f"http://{host}:{port}/accounts/user/").status == 403

        # Reactivating: the subdomain answers again and the invitation still works.
        page.goto(f"{admin_url}/tenants/hospital/?q={slug}")
        run_action(page, row, "reactivate")
        expect(messages).to_contain_text("Reactivated: Browser General.")
        expect(row).to_contain_text("Active")
        screenshots.save(page, "3-reactivated")
        response = hospital_api.post("/accounts/invitations/accept/", json=accept)
        assert response.status_code == 200 and response.json()["user"]["hospital"] == slug, response.text

    # The platform's audit trail names the staff member who did each step in the admin.
    hospital = Hospital.objects.get(slug=slug)
    events = AuditEvent.objects.filter(target_type="tenants.hospital", target_id=str(hospital.pk))
    assert sorted(events.values_list("action", "actor_email")) == [
        ("hospital_onboarded", platform_user.email),
        ("hospital_reactivated", platform_user.email),
        ("hospital_suspended", platform_user.email),
    ]
