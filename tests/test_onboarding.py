"""The platform onboards hospitals; hospital admins invite staff; invitation links work once, at one hospital."""

import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from staff.models import Invitation, StaffMember
from tenants.models import Hospital
from tests.support import PASSWORD, link_in, unique_email

_slugs = iter(range(1, 10_000))


def new_slug(prefix: str = "h") -> str:
    return f"{prefix}{next(_slugs)}-{unique_email('x').split('-')[1].split('@')[0]}"


def onboard(platform_api, slug, admin_email, name="Onboarded General"):
    return platform_api.post(
        "/api/platform/hospitals/",
        json={"name": name, "slug": slug, "admin_email": admin_email, "admin_first_name": "Ada"},
    )


def accept(api, token, password=PASSWORD, **names):
    return api.post("/accounts/invitations/accept/", json={"token": token, "password": password, **names})


def invitation_token(mail_sink, email, hospital_slug, count=1):
    mail = mail_sink.wait_for(email, count=count)[-1]
    return link_in(mail, rf"http://{hospital_slug}\.localhost:8000/accounts/invitations/accept/([^/\s]+)/").group(1)


def test_onboarding_walkthrough(platform_api, api_for, api_a, mail_sink):
    slug, admin_email, nurse_email = new_slug("walk"), unique_email("admin"), unique_email("nurse")

    response = onboard(platform_api, slug, admin_email)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "slug": slug,
        "name": "Onboarded General",
        "domain": f"{slug}.localhost",
        "is_active": True,
        "created": response.json()["created"],
        "session_idle_minutes": None,  # no session limits: as long as the refresh token (tests/test_sessions.py)
        "session_max_minutes": None,
    }
    hospital = Hospital.objects.get(slug=slug)
    api = api_for(hospital)

    # The admin's invitation arrives, named for the hospital, linking to its subdomain.
    mail = mail_sink.wait_for(admin_email)[0]
    assert "Onboarded General" in mail.subject and "hospital admin" in mail.text
    token = invitation_token(mail_sink, admin_email, slug)
    response = accept(api, token, first_name="Ada", last_name="Admin")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["hospital"] == slug and body["user"]["name"] == "Ada Admin"
    assert api.cookie("hospital-refresh")

    # The new admin invites a nurse.
    response = api.post("/api/invitations/", json={"email": nurse_email, "role": "nurse"})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending" and response.json()["invited_by"] == admin_email
    nurse_token = invitation_token(mail_sink, nurse_email, slug)
    nurse_api = api_for(hospital)
    assert accept(nurse_api, nurse_token, first_name="Nia").status_code == 200
    with tenant_context(hospital):
        assert StaffMember.objects.get(user__email=nurse_email).role == "nurse"

    # The nurse logs in on that subdomain only.
    api_for(hospital).login(nurse_email)
    assert api_a.post("/accounts/login/", json={"email": nurse_email, "password": PASSWORD}).status_code == 400
    assert api_for(None).post("/accounts/login/", json={"email": nurse_email, "password": PASSWORD}).status_code == 400
    # Nurses do not invite.
    assert nurse_api.post("/api/invitations/", json={"email": unique_email(), "role": "nurse"}).status_code == 403
    listed = api.get("/api/invitations/").json()
    assert [i["status"] for i in listed["results"]] == ["accepted", "accepted"]


