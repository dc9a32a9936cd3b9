"""Rate limits with the counter given to them (accounts/security/throttles.py): no global state to patch."""

import logging

from django.core.cache.backends.redis import RedisCache
from django.test import RequestFactory
from django_tenants.utils import tenant_context

from accounts.security.throttles import CacheCounter, LocalCounter, RegistrationThrottle
from audit.context import AuditOriginMiddleware
from audit.models import AuditEvent
from audit.services import audit_record


def request_from(address: str):
    return RequestFactory().post("/accounts/registration/", REMOTE_ADDR=address)


def allowed(throttle_class, counter, address: str = "10.0.0.1") -> bool:
    return throttle_class(counter=counter).allow_request(request_from(address), None)


def test_a_limit_counts_per_address_and_per_hospital(in_hospital, hospital_b, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "registration": "2/hour"}
    counter = LocalCounter()
    assert [allowed(RegistrationThrottle, counter) for _ in range(3)] == [True, True, False]
    throttle = RegistrationThrottle(counter=counter)
    assert not throttle.allow_request(request_from("10.0.0.1"), None)
    assert 1 <= throttle.wait() <= 3600
    assert allowed(RegistrationThrottle, counter, "10.0.0.2")  # another address: its own allowance
    with tenant_context(hospital_b):
        assert allowed(RegistrationThrottle, counter)  # another hospital: its own allowance


def test_an_unreachable_cache_falls_back_to_counting_in_the_process(in_hospital, settings, caplog):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "registration": "2/hour"}
    # Nothing listens on port 9 of this machine: every connection is refused, at once.
    dead = RedisCache("redis://127.0.0.1:9/0", {"OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}})
    fallback = LocalCounter()
    counter = CacheCounter(cache=dead, fallback=fallback, retry_seconds=3600)
    with caplog.at_level(logging.WARNING, logger="accounts.security.throttles"):
        assert [allowed(RegistrationThrottle, counter) for _ in range(3)] == [True, True, False]
    # The limit held in the fallback, and the dead cache was tried once, not on every request.
    assert len(fallback.windows) == 1
    assert caplog.text.count("Throttle cache unreachable") == 1


def test_the_audit_trail_records_the_address_the_limits_count(in_hospital, settings):
    """Behind a trusted proxy both read X-Forwarded-For through core.http.client_ip, never REMOTE_ADDR."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    seen = {}

    def view(request):
        seen["event"] = audit_record(action=AuditEvent.Action.LOGIN_FAILED, detail={"email": "x@example.org"})
        seen["counted"] = RegistrationThrottle(counter=LocalCounter()).counted_as(request)

    AuditOriginMiddleware(view)(request)
    assert seen["event"].ip == seen["counted"] == "203.0.113.7"
