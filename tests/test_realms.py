"""A hospital is a realm: the same address at two hospitals is two accounts, and nothing of one shows at the other.

Also here: the one canonical form of an address (every spelling is the same
address everywhere: lookups, lockout, mail limits), the atomic login attempt
budget under parallel bursts, and platform staff made by `createsuperuser`.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import requests
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.services import registrations_expired_purge, user_create_verified
from audit.models import AuditEvent
from tests.conftest import database_url_of
from tests.processes import REPO, wait_until
from tests.support import ANSWER_TIMEOUT, PASSWORD, Api, link_in, unique_email
from tests.test_abuse import WRONG, assert_locked, assert_throttled, from_address, login
from tests.test_onboarding import accept, hospital_admin_api, new_slug, onboard

User = get_user_model()
PASSWORD_A, PASSWORD_B = "alpha-Only-passw0rd", "beta-Only-passw0rd"


def invite(admin: Api, email: str, role: str = "nurse") -> requests.Response:
    return admin.post("/api/invitations/", json={"email": email, "role": role})


def links_to(mail_sink, email: str, pattern: str) -> set[tuple[str, ...]]:
    """The groups of `pattern` in every mail `email` has received so far."""
    return {match.groups() for mail in mail_sink.to(email) if (match := re.search(pattern, mail.text))}


def new_link(mail_sink, email: str, pattern: str, before: set) -> tuple[str, ...]:
    """Waits for a mail to `email` with a link matching `pattern` that was not in `before`; its groups.

    Other mails to the same inbox (from other hospitals, notices) may arrive in any order meanwhile.
    """
    wait_until(
        lambda: links_to(mail_sink, email, pattern) - before,
        ANSWER_TIMEOUT,
        lambda: f"no new link matching {pattern!r} reached {email}",
    )
    return (links_to(mail_sink, email, pattern) - before).pop()


def join_by_invitation(api_for, hospital, email, mail_sink, password) -> User:
    pattern = rf"http://{hospital.slug}\.localhost:8000/accounts/invitations/accept/([^/\s]+)/"
    before = links_to(mail_sink, email, pattern)
    assert invite(hospital_admin_api(api_for, hospital), email).status_code == 201
    (token,) = new_link(mail_sink, email, pattern, before)
    response = accept(api_for(hospital), token, password=password)
    assert response.status_code == 200, response.text
    return User.objects.get(email=email, hospital=hospital)


def register(api: Api, email: str, password: str = PASSWORD) -> requests.Response:
    return api.post("/accounts/registration/", json={"email": email, "password1": password, "password2": password})


# --- One address, two hospitals ----------------------------------------------------------------


def test_the_same_address_invited_at_two_hospitals_is_two_independent_accounts(
    api_for, hospital_a, hospital_b, mail_sink
):
    email = unique_email("twohomes")
    at_a = join_by_invitation(api_for, hospital_a, email, mail_sink, PASSWORD_A)
    at_b = join_by_invitation(api_for, hospital_b, email, mail_sink, PASSWORD_B)
    assert at_a.pk != at_b.pk and User.objects.filter(email=email).count() == 2

    # Each logs in with its own password, at its own hospital only.
    api_a, api_b = api_for(hospital_a), api_for(hospital_b)
    assert login(api_a, email, PASSWORD_B).status_code == 400
    assert login(api_b, email, PASSWORD_A).status_code == 400
    assert api_a.login(email, PASSWORD_A).json()["user"]["hospital"] == hospital_a.slug
    assert api_b.login(email, PASSWORD_B).json()["user"]["hospital"] == hospital_b.slug

    # A lockout at A leaves B alone.
    guesser = from_address(api_for(hospital_a), "127.0.5.1")
    assert [login(guesser, email, WRONG).status_code for _ in range(settings.LOGIN_FAILURE_LIMIT)] == [
        400
    ] * settings.LOGIN_FAILURE_LIMIT
    assert_locked(login(guesser, email, PASSWORD_A))
    assert login(from_address(api_for(hospital_b), "127.0.5.1"), email, PASSWORD_B).status_code == 200

    # A password change at A ends A's sessions only; B's refresh token still rotates.
    changed = api_a.post(
        "/accounts/password/change/",
        json={
            "old_password": PASSWORD_A,
            "new_password1": "alpha-Changed-passw0rd",
            "new_password2": "alpha-Changed-passw0rd",
        },
    )
    assert changed.status_code == 200, changed.text
    assert api_a.post("/accounts/token/refresh/").status_code == 401
    assert api_b.post("/accounts/token/refresh/").status_code == 200
    assert login(api_for(hospital_b), email, PASSWORD_B).status_code == 200

    # A reset asked at B reaches the inbox with B's link, and changes B's password only.
    pattern = rf"http://{hospital_b.slug}\.localhost:8000/accounts/password/reset/confirm/([^/\s]+)/([^/\s]+)/"
    before = links_to(mail_sink, email, pattern)
    assert api_b.post("/accounts/password/reset/", json={"email": email}).status_code == 200
    uid, token = new_link(mail_sink, email, pattern, before)
    reset = api_b.post(
        "/accounts/password/reset/confirm/",
        json={
            "uid": uid,
            "token": token,
            "new_password1": "beta-Reset-passw0rd",
            "new_password2": "beta-Reset-passw0rd",
        },
    )
    assert reset.status_code == 200, reset.text
    # B's link does nothing at A (A's account has another uid anyway).
    assert (
        api_a.post(
            "/accounts/password/reset/confirm/",
            json={
                "uid": uid,
                "token": token,
                "new_password1": "x-Reset-passw0rd1",
                "new_password2": "x-Reset-passw0rd1",
            },
        ).status_code
        == 400
    )
    assert login(api_for(hospital_b), email, "beta-Reset-passw0rd").status_code == 200
    assert login(api_for(hospital_a), email, "alpha-Changed-passw0rd").status_code == 200


def test_registration_verification_and_resend_with_the_address_at_another_hospital(
    api_for, hospital_a, hospital_b, mail_sink
):
    email = unique_email("regtwice")
    user_create_verified(hospital=hospital_a, email=email, password=PASSWORD_A)
    api_b = api_for(hospital_b)
    assert register(api_b, email, PASSWORD_B).status_code == 201
    # B sends a verification (not "you already have an account"): A's account is another realm.
    mail = mail_sink.wait_for(email)[-1]
    key = link_in(
        mail,
        rf"http://{hospital_b.slug}\.localhost:8000/accounts/registration/"
        r"account-confirm-email/([^/\s]+)/",
    ).group(1)
    assert api_b.post("/accounts/registration/resend-email/", json={"email": email.upper()}).status_code == 200
    mail_sink.wait_for(email, count=2)
    assert api_b.post("/accounts/registration/verify-email/", json={"key": key}).status_code == 200
    assert EmailAddress.objects.filter(email=email, verified=True).count() == 2
    assert login(api_b, email, PASSWORD_B).status_code == 200
    assert login(api_for(hospital_a), email, PASSWORD_A).status_code == 200
    # Registering again at B: nothing new, the owner is told instead.
    assert register(api_b, email).status_code == 201
    assert "already" in mail_sink.wait_for(email, count=3)[-1].text.lower()
    assert User.objects.filter(email=email).count() == 2


def test_platform_staff_and_hospital_staff_may_share_an_address(api_for, hospital_a):
    email = unique_email("sameperson")
    user_create_verified(hospital=hospital_a, email=email, password=PASSWORD_A)
    user_create_verified(hospital=None, email=email, password=PASSWORD_B)
    assert api_for(None).login(email, PASSWORD_B).json()["user"]["hospital"] is None
    assert login(api_for(None), email, PASSWORD_A).status_code == 400
    assert api_for(hospital_a).login(email, PASSWORD_A).json()["user"]["hospital"] == hospital_a.slug
    admin = api_for(None)
    assert admin.admin_login(email, PASSWORD_B).status_code == 302
    assert api_for(None).admin_login(email, PASSWORD_A).status_code == 200  # the form again


# --- Nothing of another hospital shows (findings 4 and 9) ---------------------------------------


def test_an_invitation_tells_nothing_of_accounts_at_other_hospitals(api_for, hospital_a, user_b, platform_user):
    admin = hospital_admin_api(api_for, hospital_a)
    answers = [invite(admin, email) for email in (user_b.email, platform_user.email, unique_email("fresh"))]
    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    assert len({tuple(sorted(a.json())) for a in answers}) == 1
    # Within A, an active account of A is what "taken" means.
    colleague = user_create_verified(hospital=hospital_a, email=unique_email("colleague"), password=PASSWORD)
    taken = invite(admin, colleague.email.upper())
    assert taken.status_code == 400 and taken.json()["code"] == "email_taken"


def test_an_anonymous_registration_squats_nothing(api_for, hospital_a, hospital_b, platform_api, mail_sink):
    email = unique_email("squatted")
    assert register(api_for(hospital_b), email, "squatter-Passw0rd-1").status_code == 201
    # Not at another hospital, not at onboarding...
    assert invite(hospital_admin_api(api_for, hospital_a), email).status_code == 201
    onboarded = onboard(platform_api, new_slug("squat"), email)
    assert onboarded.status_code == 201, onboarded.text
    # ...and at the same hospital an invitation takes the never-verified registration over.
    owner = join_by_invitation(api_for, hospital_b, email, mail_sink, PASSWORD_B)
    assert User.objects.filter(email=email, hospital=hospital_b).count() == 1
    assert login(api_for(hospital_b), email, "squatter-Passw0rd-1").status_code == 400
    assert api_for(hospital_b).login(email, PASSWORD_B).json()["user"]["pk"] == owner.pk


def test_an_unverified_registration_expires_after_the_verification_window(api_for, hospital_a, mail_sink):
    window = timedelta(days=settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS, hours=1)
    api = api_for(hospital_a)
    stale, purged, verified = unique_email("stale"), unique_email("purged"), unique_email("kept")
    for email in (stale, purged):
        assert register(api, email, "squatter-Passw0rd-1").status_code == 201
    kept = user_create_verified(hospital=hospital_a, email=verified, password=PASSWORD)
    User.objects.filter(email__in=[stale, purged, verified]).update(date_joined=timezone.now() - window)
    invited = invite(hospital_admin_api(api_for, hospital_a), unique_email("pending"))
    assert invited.status_code == 201
    pending = User.objects.get(email=invited.json()["email"])
    User.objects.filter(pk=pending.pk).update(date_joined=timezone.now() - window)

    # Registering an expired registration's address again replaces it.
    old = User.objects.get(email=stale, hospital=hospital_a)
    assert register(api, stale, PASSWORD_A).status_code == 201
    new = User.objects.get(email=stale, hospital=hospital_a)
    assert new.pk != old.pk and new.check_password(PASSWORD_A)

    # The daily purge frees the rest; verified and invited accounts stay.
    assert registrations_expired_purge() >= 1
    assert not User.objects.filter(email=purged).exists()
    assert User.objects.filter(pk__in=[kept.pk, pending.pk, new.pk]).count() == 3


# --- createsuperuser (issue 10) -------------------------------------------------------------------


def _manage_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_of(connections["default"].settings_dict),
    }


def _interactive(argv: list[str], answers: list[tuple[str, str]], env: dict[str, str]) -> str:
    """Runs a command on a pseudo-terminal (getpass reads the tty), answering each prompt in turn."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, *argv], env)
    output, answered = b"", 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if answered < len(answers) and output.rstrip().endswith(answers[answered][0].encode()):
                os.write(fd, answers[answered][1].encode() + b"\n")
                answered += 1
        else:
            raise AssertionError(f"createsuperuser did not finish:\n{output.decode(errors='replace')}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


@pytest.mark.parametrize("interactive", [False, True], ids=["noinput", "interactive"])
def test_createsuperuser_makes_platform_staff_who_can_log_in_at_once(api_for, hospital_a, interactive):
    email = unique_email("operator")
    # The same address already has an account at a hospital: another realm, no obstacle.
    user_create_verified(hospital=hospital_a, email=email, password=PASSWORD_A)
    typed = email.upper()  # any spelling: the canonical form is stored
    if interactive:
        output = _interactive(
            ["manage.py", "createsuperuser"],
            [("Email address:", typed), ("Password:", PASSWORD_B), ("Password (again):", PASSWORD_B)],
            _manage_env(),
        )
    else:
        output = subprocess.run(
            [sys.executable, "manage.py", "createsuperuser", "--noinput"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
            env={**_manage_env(), "DJANGO_SUPERUSER_EMAIL": typed, "DJANGO_SUPERUSER_PASSWORD": PASSWORD_B},
        ).stdout
    assert "Superuser created successfully." in output

    body = api_for(None).login(email, PASSWORD_B).json()
    assert body["user"]["email"] == email and body["user"]["hospital"] is None
    assert api_for(None).admin_login(email, PASSWORD_B).status_code == 302
    assert api_for(hospital_a).login(email, PASSWORD_A).status_code == 200  # the hospital's account, untouched


# --- One canonical form of every address (finding 1) ---------------------------------------------


def _spellings(email: str) -> list[str]:
    """Look-alike spellings of an address whose local part and domain contain an "s"."""
    local, domain = email.split("@")
    return [
        email.upper(),
        local.replace("s", "\u017f", 1) + "@" + domain,  # LATIN SMALL LETTER LONG S
        local + "\uff20" + domain,  # FULLWIDTH COMMERCIAL AT
        local + "@" + domain.replace("s", "\u017f", 1).upper(),
        f"  {local}@{domain}\u200b ",
    ]  # zero-width space in the domain (IDNA drops it)


def test_look_alike_spellings_are_one_address_for_login_and_lockout(api_for, hospital_a):
    user = user_create_verified(
        hospital=hospital_a, email=unique_email("nurse", "sis-hospital.example"), password=PASSWORD
    )
    api = from_address(api_for(hospital_a), "127.0.6.1")
    spellings = _spellings(user.email)
    for spelling in spellings:
        assert login(api, spelling).status_code == 200, spelling
    # Each wrong try under another spelling spends the same budget...
    statuses = [
        login(api, spellings[i % len(spellings)], WRONG).status_code for i in range(settings.LOGIN_FAILURE_LIMIT)
    ]
    assert statuses == [400] * settings.LOGIN_FAILURE_LIMIT
    # ...so no spelling gets a fresh one, the right password included.
    for spelling in spellings + [user.email]:
        assert_locked(login(api, spelling))


@pytest.mark.parametrize(
    "confusable",
    [
        "nurse\u0430@example.org",  # CYRILLIC SMALL LETTER A
        "nurse\u0131@example.org",  # LATIN SMALL LETTER DOTLESS I
        "nur\u200bse@example.org",  # ZERO WIDTH SPACE in the local part
    ],
)
def test_confusable_addresses_are_refused_with_a_clear_400(api_a, confusable):
    for path, body in (
        ("/accounts/login/", {"email": confusable, "password": PASSWORD}),
        ("/accounts/registration/", {"email": confusable, "password1": PASSWORD, "password2": PASSWORD}),
        ("/accounts/password/reset/", {"email": confusable}),
    ):
        response = api_a.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert "email" in response.json().get("fields", {}), (path, response.text)


def test_a_dotless_i_domain_is_another_domain_not_the_account(api_for, hospital_a):
    user = user_create_verified(
        hospital=hospital_a, email=unique_email("nurse", "is-hospital.example"), password=PASSWORD
    )
    other_domain = user.email.replace("@is-", "@\u0131s-")  # an IDN (xn--...), not "is-hospital"
    assert login(api_for(hospital_a), other_domain).status_code == 400


def test_the_mail_limit_per_inbox_holds_for_every_spelling(api_for, hospital_a, fresh_limits):
    fresh_limits["email"] = "2/hour"
    user = user_create_verified(
        hospital=hospital_a, email=unique_email("inbox", "sis-hospital.example"), password=PASSWORD
    )
    answers = [
        from_address(api_for(hospital_a), f"127.0.7.{i}").post("/accounts/password/reset/", json={"email": spelling})
        for i, spelling in enumerate(_spellings(user.email))
    ]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    for answer in answers[2:]:
        assert_throttled(answer)


def test_registering_a_look_alike_of_an_address_makes_no_second_account(api_for, hospital_a, mail_sink):
    user = user_create_verified(
        hospital=hospital_a, email=unique_email("dup", "sis-hospital.example"), password=PASSWORD
    )
    for spelling in _spellings(user.email)[:3]:
        assert register(api_for(hospital_a), spelling).status_code == 201
    assert User.objects.filter(email=user.email).count() == 1
    mail_sink.wait_for(user.email, count=3)  # "you already have an account", to the one inbox


# --- The attempt budget under parallel bursts (finding 2) ----------------------------------------


def _burst(requests_to_send) -> list[int]:
    """Sends every (api, email, password) at once, one thread each; the statuses."""
    barrier = threading.Barrier(len(requests_to_send))
    statuses: list[int] = []
    lock = threading.Lock()

    def send(api, email, password):
        barrier.wait(timeout=120)
        try:
            status = login(api, email, password).status_code
        except requests.RequestException as exc:
            status = repr(exc)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send, args=args) for args in requests_to_send]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(statuses) == len(requests_to_send), "every request answered"
    assert all(isinstance(s, int) for s in statuses), statuses
    return statuses


