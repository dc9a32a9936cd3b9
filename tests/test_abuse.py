"""Abuse resistance: the login attempt budget, rate limits, and answers that do not tell who has an account.

Other client addresses are real: Linux routes all of 127.0.0.0/8 to the
loopback interface, so a client bound to 127.0.0.2 reaches the live server
from another REMOTE_ADDR.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.cache import caches
from django.db import connections
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context
from requests.adapters import HTTPAdapter

from accounts.models import LoginAttemptCounter
from accounts.services import user_create_verified
from audit.models import AuditEvent
from tests.conftest import database_url_of
from tests.processes import WebServer
from tests.support import PASSWORD, Api, unique_email

WRONG = "not-the-Password-0"


class _SourceAddressAdapter(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(api: Api, address: str) -> Api:
    """The same host as `api`, seen by the server as coming from `address` (127.x.y.z)."""
    other = Api(api.base_url, api.host)
    other.session.mount("http://", _SourceAddressAdapter(address))
    return other


def login(api: Api, email: str, password: str = PASSWORD) -> requests.Response:
    return api.post("/accounts/login/", json={"email": email, "password": password})


def assert_locked(response: requests.Response) -> dict:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == "account_locked" and body["detail"], body
    wait = int(response.headers["Retry-After"])
    assert 0 < wait <= settings.LOGIN_LOCKOUT_COOLOFF.total_seconds()
    return body


def fail_until_locked(api: Api, email: str) -> list[int]:
    """Wrong passwords until the budget is spent, and one more; the statuses seen."""
    return [login(api, email, WRONG).status_code for _ in range(settings.LOGIN_FAILURE_LIMIT + 1)]


def account_counters(user) -> dict[str, int]:
    """The login budget's counters of `user`'s account: {"account": n, "account-address": m}."""
    account = f"{user.hospital.schema_name}:{user.email}"
    counters = LoginAttemptCounter.objects.filter(
        Q(key=f"account:{account}") | Q(key__startswith=f"account-address:{account}|")
    )
    return {c.key.split(":", 1)[0]: c.count for c in counters}


def expire_failures(user) -> None:
    """Time travel: the cool-off of the account's failures has ended."""
    account = f"{user.hospital.schema_name}:{user.email}"
    assert LoginAttemptCounter.objects.filter(key__contains=account).update(expires_at=timezone.now())


# --- Login lockout ----------------------------------------------------------------------------


def test_wrong_passwords_lock_the_account_even_for_the_right_password_until_the_cool_off(api_a, user_a):
    limit = settings.LOGIN_FAILURE_LIMIT
    statuses = fail_until_locked(api_a, user_a.email)
    # `limit` passwords are checked and wrong; after that none is checked at all.
    assert statuses == [400] * limit + [429]
    assert_locked(login(api_a, user_a.email))  # the right password now: refused, unchecked
    assert_locked(login(api_a, user_a.email.upper(), WRONG))  # any spelling of the email
    # Tries during the lock are not counted: they do not push the end of the lock back.
    assert account_counters(user_a) == {"account-address": limit, "account": limit}

    expire_failures(user_a)
    assert login(api_a, user_a.email).status_code == 200
    # A successful login starts the count afresh for this address, and gives its own attempt back.
    assert account_counters(user_a) == {"account": 0}


def test_retry_after_counts_down_from_the_last_failure(api_a, user_a):
    fail_until_locked(api_a, user_a.email)
    account = f"{user_a.hospital.schema_name}:{user_a.email}"
    remaining = timedelta(minutes=5)
    LoginAttemptCounter.objects.filter(key__contains=account).update(expires_at=timezone.now() + remaining)
    wait = int(login(api_a, user_a.email).headers["Retry-After"])
    assert remaining.total_seconds() - 60 <= wait <= remaining.total_seconds()


