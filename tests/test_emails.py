"""Every auth email goes through the outbox and a real Celery worker: never in the request, never lost, never twice."""
import time

from emails.models import Email
from tests.support import PASSWORD, link_in, unique_email


def register(api, email):
    return api.post("/accounts/registration/", json={"email": email, "password1": PASSWORD, "password2": PASSWORD})


def test_mail_is_rendered_by_the_worker_with_the_hospitals_name_and_links(api_a, hospital_a, mail_sink):
    email = unique_email("render")
    assert register(api_a, email).status_code == 201
    mail = mail_sink.wait_for(email)[0]
    assert mail.subject == f"[{hospital_a.name}] Confirm your email address"
    assert hospital_a.name in mail.text and hospital_a.name in mail.html
    link = link_in(mail, r"(http://\S+)").group(1)
    assert link.startswith(f"http://{hospital_a.slug}.localhost:8000/") and link in mail.html
    row = Email.objects.get(to=email)
    assert row.status == Email.Status.SENT and row.hospital_id == hospital_a.pk
    assert row.context == {}  # links carry secrets: not kept once sent


def test_a_slow_smtp_server_does_not_slow_the_api(api_a, mail_sink):
    email = unique_email("slow")
    mail_sink.delay = 2.0
    try:
        started = time.monotonic()
        assert register(api_a, email).status_code == 201
        assert time.monotonic() - started < 1.0
        assert not mail_sink.to(email)  # the request did not wait for SMTP
        mail_sink.wait_for(email, timeout=15)
    finally:
        mail_sink.delay = 0.0


def test_smtp_outage_delays_every_mail_and_duplicates_none(api_a, user_a, mail_sink):
    addresses = [unique_email("outage") for _ in range(3)]
    mail_sink.stop()
    try:
        for address in addresses:
            assert register(api_a, address).status_code == 201
        assert api_a.post("/accounts/password/reset/", json={"email": user_a.email}).status_code == 200
        deadline = time.monotonic() + 15
        while Email.objects.filter(to__in=addresses, attempts__gte=2).count() < 3:  # retried, with backoff
            assert time.monotonic() < deadline, "the worker did not retry"
            time.sleep(0.2)
        assert Email.objects.filter(to__in=addresses, status=Email.Status.PENDING).count() == 3
    finally:
        mail_sink.start()
    for address in [*addresses, user_a.email]:
        mail_sink.wait_for(address, timeout=20)
    time.sleep(4)  # past another sweep and retry round: nothing goes out twice
    assert all(len(mail_sink.to(address)) == 1 for address in addresses)
    assert len([m for m in mail_sink.to(user_a.email) if "reset" in m.subject.lower()]) == 1
    assert Email.objects.filter(to__in=addresses, status=Email.Status.SENT).count() == 3


def test_broker_outage_loses_no_mail(api_a, broker, mail_sink):
    email = unique_email("nobroker")
    broker.stop()
    try:
        started = time.monotonic()
        response = register(api_a, email)
        assert response.status_code == 201, response.text
        assert time.monotonic() - started < 3.0
        assert Email.objects.get(to=email).status == Email.Status.PENDING
    finally:
        broker.start()
    # The beat sweep queues it again once the broker is back.
    mail_sink.wait_for(email, timeout=30)
    time.sleep(2)
    assert len(mail_sink.to(email)) == 1


def test_password_change_sends_a_notice(api_a, user_a, mail_sink):
    api_a.login(user_a.email)
    response = api_a.post("/accounts/password/change/", json={
        "old_password": PASSWORD, "new_password1": "Changed-pass-345", "new_password2": "Changed-pass-345"})
    assert response.status_code == 200
    notice = mail_sink.wait_for(user_a.email)[-1]
    assert "password was changed" in notice.subject
    assert f"http://{user_a.hospital.slug}.localhost:8000/accounts/password/reset/" in notice.text