def _failures_audited(hospital, email: str) -> int:
    """LOGIN_FAILED is audited only when a password was actually checked (a refusal checks none)."""
    with tenant_context(hospital):
        return AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED, detail__email=email).count()


def test_a_parallel_burst_of_wrong_passwords_gets_exactly_the_limit_checked(api_for, hospital_a):
    user = user_create_verified(hospital=hospital_a, email=unique_email("burst"), password=PASSWORD)
    limit, burst = settings.LOGIN_FAILURE_LIMIT, 30
    statuses = _burst([(from_address(api_for(hospital_a), "127.0.8.1"), user.email, WRONG) for _ in range(burst)])
    assert sorted(statuses) == [400] * limit + [429] * (burst - limit)
    assert _failures_audited(hospital_a, user.email) == limit
    with tenant_context(hospital_a):  # the lock is recorded once, by the failure that began it
        failures = AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED, detail__email=user.email)
        assert failures.filter(detail__has_key="lock").count() == 1
    assert_locked(login(from_address(api_for(hospital_a), "127.0.8.1"), user.email))


def test_a_burst_from_many_addresses_gets_the_account_limit_checked(api_for, hospital_a):
    user = user_create_verified(hospital=hospital_a, email=unique_email("rotating"), password=PASSWORD)
    account_limit, burst = settings.LOGIN_ACCOUNT_FAILURE_LIMIT, 32
    # Two tries from each of 16 addresses: under the per-address limit, over the account's.
    statuses = _burst(
        [(from_address(api_for(hospital_a), f"127.0.9.{i // 2 + 1}"), user.email, WRONG) for i in range(burst)]
    )
    assert sorted(statuses) == [400] * account_limit + [429] * (burst - account_limit)
    assert _failures_audited(hospital_a, user.email) == account_limit
    assert_locked(login(from_address(api_for(hospital_a), "127.0.9.200"), user.email))


def test_a_parallel_spray_gets_exactly_the_address_limit_checked(api_for, hospital_a, fresh_limits):
    fresh_limits["login_failures"] = "5/hour"
    victims = [unique_email("spray") for _ in range(30)]
    statuses = _burst([(from_address(api_for(hospital_a), "127.0.10.1"), email, WRONG) for email in victims])
    assert sorted(statuses) == [400] * 5 + [429] * 25
    assert sum(_failures_audited(hospital_a, email) for email in victims) == 5
    colleague = user_create_verified(hospital=hospital_a, email=unique_email("after"), password=PASSWORD)
    assert_throttled(login(from_address(api_for(hospital_a), "127.0.10.1"), colleague.email))