def test_the_lock_is_per_account_and_address_never_per_address_alone(api_a, hospital_a, user_a):
    colleague = user_create_verified(hospital=hospital_a, email=unique_email("colleague"), password=PASSWORD)
    fail_until_locked(api_a, user_a.email)
    assert_locked(login(api_a, user_a.email))
    # Same address (a hospital's shared NAT), another account: not locked.
    assert login(api_a, colleague.email).status_code == 200
    # Same account from another address (its owner at home): not locked either...
    home = from_address(api_a, "127.0.0.2")
    assert login(home, user_a.email).status_code == 200
    # ...and the owner's login there leaves the guesser's lock in place.
    assert_locked(login(api_a, user_a.email))


def test_an_account_guessed_from_many_addresses_is_locked_everywhere(api_a, user_a, settings):
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 3, 6
    for address in ("127.0.0.3", "127.0.0.4"):
        api = from_address(api_a, address)
        assert [login(api, user_a.email, WRONG).status_code for _ in range(2)] == [400, 400]
    # 4 failures so far, under both limits; 2 more from a third address reach the account's limit.
    third = from_address(api_a, "127.0.0.5")
    assert [login(third, user_a.email, WRONG).status_code for _ in range(2)] == [400, 400]
    assert_locked(login(third, user_a.email, WRONG))
    for address in ("127.0.0.6", "127.0.0.1"):
        assert_locked(login(from_address(api_a, address), user_a.email))


def test_unknown_emails_lock_exactly_like_real_accounts(api_a, user_a):
    unknown = unique_email("nobody")
    assert fail_until_locked(api_a, unknown) == fail_until_locked(api_a, user_a.email)
    real, fake = login(api_a, user_a.email), login(api_a, unknown)
    assert assert_locked(real) == assert_locked(fake)


def test_failures_at_another_hospital_do_not_lock_the_account(api_a, api_b, user_a):
    fail_until_locked(api_b, user_a.email)
    assert_locked(login(api_b, user_a.email))  # B answers like for any email it does not know
    assert login(api_a, user_a.email).status_code == 200


def test_an_absurdly_long_email_is_a_clear_400_and_no_password_is_checked(api_a):
    email = "x" * 300 + "@example.org"
    answers = [login(api_a, email, WRONG) for _ in range(settings.LOGIN_FAILURE_LIMIT + 2)]
    assert {(a.status_code, a.json()["code"]) for a in answers} == {(400, "invalid")}
    assert "email" in answers[0].json()["fields"]


@pytest.fixture
def admin_client(api_for):
    def make(address: str = "127.0.0.1") -> Api:
        api = from_address(api_for(None), address)
        assert api.get("/admin/login/").status_code == 200  # sets csrftoken
        return api

    return make


def test_django_admin_login_still_works_and_locks_too(admin_client, platform_user):
    response = admin_client().admin_login(platform_user.email, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/", response.text[:300]
    other = user_create_verified(hospital=None, email=unique_email("staff"), password=PASSWORD)
    api = admin_client("127.0.0.7")
    statuses = [api.admin_login(other.email, WRONG).status_code for _ in range(settings.LOGIN_FAILURE_LIMIT)]
    assert statuses == [200] * settings.LOGIN_FAILURE_LIMIT  # the form again, with its error
    assert_locked(api.admin_login(other.email, WRONG))
    assert_locked(api.admin_login(other.email, PASSWORD))


def failures_audited(schema: str, email: str) -> list[dict]:
    """The details of the login_failed events for `email` in `schema`'s trail, oldest first."""
    with schema_context(schema):
        events = AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED, detail__email=email)
        return list(events.order_by("created", "id").values_list("detail", flat=True))