def test_invitation_tokens_fail_clearly_when_reused_expired_revoked_or_elsewhere(
    api_for, hospital_a, hospital_b, mail_sink
):
    admin = hospital_admin_api(api_for, hospital_a)
    tokens = {}
    for case in ("reused", "expired", "revoked", "elsewhere"):
        email = unique_email(case)
        response = admin.post("/api/invitations/", json={"email": email, "role": "doctor"})
        assert response.status_code == 201, response.text
        tokens[case] = (response.json()["id"], invitation_token(mail_sink, email, hospital_a.slug))
    api_a, api_b = api_for(hospital_a), api_for(hospital_b)

    assert accept(api_a, tokens["reused"][1]).status_code == 200
    assert_error(accept(api_a, tokens["reused"][1]), "invitation_used")

    with tenant_context(hospital_a):
        Invitation.objects.filter(pk=tokens["expired"][0]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(accept(api_a, tokens["expired"][1]), "invitation_expired")

    assert admin.delete(f"/api/invitations/{tokens['revoked'][0]}/").status_code == 204
    assert_error(accept(api_a, tokens["revoked"][1]), "invitation_revoked")

    assert_error(accept(api_b, tokens["elsewhere"][1]), "invitation_invalid")
    assert_error(accept(api_a, "not-a-real-token"), "invitation_invalid")
    assert accept(api_a, tokens["elsewhere"][1]).status_code == 200  # still good at home


def test_invitation_input_is_checked(api_for, hospital_a):
    admin = hospital_admin_api(api_for, hospital_a)
    member = user_create_verified(hospital=hospital_a, email=unique_email("member"), password=PASSWORD)
    assert_error(admin.post("/api/invitations/", json={"email": "nope", "role": "nurse"}), "invalid")
    assert_error(admin.post("/api/invitations/", json={"email": unique_email(), "role": "surgeon-general"}), "invalid")
    assert_error(admin.post("/api/invitations/", json={"email": member.email, "role": "nurse"}), "email_taken")
    assert admin.delete("/api/invitations/999999/").status_code == 404
    assert_error(
        admin.post("/api/invitations/", data=b"{", headers={"Content-Type": "application/json"}), "parse_error"
    )
    weak = admin.post("/api/invitations/", json={"email": unique_email("weak"), "role": "nurse"})
    assert weak.status_code == 201
    # Without credentials: 401.
    assert api_for(hospital_a).get("/api/invitations/").status_code == 401
    assert admin.delete(f"/api/invitations/{weak.json()['id']}/").status_code == 204


def test_accepted_invitation_cannot_be_revoked(api_for, hospital_a, mail_sink):
    admin = hospital_admin_api(api_for, hospital_a)
    email = unique_email("keep")
    invitation_id = admin.post("/api/invitations/", json={"email": email, "role": "nurse"}).json()["id"]
    assert accept(api_for(hospital_a), invitation_token(mail_sink, email, hospital_a.slug)).status_code == 200
    assert_error(admin.delete(f"/api/invitations/{invitation_id}/"), "invitation_accepted")


def test_weak_password_on_accept_is_refused_and_the_invitation_stays_usable(api_for, hospital_a, mail_sink):
    admin = hospital_admin_api(api_for, hospital_a)
    email = unique_email("weakpw")
    admin.post("/api/invitations/", json={"email": email, "role": "receptionist"})
    token = invitation_token(mail_sink, email, hospital_a.slug)
    assert_error(accept(api_for(hospital_a), token, password="123"), "password_invalid")
    assert accept(api_for(hospital_a), token).status_code == 200


def test_platform_api_is_for_platform_staff_only(api_for, api_a, user_a, platform_user):
    hospital_token = api_a.login(user_a.email).json()["access"]
    platform = api_for(None)
    assert platform.get("/api/platform/hospitals/").status_code == 401
    assert platform.get("/api/platform/hospitals/", token=hospital_token).status_code == 401
    # And the platform API does not exist on a hospital's subdomain.
    platform_token = api_for(None).login(platform_user.email).json()["access"]
    assert api_a.get("/api/platform/hospitals/", token=platform_token).status_code in (401, 404)


def test_listing_searching_and_renaming(platform_api, hospital_a, hospital_b):
    listed = platform_api.get("/api/platform/hospitals/?search=alpha").json()
    assert [h["slug"] for h in listed["results"]] == ["alpha"]
    everything = platform_api.get("/api/platform/hospitals/?page_size=1").json()
    assert everything["count"] >= 2 and len(everything["results"]) == 1 and everything["next"]
    assert "public" not in [h["slug"] for h in platform_api.get("/api/platform/hospitals/").json()["results"]]
    slug = new_slug("rename")
    assert onboard(platform_api, slug, unique_email()).status_code == 201
    response = platform_api.patch(f"/api/platform/hospitals/{slug}/", json={"name": "Renamed", "slug": "evil"})
    assert response.status_code == 200 and response.json()["name"] == "Renamed" and response.json()["slug"] == slug
    assert platform_api.get("/api/platform/hospitals/no-such/").status_code == 404


@pytest.mark.parametrize(
    "slug, code",
    [
        ("www", "slug_reserved"),
        ("admin", "slug_reserved"),
        ("api", "slug_reserved"),
        ("public", "slug_reserved"),
        ("Not Valid", "slug_invalid"),
        ("a_b", "slug_invalid"),
        ("ends-", "slug_invalid"),
    ],
)
def test_bad_slugs_are_clear_400s(platform_api, slug, code):
    assert_error(onboard(platform_api, slug, unique_email()), code)


def test_bad_onboarding_input_is_a_clear_400(platform_api):
    assert_error(platform_api.post("/api/platform/hospitals/", json={"slug": new_slug()}), "invalid")
    assert_error(onboard(platform_api, new_slug(), "not-an-email"), "invalid")
    assert_error(onboard(platform_api, new_slug(), "admin\u0430@example.org"), "invalid")  # Cyrillic а
    assert_error(onboard(platform_api, "alpha", unique_email()), "slug_taken")


def test_two_concurrent_creations_of_one_slug_give_one_hospital(platform_api, platform_user, api_for):
    slug = new_slug("race")
    apis = [platform_api, api_for(None)]
    apis[1].login(platform_user.email)
    results = [None, None]

    def create(i):
        results[i] = onboard(apis[i], slug, unique_email(f"race{i}"))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [201, 400], [r.text for r in results]
    assert [r for r in results if r.status_code == 400][0].json()["code"] == "slug_taken", [r.text for r in results]
    assert Hospital.objects.filter(slug=slug).count() == 1


def test_suspension_blocks_everything_and_reactivation_restores_it(platform_api, api_for):
    slug, admin_email = new_slug("susp"), unique_email("susp")
    platform_api.post("/api/platform/hospitals/", json={"name": "S", "slug": slug, "admin_email": admin_email})
    hospital = Hospital.objects.get(slug=slug)
    from accounts.services import user_create_verified

    staff = user_create_verified(hospital=hospital, email=unique_email("staff"), password=PASSWORD)
    api = api_for(hospital)
    access = api.login(staff.email).json()["access"]

    assert platform_api.post(f"/api/platform/hospitals/{slug}/suspend/").json()["is_active"] is False
    for response in (
        api.get("/accounts/user/", token=access),
        api.get("/accounts/user/"),
        api.post("/accounts/login/", json={"email": staff.email, "password": PASSWORD}),
        api.post("/accounts/token/refresh/"),
        api.get("/nothing-here/"),
    ):
        assert_error(response, "hospital_suspended", status=403)

    assert platform_api.post(f"/api/platform/hospitals/{slug}/reactivate/").json()["is_active"] is True
    assert api.get("/accounts/user/", token=access).json()["email"] == staff.email  # no data lost


def test_purge_asks_for_confirmation_and_only_takes_suspended_hospitals(platform_api, api_for, monkeypatch):
    slug = new_slug("purge")
    onboard(platform_api, slug, unique_email("purge"))
    hospital = Hospital.objects.get(slug=slug)
    with pytest.raises(CommandError, match="Suspend"):
        call_command("purge_hospital", slug, "--noinput")
    platform_api.post(f"/api/platform/hospitals/{slug}/suspend/")
    monkeypatch.setattr("builtins.input", lambda prompt: "wrong")
    with pytest.raises(CommandError, match="Not confirmed"):
        call_command("purge_hospital", slug)
    assert Hospital.objects.filter(slug=slug).exists()
    monkeypatch.setattr("builtins.input", lambda prompt: slug)
    call_command("purge_hospital", slug)
    assert not Hospital.objects.filter(slug=slug).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [hospital.schema_name])
        assert cursor.fetchone() is None
    assert_error(api_for(host=f"{slug}.localhost").get("/accounts/user/"), "unknown_host", status=404)


