"""A multi-host deployment under mixed load while its hosts fail (devtools.multihost, on network namespaces).

Two web hosts (gunicorn, config/gunicorn.py), a worker host (Celery worker + beat), a database host
(PostgreSQL + PgBouncer in session mode), a Redis host; the mail sink is this process, on the bridge. Clients
here send logins, profile reads, token refreshes, patient creates and registrations (each one email) to the
web hosts in turn; a connection error (a request in flight on a host that died) is retried on the next host.

- A web host killed mid-load: every patient the client was answered 201 for exists afterwards; no 5xx.
- The worker host killed while the sink holds a message: after it is back every email arrives exactly once.
- PgBouncer restarted mid-load: every request sent after it is back succeeds, on both web hosts.
- The worker cut off from Redis for 30 s: the emails queued meanwhile arrive exactly once after.
- PgBouncer restarted while the sink holds a message: it is recorded as sent on a new connection, sent once.

Every wait is for an event (answers counted, a mail held, a process ready) with a limit that means "never";
the 30 s outage is the scenario's length, not a synchronisation. Needs root and PgBouncer: skipped with the
reason elsewhere, failed instead where MULTIHOST_TEST_REQUIRED=1 (.ci/run).
"""

from __future__ import annotations

import itertools
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import pytest
import requests

from devtools import multihost
from devtools.waits import free_port, wait_until
from tests.support import start_mail_sink

SLUG = "multi"
HOST = f"{SLUG}.{multihost.BASE_DOMAIN}"
ADMIN = {"email": "admin@multi.example", "password": "Multi-admin-pass-1"}
EVENT_TIMEOUT = 240.0  # answers counted, mail delivered: only means "it never came"
OUTAGE_SECONDS = 30.0  # the Redis cut: the scenario's length
CLIENTS = 6
# The test deployment's worker retries and sweeps on a scale of seconds (production: 30 s sweeps, 120 s requeue).
FAST_OUTBOX = {
    "EMAIL_OUTBOX_SWEEP_SECONDS": "2",
    "EMAIL_REQUEUE_AFTER_SECONDS": "5",
    "EMAIL_RETRY_BASE_SECONDS": "1",
    "EMAIL_RETRY_MAX_SECONDS": "4",
}


def _unavailable() -> str | None:
    reason = multihost.unavailable()
    if reason and os.environ.get("MULTIHOST_TEST_REQUIRED") == "1":
        pytest.fail(f"MULTIHOST_TEST_REQUIRED=1 but {reason}")
    return reason


@pytest.fixture(scope="module")
def deployment():
    if reason := _unavailable():
        pytest.skip(f"the multi-host deployment cannot run here: {reason}")
    mail_port = free_port()
    with multihost.Deployment(mail_port=mail_port, env=FAST_OUTBOX) as deployment:
        deployment.sink = start_mail_sink(deployment.mail_host, mail_port)
        try:
            deployment.manage(
                *("create_hospital", "--name", "Multi", "--slug", SLUG),
                *("--admin-email", ADMIN["email"], "--admin-password", ADMIN["password"]),
            )
            yield deployment
        finally:
            deployment.sink.close()