def test_each_checked_failure_is_audited_and_the_lock_once_when_it_begins(api_a, user_a, admin_client, platform_user):
    limit = settings.LOGIN_FAILURE_LIMIT
    fail_until_locked(api_a, user_a.email)
    for _ in range(3):
        assert_locked(login(api_a, user_a.email))  # refusals: consequences of the lock, not recorded again
    details = failures_audited(user_a.hospital.schema_name, user_a.email)
    assert len(details) == limit
    assert [d.get("lock", {}).get("budgets") for d in details] == [None] * (limit - 1) + [["account-address"]]

    # The admin's login form goes through the same service.
    api = admin_client("127.0.0.9")
    for _ in range(limit + 2):
        api.admin_login(platform_user.email, WRONG)
    details = failures_audited("public", platform_user.email)
    assert len(details) == limit and "lock" in details[-1] and "lock" not in details[0]


def parallel(calls) -> list[int]:
    """Runs every call at once, one thread each (released together by a barrier); their status codes."""
    barrier = threading.Barrier(len(calls))
    statuses: list = []

    def run(call) -> None:
        barrier.wait(timeout=120)
        try:
            statuses.append(call().status_code)
        except requests.RequestException as exc:
            statuses.append(repr(exc))

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(statuses) == len(calls) and all(isinstance(s, int) for s in statuses), statuses
    return statuses


def test_a_stolen_access_token_guesses_the_old_password_no_faster_than_a_login(api_for, hospital_a, user_a):
    """The password change checks the old password on the login budget: a parallel burst gets `limit` checks."""
    access = api_for(hospital_a).login(user_a.email).json()["access"]
    limit, burst = settings.LOGIN_FAILURE_LIMIT, 20

    def guess():
        thief = from_address(api_for(hospital_a), "127.0.4.1")
        body = {"old_password": WRONG, "new_password1": "Thief-pass-0001", "new_password2": "Thief-pass-0001"}
        return thief.post("/accounts/password/change/", json=body, token=access, csrf=False)

    statuses = parallel([guess] * burst)
    assert sorted(statuses) == [400] * limit + [429] * (burst - limit)
    details = failures_audited(hospital_a.schema_name, user_a.email)
    assert len(details) == limit and all(d["via"] == "password_change" for d in details)
    # The same budget as a login's: the thief's address is locked out of logging in too, the owner is not.
    assert_locked(login(from_address(api_for(hospital_a), "127.0.4.1"), user_a.email))
    assert login(api_for(hospital_a), user_a.email).status_code == 200
    # And the right old password, from the owner's address, still changes it.
    owner = api_for(hospital_a)
    owner.login(user_a.email)
    changed = owner.post(
        "/accounts/password/change/",
        json={"old_password": PASSWORD, "new_password1": "Owner-pass-0002", "new_password2": "Owner-pass-0002"},
    )
    assert changed.status_code == 200, changed.text


# --- A second web server process: lockout and throttles are shared -----------------------------


@pytest.fixture(scope="module")
def second_server(django_db_setup, broker):
    """`manage.py runserver` in its own process, on the test database and the suite's Redis."""
    server = WebServer(
        env={
            "DATABASE_URL": database_url_of(connections["default"].settings_dict),
            "CELERY_BROKER_URL": broker.url,
            "THROTTLE_REGISTRATION_RATE": "3/hour",
        }
    )
    server.start()
    yield server.url
    server.stop()


def test_a_lock_made_on_one_server_holds_on_another_process(api_a, user_a, second_server):
    fail_until_locked(api_a, user_a.email)  # on the suite's server (a thread of this process)
    elsewhere = Api(second_server, api_a.host)
    assert_locked(login(elsewhere, user_a.email))  # the right password, on the other process


def register(api: Api, email: str) -> requests.Response:
    return api.post("/accounts/registration/", json={"email": email, "password1": PASSWORD, "password2": PASSWORD})