def hospital_admin_api(api_for, hospital):
    """A client logged in as a fresh hospital admin of `hospital`."""
    from accounts.services import user_create_verified
    from staff.services import staff_member_create

    admin = user_create_verified(hospital=hospital, email=unique_email("hadmin"), password=PASSWORD)
    with tenant_context(hospital):
        staff_member_create(user=admin, role=StaffMember.Role.HOSPITAL_ADMIN)
    api = api_for(hospital)
    api.login(admin.email)
    return api


def assert_error(response, code, status=400):
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.json()


def test_django_admin_onboards_through_the_same_service(api_for, platform_user, mail_sink):
    """The admin's add form on the platform domain creates schema, domain and invitation like the API."""
    browser = api_for(None)
    response = browser.admin_login(platform_user.email)
    assert response.status_code == 302, response.text[:500]
    slug, admin_email = new_slug("viaadmin"), unique_email("viaadmin")
    browser.get("/admin/tenants/hospital/add/")
    response = browser.post(
        "/admin/tenants/hospital/add/",
        data={
            "name": "Admin Made",
            "slug": slug,
            "admin_email": admin_email,
            "admin_first_name": "",
            "admin_last_name": "",
            "csrfmiddlewaretoken": browser.cookie("csrftoken"),
        },
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:2000]
    hospital = Hospital.objects.get(slug=slug)
    assert hospital.domains.get().domain == f"{slug}.localhost"
    invitation_token(mail_sink, admin_email, slug)
    # A reserved slug is refused on the form, with nothing created.
    response = browser.post(
        "/admin/tenants/hospital/add/",
        data={
            "name": "Nope",
            "slug": "www",
            "admin_email": unique_email(),
            "csrfmiddlewaretoken": browser.cookie("csrftoken"),
        },
        allow_redirects=False,
    )
    assert response.status_code == 200 and "reserved" in response.text
