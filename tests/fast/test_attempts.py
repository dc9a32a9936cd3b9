"""The login attempt budget as a service (accounts/security/attempts.py): reserve, refund, refuse, expire."""

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import LoginAttemptCounter
from accounts.security.attempts import AccountLocked, AddressThrottled, attempt_reserve, counters_purge
from accounts.security.services import login_failed
from audit.models import AuditEvent


def request_from(address: str = "10.0.0.1"):
    return RequestFactory().post("/accounts/login/", REMOTE_ADDR=address)


def spend(email: str, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        attempt_reserve(request_from(address), email)


def test_the_budget_refuses_past_the_limit_with_the_time_left(in_hospital, settings):
    spend("ann@example.org", settings.LOGIN_FAILURE_LIMIT)
    with pytest.raises(AccountLocked) as refused:
        attempt_reserve(request_from(), "ann@example.org")
    assert 0 < refused.value.wait <= settings.LOGIN_LOCKOUT_COOLOFF.total_seconds()
    # The refused attempt took nothing: the counts stay at the limit.
    assert set(LoginAttemptCounter.objects.filter(key__contains="ann@example.org").values_list("count", flat=True)) == {
        settings.LOGIN_FAILURE_LIMIT
    }


def test_every_spelling_spends_the_same_budget_and_another_hospital_has_its_own(in_hospital, hospital_b, settings):
    spellings = [
        "Ann@Example.org",
        "ann@example.org",
        "an\u00f1@example.org".replace("\u00f1", "n"),
        "ANN\uff20EXAMPLE.ORG",
    ]
    for i in range(settings.LOGIN_FAILURE_LIMIT):
        attempt_reserve(request_from(), spellings[i % len(spellings)])
    with pytest.raises(AccountLocked):
        attempt_reserve(request_from(), "ann@example.org")
    with tenant_context(hospital_b):
        attempt_reserve(request_from(), "ann@example.org")  # B's account of the address: untouched


def test_a_refund_gives_the_attempt_back_and_clears_this_address(in_hospital, settings):
    spend("ben@example.org", settings.LOGIN_FAILURE_LIMIT - 1)
    attempt_reserve(request_from(), "ben@example.org").refund()  # the right password
    counts = dict(LoginAttemptCounter.objects.filter(key__contains="ben@example.org").values_list("key", "count"))
    assert [count for key, count in counts.items() if key.startswith("account-address:")] == []
    assert [count for key, count in counts.items() if key.startswith("account:")] == [settings.LOGIN_FAILURE_LIMIT - 1]


def test_a_spent_address_budget_takes_nothing_from_the_accounts(in_hospital, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login_failures": "3/hour"}
    for name in ("a", "b", "c"):
        attempt_reserve(request_from("10.0.0.9"), f"{name}@example.org")
    with pytest.raises(AddressThrottled):
        attempt_reserve(request_from("10.0.0.9"), "d@example.org")
    # All or none: the refused login left no counter for d's account behind.
    assert not LoginAttemptCounter.objects.filter(key__endswith=":d@example.org").exists()


def test_an_ended_window_starts_again_at_one_and_the_purge_removes_it(in_hospital, settings):
    spend("cy@example.org", settings.LOGIN_FAILURE_LIMIT)
    LoginAttemptCounter.objects.filter(key__contains="cy@example.org").update(expires_at=timezone.now())
    attempt_reserve(request_from(), "cy@example.org")
    assert set(LoginAttemptCounter.objects.filter(key__contains="cy@example.org").values_list("count", flat=True)) == {
        1
    }
    LoginAttemptCounter.objects.filter(key__contains="cy@example.org").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert counters_purge() >= 2
    assert not LoginAttemptCounter.objects.filter(key__contains="cy@example.org").exists()


def test_what_is_no_address_gets_a_budget_of_its_own_digest(in_hospital, settings):
    typed = "x" * 400
    spend(typed, settings.LOGIN_FAILURE_LIMIT)
    with pytest.raises(AccountLocked):
        attempt_reserve(request_from(), typed)
    assert all(len(key) <= 300 for key in LoginAttemptCounter.objects.values_list("key", flat=True))


def test_the_attempt_that_spends_a_budget_begins_the_lock_and_its_failure_says_so(in_hospital, settings):
    limit = settings.LOGIN_FAILURE_LIMIT
    taken = [attempt_reserve(request_from(), "dee@example.org") for _ in range(limit)]
    assert [[budget.kind for budget in r.spent()] for r in taken] == [[]] * (limit - 1) + [["account-address"]]
    login_failed(email="Dee@Example.org", reservation=taken[0])
    login_failed(email="Dee@Example.org", reservation=taken[-1])
    with pytest.raises(AccountLocked) as refused:
        attempt_reserve(request_from(), "dee@example.org")
    login_failed(email="dee@example.org", refused=refused.value)  # logged, not recorded
    details = list(
        AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED, detail__email="dee@example.org")
        .order_by("id")
        .values_list("detail", flat=True)
    )
    assert [d["email"] for d in details] == ["dee@example.org"] * 2
    assert "lock" not in details[0] and details[1]["lock"]["budgets"] == ["account-address"]