def assert_throttled(response: requests.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "throttled" and response.json()["detail"]
    assert int(response.headers["Retry-After"]) >= 1


def test_throttle_counts_are_shared_by_two_server_processes(api_a, fresh_limits, second_server):
    fresh_limits["registration"] = "3/hour"  # the second server has the same, from its environment
    elsewhere = Api(second_server, api_a.host)
    assert register(api_a, unique_email("r")).status_code == 201
    assert register(elsewhere, unique_email("r")).status_code == 201
    assert register(api_a, unique_email("r")).status_code == 201
    assert_throttled(register(elsewhere, unique_email("r")))
    assert_throttled(register(api_a, unique_email("r")))


# --- Rate limits -------------------------------------------------------------------------------


def test_registration_is_limited_per_address(api_a, fresh_limits):
    fresh_limits["registration"] = "3/hour"
    assert [register(api_a, unique_email("r")).status_code for _ in range(3)] == [201] * 3
    assert_throttled(register(api_a, unique_email("r")))
    # Another address has its own allowance.
    assert register(from_address(api_a, "127.0.0.8"), unique_email("r")).status_code == 201


def test_password_reset_is_limited_per_address_and_per_email(api_a, user_a, fresh_limits):
    fresh_limits["password_reset"] = "2/hour"
    reset = "/accounts/password/reset/"
    assert [api_a.post(reset, json={"email": unique_email()}).status_code for _ in range(2)] == [200, 200]
    assert_throttled(api_a.post(reset, json={"email": unique_email()}))

    # One inbox cannot be flooded from many addresses; known and unknown emails alike.
    fresh_limits.update(password_reset="1000/hour", email="2/hour")
    for email in (user_a.email, unique_email("nobody")):
        answers = [from_address(api_a, f"127.0.1.{i}").post(reset, json={"email": email}) for i in range(3)]
        assert [a.status_code for a in answers[:2]] == [200, 200]
        assert_throttled(answers[2])


def test_invitation_acceptance_is_limited_per_address(api_a, fresh_limits):
    fresh_limits["invitation_accept"] = "2/hour"
    accept = "/accounts/invitations/accept/"
    for _ in range(2):
        response = api_a.post(accept, json={"token": "guess-" + unique_email(), "password": PASSWORD})
        assert response.status_code == 400 and response.json()["code"] == "invitation_invalid", response.text
    assert_throttled(api_a.post(accept, json={"token": "guess", "password": PASSWORD}))


def test_failed_logins_from_one_address_are_limited_across_accounts(api_a, api_b, user_a, user_b, fresh_limits):
    """Password spraying: one password tried on many accounts never trips a per-account lock."""
    fresh_limits["login_failures"] = "4/hour"
    sprayer = from_address(api_a, "127.0.2.1")
    answers = [
        login(sprayer, email, WRONG).status_code
        for email in (unique_email("s1"), unique_email("s2"), user_a.email, unique_email("s3"))
    ]
    assert answers == [400] * 4
    assert_throttled(login(sprayer, unique_email("s4"), WRONG))
    assert_throttled(login(sprayer, user_a.email))  # the right password too: no oracle for the sprayer
    # Other addresses, and the same address at another hospital, are not affected.
    assert login(from_address(api_a, "127.0.2.2"), user_a.email).status_code == 200
    assert login(from_address(api_b, "127.0.2.1"), user_b.email).status_code == 200


def test_successful_logins_do_not_count_towards_the_address_limit(api_a, hospital_a, fresh_limits):
    """A hospital's shared address: many staff logging in correctly never meet the limit."""
    fresh_limits["login_failures"] = "2/hour"
    shared = from_address(api_a, "127.0.2.3")
    staff = [
        user_create_verified(hospital=hospital_a, email=unique_email("shift"), password=PASSWORD) for _ in range(5)
    ]
    assert [login(shared, user.email).status_code for user in staff * 2] == [200] * 10
    assert login(shared, staff[0].email, WRONG).status_code == 400
    assert login(shared, staff[1].email).status_code == 200


def test_without_the_cache_limits_fall_back_to_each_process_never_to_none(
    api_a, broker, fresh_limits, settings, caplog
):
    fresh_limits["registration"] = "2/hour"
    settings.THROTTLE_FALLBACK_RETRY_SECONDS = 0.0  # a new counter for the process, trying the cache every time
    broker.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="accounts.security.throttles"):
            statuses = [register(api_a, unique_email("nocache")).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
        assert "Throttle cache unreachable" in caplog.text
        # The other limited endpoints keep answering too (resends share registration's spent allowance).
        assert api_a.post("/accounts/password/reset/", json={"email": unique_email()}).status_code == 200
        assert_throttled(api_a.post("/accounts/registration/resend-email/", json={"email": unique_email()}))
    finally:
        broker.start()
    # Back on the shared cache (a fresh Redis: counting starts again there, not in this process).
    assert register(api_a, unique_email("cacheback")).status_code == 201
    assert _cache_keys(), "the counter is in Redis again"


def test_a_login_storm_without_broker_and_cache_still_logs_in_and_still_limits(
    api_a, hospital_a, broker, fresh_limits, settings, caplog
):
    """Redis (broker and cache alike) gone while 16 clients log in and read: all served, limits still hold."""
    # Every try of the dead cache would be logged: none is allowed.
    settings.THROTTLE_FALLBACK_RETRY_SECONDS = 0.0
    staff = [
        user_create_verified(hospital=hospital_a, email=unique_email("storm"), password=PASSWORD) for _ in range(16)
    ]
    broker.stop()
    try:
        answers: list[int] = []

        def client(user) -> None:
            api = Api(api_a.base_url, api_a.host)
            for _ in range(3):
                response = login(api, user.email)
                answers.append(response.status_code)
                if response.status_code == 200:
                    me = api.get("/accounts/user/", token=response.json()["access"])
                    answers.append(me.status_code)

        threads = [threading.Thread(target=client, args=(user,)) for user in staff]
        with caplog.at_level(logging.WARNING, logger="accounts.security.throttles"):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert Counter(answers) == {200: 16 * 3 * 2}
        # No request waits on the dead Redis: logins and reads never use it (the login budget is in PostgreSQL).
        assert "Throttle cache unreachable" not in caplog.text, caplog.text

        # The lockout lives in PostgreSQL: unchanged.
        guesser = from_address(api_a, "127.0.3.1")
        fail_until_locked(guesser, staff[0].email)
        assert_locked(login(guesser, staff[0].email))
        # So does the spraying limit: unchanged too.
        fresh_limits["login_failures"] = "3/hour"
        sprayer = from_address(api_a, "127.0.3.2")
        assert [login(sprayer, unique_email("spray"), WRONG).status_code for _ in range(3)] == [400] * 3
        assert_throttled(login(sprayer, staff[1].email))
    finally:
        broker.start()


def _cache_keys() -> list[bytes]:
    client = caches["default"]._cache.get_client(write=False)
    return list(client.scan_iter(match="*throttle:registration*"))


# --- Answers that do not tell who has an account ------------------------------------------------


def hash_count(monkeypatch) -> list[int]:
    """Counts Argon2 hashes made from now on in this process (where the suite's server runs)."""
    calls = [0]
    encode = Argon2PasswordHasher.encode

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(Argon2PasswordHasher, "encode", counted)
    return calls


# How long each path takes is measured by bench/enumeration_timing.py: a figure of the machine, not a verdict.


def test_registration_answers_and_hashes_alike_for_taken_and_new_emails(api_a, user_a, fresh_limits, monkeypatch):
    hashes = hash_count(monkeypatch)
    taken = register(api_a, user_a.email)
    taken_hashes, hashes[0] = hashes[0], 0
    new = register(api_a, unique_email("new"))
    assert taken.status_code == new.status_code == 201
    assert taken.json() == new.json()
    # The slow part of creating an account is hashing its password: a taken email pays it too.
    assert taken_hashes == hashes[0] == 1


def test_password_reset_answers_alike_for_known_and_unknown_emails(api_a, user_a, fresh_limits):
    reset = lambda email: api_a.post("/accounts/password/reset/", json={"email": email})  # noqa: E731
    known, unknown = reset(user_a.email), reset(unique_email("nobody"))
    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json()
