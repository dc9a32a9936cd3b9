"""Every auth email goes through the outbox and a real Celery worker: never in the request, never lost, never twice."""

from math import ceil

from django.conf import settings

from emails.models import Email
from tests.processes import wait_until
from tests.support import ANSWER_TIMEOUT, PASSWORD, link_in, unique_email


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
    # The worker marks the row sent once SMTP has accepted it: a moment after the sink has the mail.
    wait_until(
        lambda: Email.objects.get(to=email).status == Email.Status.SENT,
        ANSWER_TIMEOUT,
        lambda: "the worker never marked the mail sent",
    )
    row = Email.objects.get(to=email)
    assert row.hospital_id == hospital_a.pk
    assert row.context == {}  # links carry secrets: not kept once sent


def test_a_stalled_smtp_server_does_not_hold_the_api(api_a, mail_sink):
    """The API answers while the SMTP server sits on the mail: the request never waits for SMTP."""
    email = unique_email("slow")
    mail_sink.hold()
    try:
        assert register(api_a, email).status_code == 201
        # The worker is meanwhile stuck in the SMTP conversation, and the outbox knows it is not sent.
        wait_until(lambda: mail_sink.holding(email), ANSWER_TIMEOUT, lambda: "the worker never reached SMTP")
        assert not mail_sink.to(email)
        assert Email.objects.get(to=email).status != Email.Status.SENT
    finally:
        mail_sink.release()
    mail_sink.wait_for(email)


def worker_sweeps(celery_worker) -> int:
    """How many outbox sweeps the suite's worker has finished (its JSON task lines)."""
    return sum(
        1
        for line in celery_worker.log.read_text().splitlines()
        if line.startswith("{") and '"emails.tasks.outbox_sweep"' in line and '"SUCCESS"' in line
    )


def wait_past_sweeps_and_retries(celery_worker) -> None:
    """Until a mail could go out a second time: the next sweeps, and every retry still scheduled.

    Beat sweeps every EMAIL_OUTBOX_SWEEP (1 s in tests) and requeues what is not sent after
    EMAIL_REQUEUE_AFTER_SECONDS; retries wait at most EMAIL_RETRY_MAX_SECONDS. Sweeps that
    start after those have passed have run with every earlier retry due.
    """
    rounds = 2 + ceil(
        (settings.EMAIL_REQUEUE_AFTER_SECONDS + settings.EMAIL_RETRY_MAX_SECONDS)
        / settings.CELERY_BEAT_SCHEDULE["emails-outbox-sweep"]["schedule"]
    )
    target = worker_sweeps(celery_worker) + rounds
    wait_until(
        lambda: worker_sweeps(celery_worker) >= target,
        ANSWER_TIMEOUT,
        lambda: f"the worker finished {worker_sweeps(celery_worker)} sweeps, not {target}",
    )


def test_smtp_outage_delays_every_mail_and_duplicates_none(api_a, user_a, mail_sink, celery_worker):
    addresses = [unique_email("outage") for _ in range(3)]
    mail_sink.stop()
    try:
        for address in addresses:
            assert register(api_a, address).status_code == 201
        assert api_a.post("/accounts/password/reset/", json={"email": user_a.email}).status_code == 200
        wait_until(
            lambda: Email.objects.filter(to__in=addresses, attempts__gte=2).count() == 3,  # retried
            ANSWER_TIMEOUT,
            lambda: "the worker did not retry",
        )
        assert Email.objects.filter(to__in=addresses, status=Email.Status.PENDING).count() == 3
    finally:
        mail_sink.start()
    for address in [*addresses, user_a.email]:
        mail_sink.wait_for(address)
    wait_past_sweeps_and_retries(celery_worker)  # nothing goes out twice
    assert all(len(mail_sink.to(address)) == 1 for address in addresses)
    assert len([m for m in mail_sink.to(user_a.email) if "reset" in m.subject.lower()]) == 1
    assert Email.objects.filter(to__in=addresses, status=Email.Status.SENT).count() == 3


def test_broker_outage_loses_no_mail(api_a, broker, mail_sink, celery_worker):
    email = unique_email("nobroker")
    broker.stop()
    try:
        response = register(api_a, email)  # answered (it would hang on the dead broker otherwise)
        assert response.status_code == 201, response.text
        assert Email.objects.get(to=email).status == Email.Status.PENDING
    finally:
        broker.start()
    # The beat sweep queues it again once the broker is back.
    mail_sink.wait_for(email)
    wait_past_sweeps_and_retries(celery_worker)
    assert len(mail_sink.to(email)) == 1


def test_password_change_sends_a_notice(api_a, user_a, mail_sink):
    api_a.login(user_a.email)
    response = api_a.post(
        "/accounts/password/change/",
        json={"old_password": PASSWORD, "new_password1": "Changed-pass-345", "new_password2": "Changed-pass-345"},
    )
    assert response.status_code == 200
    notice = mail_sink.wait_for(user_a.email)[-1]
    assert "password was changed" in notice.subject
    assert f"http://{user_a.hospital.slug}.localhost:8000/accounts/password/reset/" in notice.text