@pytest.fixture(autouse=True)
def logs_on_failure(request, deployment):
    """Every host's log tail, after a test that failed."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        print(deployment.log_tails())


# --------------------------------------------------------------------------------------------------------------
# The clients


@dataclass
class Outcome:
    kind: str
    status: int | None  # None: no answer (the connection failed), and the client retried elsewhere
    epoch: int  # the load's epoch when the request was sent
    host: str


@dataclass
class Load:
    """CLIENTS threads sending a mix of requests to the web hosts in turn until `stop()`."""

    urls: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    created: set[str] = field(default_factory=set)  # MRNs answered 201 (or "exists" after a retry)
    registered: set[str] = field(default_factory=set)  # addresses answered 201
    epoch: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int = CLIENTS) -> Load:
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=EVENT_TIMEOUT)
        assert not any(t.is_alive() for t in self.threads), "a client never got its last answer"

    def answered(self, *, epoch: int = 0, host: str | None = None, ok: bool = True) -> int:
        with self.lock:
            return sum(
                1
                for o in self.outcomes
                if o.epoch >= epoch
                and (host is None or o.host == host)
                and o.status is not None
                and (not ok or o.status < 400)
            )

    def wait_answered(self, count: int, *, epoch: int = 0, host: str | None = None) -> None:
        wait_until(
            lambda: self.answered(epoch=epoch, host=host) >= count,
            EVENT_TIMEOUT,
            lambda: f"{count} successful answers (epoch {epoch}, host {host}) never came: {self.summary()}",
        )

    def errors(self, *, epoch: int = 0) -> list[Outcome]:
        with self.lock:
            return [o for o in self.outcomes if o.epoch >= epoch and o.status is not None and o.status >= 500]

    def summary(self) -> str:
        with self.lock:
            statuses = Counter((o.kind, o.status) for o in self.outcomes)
        return ", ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(statuses.items(), key=str))

    # -- one client

    def _client(self, number: int) -> None:
        rng = random.Random(number)
        turn = itertools.count(number)
        sessions = {url: requests.Session() for url in self.urls}
        access = refresh = None
        while not self.stopping.is_set():
            if access is None or rng.random() < 0.05:
                response = self._send("login", turn, sessions, "POST", "/accounts/login/", json=ADMIN)
                if response.status_code == 200:
                    access, refresh = response.json()["access"], response.cookies.get("hospital-refresh")
                continue
            roll = rng.random()
            if roll < 0.4:
                self._send("user", turn, sessions, "GET", "/accounts/user/", token=access)
            elif roll < 0.55:
                response = self._send(
                    "refresh", turn, sessions, "POST", "/accounts/token/refresh/", json={"refresh": refresh}
                )
                if response.status_code == 200:
                    access, refresh = response.json()["access"], response.cookies.get("hospital-refresh")
                else:  # a retried refresh whose first try rotated the token: log in again
                    access = None
            elif roll < 0.85:
                self._create_patient(turn, sessions, access)
            else:
                self._register(turn, sessions)

    def _create_patient(self, turn, sessions, access) -> None:
        mrn = f"MH-{uuid.uuid4().hex[:12]}"
        body = {"mrn": mrn, "first_name": "Multi", "last_name": "Host", "date_of_birth": "1980-01-02"}
        response = self._send("patient", turn, sessions, "POST", "/api/patients/", token=access, json=body)
        if response.status_code == 201:
            with self.lock:
                self.created.add(mrn)
        elif response.status_code == 400 and "mrn" in response.json().get("fields", {}):
            with self.lock:  # a retry of a create that went through on a host that then died
                self.created.add(mrn)

    def _register(self, turn, sessions) -> None:
        # A new address on every try: a retry with the same one would rightly send a second ("already
        # registered") email, and the count per address would not say what it should.
        for _ in range(len(self.urls) * 5):
            address = f"reg-{uuid.uuid4().hex[:12]}@multi.example"
            body = {"email": address, "password1": "Register-pass-123", "password2": "Register-pass-123"}
            response = self._send("register", turn, sessions, "POST", "/accounts/registration/", json=body, retry=False)
            if response is not None:
                if response.status_code == 201:
                    with self.lock:
                        self.registered.add(address)
                return

    def _send(self, kind, turn, sessions, method, path, *, token=None, retry=True, **kwargs):
        """The request on the next host in turn; on a connection error, again on the next, until answered."""
        headers = {"Host": HOST, "X-Forwarded-Proto": "https"}  # as the TLS-terminating balancer sends it
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for _ in range(len(self.urls) * 20):
            url = self.urls[next(turn) % len(self.urls)]
            epoch = self.epoch
            try:
                response = sessions[url].request(method, url + path, headers=headers, timeout=EVENT_TIMEOUT, **kwargs)
            except requests.ConnectionError:
                sessions[url].close()  # its pooled connection may be dead
                with self.lock:
                    self.outcomes.append(Outcome(kind, None, epoch, url))
                if not retry:
                    return None
                time.sleep(0.05)  # not a synchronisation: a dead host refuses at once, so do not spin
                continue
            with self.lock:
                self.outcomes.append(Outcome(kind, response.status_code, epoch, url))
            return response
        raise AssertionError(f"{method} {path}: no web host answered in {len(self.urls) * 20} tries")


# --------------------------------------------------------------------------------------------------------------
# What must hold afterwards


def sql(deployment, query: str, *params) -> list[tuple]:
    with psycopg.connect(deployment.direct_database_url, connect_timeout=10) as conn:
        return conn.execute(query, params).fetchall()


def last_email_id(deployment) -> int:
    return sql(deployment, "SELECT coalesce(max(id), 0) FROM emails_email")[0][0]


def emails_delivered(deployment, registered: set[str], after_id: int) -> tuple[int, dict[str, int]]:
    """Waits until the outbox has sent everything, then checks that every message reached the sink, that the
    sink got nothing else, and that every registration answered 201 has its email. Returns the number of
    emails queued after `after_id` (this scenario's: every earlier one was sent when the earlier scenario
    ended) and which of them the sink got more than once, with their counts."""

    def outbox_done() -> bool:
        return not sql(deployment, "SELECT 1 FROM emails_email WHERE status <> 'sent' LIMIT 1")

    def pending() -> str:
        rows = sql(deployment, "SELECT id, attempts, last_error FROM emails_email WHERE status <> 'sent'")
        return f"emails still pending (id, attempts, last error): {rows[:10]}"

    wait_until(outbox_done, EVENT_TIMEOUT, pending)
    rows = sql(deployment, 'SELECT message_id, "to", id > %s FROM emails_email', after_id)
    message_ids = {mid: to for mid, to, _ in rows}
    ours = {mid for mid, _, new in rows if new}
    # A row is marked sent after the sink answered 250, which is when the sink keeps the message: all are in.
    with deployment.sink.lock:
        at_sink = Counter(m.message_id for m in deployment.sink.messages)
    missing = [mid for mid in message_ids if at_sink[mid] == 0]
    unknown = [mid for mid in at_sink if mid not in message_ids]
    assert not missing and not unknown, (missing[:5], unknown[:5])
    assert registered <= {message_ids[mid] for mid in ours}, sorted(registered - set(message_ids.values()))[:5]
    return len(ours), {mid: at_sink[mid] for mid in ours if at_sink[mid] > 1}


def assert_every_email_delivered_once(deployment, registered: set[str], after_id: int) -> int:
    total, doubled = emails_delivered(deployment, registered, after_id)
    assert not doubled, f"sent more than once: {doubled}"
    return total


def assert_patients_exist(deployment, created: set[str]) -> None:
    rows = {mrn for (mrn,) in sql(deployment, f"SELECT mrn FROM h_{SLUG}.hospitals_patient")}
    lost = created - rows
    assert not lost, f"{len(lost)} patients answered 201 are missing: {sorted(lost)[:5]}"


def register(deployment, count: int) -> set[str]:
    """`count` registrations, through the web hosts in turn, all answered 201 (the web hosts are all up)."""
    addresses = set()
    for n in range(count):
        address = f"burst-{uuid.uuid4().hex[:12]}@multi.example"
        url = deployment.web_urls[n % len(deployment.web_urls)]
        response = requests.post(
            url + "/accounts/registration/",
            json={"email": address, "password1": "Register-pass-123", "password2": "Register-pass-123"},
            headers={"Host": HOST, "X-Forwarded-Proto": "https"},
            timeout=EVENT_TIMEOUT,
        )
        assert response.status_code == 201, response.text
        addresses.add(address)
    return addresses


def reaches(deployment, host: str, target: str, port: int) -> bool:
    """Whether `host` can open a TCP connection to target:port (a probe run inside its namespace)."""
    probe = f"import socket; socket.create_connection(({target!r}, {port}), timeout=3).close()"
    done = deployment.hosts[host].namespace.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
    return done.returncode == 0


# --------------------------------------------------------------------------------------------------------------
# The scenarios


def test_killing_a_web_host_mid_load_loses_no_acknowledged_write(deployment):
    web1, web2 = deployment.web_urls
    first = last_email_id(deployment)
    load = Load(deployment.web_urls).start()
    try:
        load.wait_answered(30, host=web1)
        load.wait_answered(30, host=web2)
        deployment.hosts["web1"].kill()  # its processes die with their requests in flight
        load.epoch = 1
        load.wait_answered(60, epoch=1, host=web2)
    finally:
        load.stop()
    print(f"\nweb host killed mid-load: {load.summary()}")
    assert not load.errors(), load.errors()[:5]
    assert load.answered(epoch=1, host=web1) == 0  # it really was gone
    with load.lock:
        assert any(o.status is None and o.host == web1 for o in load.outcomes)  # and the clients met it
    assert_patients_exist(deployment, load.created)
    assert_every_email_delivered_once(deployment, load.registered, first)
    deployment.hosts["web1"].start()  # back, for the next scenarios
    assert requests.get(web1 + "/readyz", timeout=EVENT_TIMEOUT).status_code == 200


def test_killing_the_worker_mid_send_delivers_every_email_once(deployment):
    sink, first = deployment.sink, last_email_id(deployment)
    held_before, dropped_before = len(sink.held), len(sink.dropped)
    sink.hold()
    try:
        registered = register(deployment, 8)
        wait_until(lambda: len(sink.held) > held_before, EVENT_TIMEOUT, "the worker never sent a message")
        deployment.hosts["worker"].kill()  # mid-send: the sink has the message's DATA and has not answered
        # The sink sees each held message's connection go before it lets them through: none of them was taken.
        wait_until(
            lambda: len(sink.dropped) - dropped_before == len(sink.held) - held_before,
            EVENT_TIMEOUT,
            "the sink never saw the killed worker's connections go",
        )
    finally:
        sink.release()
    assert len(sink.held) > held_before
    pending = sql(deployment, "SELECT count(*) FROM emails_email WHERE status = 'pending'")[0][0]
    assert pending > 0  # what the killed worker was sending, and what it had not taken yet
    deployment.hosts["worker"].start()
    total = assert_every_email_delivered_once(deployment, registered, first)
    print(
        f"\nworker killed mid-send: {len(sink.held) - held_before} held and dropped, {pending} pending; "
        f"all {total} emails delivered once"
    )


def test_pgbouncer_restarted_while_the_smtp_server_takes_a_message_sends_it_once(deployment):
    """The worker's database connection goes while the sink holds the message's DATA unanswered; the sink then
    takes it (250). The row cannot be marked sent on the lost connection: it must be recorded on a new one, or
    the outbox would send the message again."""
    sink, first = deployment.sink, last_email_id(deployment)
    held_before, dropped_before = len(sink.held), len(sink.dropped)
    sink.hold()
    try:
        registered = register(deployment, 4)
        wait_until(lambda: len(sink.held) > held_before, EVENT_TIMEOUT, "the worker never sent a message")
        deployment.restart_pgbouncer()  # the worker's connection, holding the row lock, is gone
    finally:
        sink.release()
    total = assert_every_email_delivered_once(deployment, registered, first)
    # The held messages were taken (250), not dropped: the worker's SMTP client waited (EMAIL_TIMEOUT), so
    # each was accepted after its worker had lost the database connection: the case under test.
    assert len(sink.dropped) == dropped_before, sink.dropped[dropped_before:]
    print(f"\nPgBouncer restarted mid-send: {len(sink.held) - held_before} held, all {total} emails delivered once")


def test_restarting_pgbouncer_mid_load_the_web_hosts_recover(deployment):
    web1, web2 = deployment.web_urls
    first = last_email_id(deployment)
    load = Load(deployment.web_urls).start()
    try:
        load.wait_answered(20, host=web1)
        load.wait_answered(20, host=web2)
        load.epoch = 1
        deployment.restart_pgbouncer()  # returns once a new connection through it answers SELECT 1
        load.epoch = 2
        load.wait_answered(40, epoch=2, host=web1)
        load.wait_answered(40, epoch=2, host=web2)
    finally:
        load.stop()
    down = len(load.errors()) - len(load.errors(epoch=2))
    print(f"\nPgBouncer restarted mid-load: {load.summary()}; 5xx in flight or sent while it was down: {down}")
    assert not load.errors(epoch=2), load.errors(epoch=2)[:5]  # everything sent after it was back succeeded
    with load.lock:
        failed_after = [o for o in load.outcomes if o.epoch == 2 and (o.status is None or o.status >= 500)]
    assert not failed_after, failed_after[:5]
    assert_patients_exist(deployment, load.created)
    # Every email arrives exactly once: a send whose database connection PgBouncer dropped after the SMTP
    # server took the message records it as sent on a new connection once PgBouncer is back
    # (emails.services.email_sent_record_on_new_connection), so the sweep does not send it again.
    total, doubled = emails_delivered(deployment, load.registered, first)
    print(f"emails: {total}, delivered twice across the PgBouncer restart: {len(doubled)}")
    assert total and not doubled, doubled


def test_worker_cut_off_from_redis_for_thirty_seconds(deployment):
    worker, redis_address = deployment.hosts["worker"], deployment.address("redis")
    first = last_email_id(deployment)
    began = time.monotonic()
    worker.namespace.block(redis_address)
    try:
        assert not reaches(deployment, "worker", redis_address, multihost.REDIS_PORT)  # the cut is real
        assert reaches(deployment, "web1", redis_address, multihost.REDIS_PORT)  # and only the worker's
        registered = register(deployment, 8)  # the web hosts queue them: Redis is up for them
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))  # the outage itself, not a wait
        with deployment.sink.lock:
            arrived = {to for m in deployment.sink.messages for to in m.to} & registered
        assert not arrived, f"sent during the cut, so the worker was not cut off: {arrived}"
    finally:
        worker.namespace.unblock(redis_address)
        cut = time.monotonic() - began
    total = assert_every_email_delivered_once(deployment, registered, first)
    restarts = {name: p.restarts for name, p in worker.processes.items()}
    print(
        f"\nworker cut from Redis for {cut:.0f} s: {len(registered)} emails queued meanwhile, {total} in all, each "
        f"delivered once; worker restarts {restarts}"
    )


def test_the_deployment_is_what_it_says(deployment):
    """Each host runs what it should, in its own namespace, and the application reaches PostgreSQL only through
    PgBouncer in session mode."""
    for name, host in deployment.hosts.items():
        assert host.address.startswith(deployment.network.prefix + ".")
        assert host.namespace.pids(), f"{name} runs nothing"
    clients = sql(
        deployment, "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE datname = %s", multihost.DB_NAME
    )
    addresses = {host for (host,) in clients if host}
    assert addresses <= {deployment.address("db"), deployment.network.address}  # PgBouncer, and this check
    assert "pool_mode = session" in (deployment.work_dir / "pgbouncer.ini").read_text()
