"""The Django admin on the platform domain runs hospitals through tenants.services, like the platform API.

tests/browser/ drives the same pages in Chromium; these tests are the HTTP-level checks that run everywhere.
"""

import uuid

import pytest

from audit.models import AuditEvent
from tenants.models import Hospital
from tenants.services import hospital_create
from tests.support import PASSWORD, unique_email

CHANGELIST = "/admin/tenants/hospital/"


@pytest.fixture
def admin_client(api_for, platform_user):
    """The platform domain's admin, logged in through its login form as platform staff."""
    client = api_for(None)
    response = client.admin_login(platform_user.email)
    assert response.status_code == 302, response.text[:500]
    return client


@pytest.fixture
def hospital(db_access):
    slug = f"adm-{uuid.uuid4().hex[:8]}"
    return hospital_create(
        name=f"Admin Test {slug}", slug=slug, admin_email=unique_email("adm"), admin_password=PASSWORD
    )


def run_action(client, action, *hospitals):
    return client.post(
        CHANGELIST,
        data={
            "action": action,
            "_selected_action": [h.pk for h in hospitals],
            "index": "0",
            "csrfmiddlewaretoken": client.cookie("csrftoken"),
        },
    )


def test_changelist_shows_host_and_status_and_searches(admin_client, hospital, hospital_a):
    page = admin_client.get(CHANGELIST, params={"q": hospital.slug}).text
    assert hospital.name in page and f"{hospital.slug}.localhost" in page and "Active" in page
    assert hospital_a.name not in page
    suspended = admin_client.get(CHANGELIST, params={"status": "suspended"}).text
    assert hospital.name not in suspended


def test_suspend_and_reactivate_actions_go_through_the_services(
    admin_client, api_for, hospital, hospital_a, platform_user
):
    page = run_action(admin_client, "suspend", hospital).text
    assert f"Suspended: {hospital.name}." in page
    hospital.refresh_from_db()
    assert not hospital.is_active
    response = api_for(hospital).get("/accounts/user/")
    assert response.status_code == 403 and response.json()["code"] == "hospital_suspended"
    # Suspending again changes nothing and says so; hospital A, untouched, stays up.
    page = run_action(admin_client, "suspend", hospital).text
    assert f"Already suspended, left as they were: {hospital.name}." in page
    hospital_a.refresh_from_db()
    assert hospital_a.is_active

    page = run_action(admin_client, "reactivate", hospital, hospital_a).text
    assert f"Reactivated: {hospital.name}." in page and f"Already active, left as they were: {hospital_a.name}" in page
    assert api_for(hospital).get("/accounts/user/").status_code == 401  # answering again: asks for a login
    events = AuditEvent.objects.filter(
        target_type="tenants.hospital",
        target_id=str(hospital.pk),
        action__in=["hospital_suspended", "hospital_reactivated"],
    )
    assert sorted(events.values_list("action", "actor_email")) == [
        ("hospital_reactivated", platform_user.email),
        ("hospital_suspended", platform_user.email),
    ]


def test_change_form_renames_only(admin_client, hospital):
    url = f"{CHANGELIST}{hospital.pk}/change/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url,
        data={
            "name": "Renamed In Admin",
            "slug": "evil",
            "schema_name": "public",
            "is_active": "",
            "_save": "Save",
            "csrfmiddlewaretoken": admin_client.cookie("csrftoken"),
        },
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:2000]
    renamed = Hospital.objects.get(pk=hospital.pk)
    assert (renamed.name, renamed.slug, renamed.schema_name, renamed.is_active) == (
        "Renamed In Admin",
        hospital.slug,
        hospital.schema_name,
        True,
    )
    # Nothing is deleted from here (purge_hospital does that), and the platform's own row is not listed.
    assert admin_client.get(f"{CHANGELIST}{hospital.pk}/delete/").status_code == 403
    platform = Hospital.objects.get(schema_name="public")
    assert admin_client.get(f"{CHANGELIST}{platform.pk}/change/", allow_redirects=False).status_code == 302


def test_add_form_takes_an_address_that_has_an_account_at_another_hospital(admin_client, user_a):
    """A new hospital is a new realm: no address is taken in it, and the form says nothing of other hospitals."""
    slug = f"adm-{uuid.uuid4().hex[:8]}"
    response = admin_client.post(
        f"{CHANGELIST}add/",
        data={
            "name": "Second Home",
            "slug": slug,
            "admin_email": user_a.email.upper(),
            "csrfmiddlewaretoken": admin_client.cookie("csrftoken"),
        },
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]
    hospital = Hospital.objects.get(slug=slug)
    assert hospital.users.get().email == user_a.email  # the invited admin: canonical, and a second account


def test_a_refusal_of_the_service_after_the_form_passed_is_a_message_not_a_500(admin_client, hospital_a, monkeypatch):
    """As when a concurrent onboarding takes the slug between the form's check and the service."""
    from tenants.admin import HospitalOnboardForm

    monkeypatch.setattr(HospitalOnboardForm, "clean_slug", lambda form: form.cleaned_data["slug"])
    response = admin_client.post(
        f"{CHANGELIST}add/",
        data={
            "name": "Raced",
            "slug": hospital_a.slug,
            "admin_email": f"raced-{uuid.uuid4().hex[:8]}@example.org",
            "csrfmiddlewaretoken": admin_client.cookie("csrftoken"),
        },
    )
    assert response.status_code == 200 and response.url.endswith(f"{CHANGELIST}add/")
    assert "already exists" in response.text and "Raced" not in admin_client.get(CHANGELIST).text


def test_the_email_outbox_is_read_only_in_the_admin(admin_client):
    assert admin_client.get("/admin/emails/email/").status_code == 200
    assert admin_client.get("/admin/emails/email/add/").status_code == 403


def test_the_admin_offers_no_social_login_setup(admin_client):
    index = admin_client.get("/admin/").text
    assert "Hospitals" in index and "Social applications" not in index
