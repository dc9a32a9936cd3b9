"""`make run`'s processes hold a bounded number of PostgreSQL connections, whatever the traffic.

The web server is started exactly as `make run` starts it (devtools.commands, as scripts/devstack.py: the same
command line, environment and settings module), and so are its Celery worker and beat; only
the database, broker, mail sink and the sizes below come from the test. Each process names
itself to PostgreSQL through its DATABASE_URL (`application_name`), so its backends are
counted apart from this process's and the suite's other servers'.

runserver with persistent connections (CONN_MAX_AGE=60) fails here: it keeps one connection
per request thread, and a thread per request, until PostgreSQL refuses clients.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.db import connection, connections
from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from devtools import commands  # the code path of `make run` itself
from devtools.processes import Child, spawn, stop_children
from devtools.waits import free_port
from hospitals import services
from staff import services as staff_services
from staff.models import StaffMember
from tenants.services import hospital_host
from tests.conftest import database_url_of
from tests.processes import READY_TIMEOUT, RedisBroker, wait_until
from tests.support import PASSWORD, Api, unique_email

WORKERS, THREADS = 2, 4
# gthread runs requests on a fixed pool of THREADS threads per process; each thread keeps
# one persistent connection (CONN_MAX_AGE) and nothing else in the process opens one.
WEB_BOUND = WORKERS * THREADS
WORKER_CONCURRENCY = commands.worker_concurrency()
# Each pool thread keeps one connection; +1 for the worker's main thread, whose startup
# (Django's checks, the tenant-aware app) may keep one open.
WORKER_BOUND = WORKER_CONCURRENCY + 1
# Beat only publishes (its schedule is a file): none of its own, +1 for the same startup allowance.
BEAT_BOUND = 0 + 1
SEQUENTIAL, CONCURRENT, CLIENTS = 3000, 2000, 16
LOGIN_SHARE, REFRESH_SHARE = 0.01, 0.05  # Argon2 makes logins ~100x dearer than reads
APP = {"web": "make-run-web", "worker": "make-run-worker", "beat": "make-run-beat"}


def backends() -> Counter:
    """Backends of the test database per process of this module, by their application_name."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = ANY(%s) GROUP BY 1",
            [list(APP.values())],
        )
        return Counter(dict(cursor.fetchall()))


class Peaks:
    """Samples pg_stat_activity in a thread of its own and keeps each process's peak."""

    def __init__(self) -> None:
        self.peak: Counter = Counter()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        try:
            while not self.done.wait(0.2):
                self.peak |= backends()
        finally:
            connection.close()

    def __enter__(self) -> Peaks:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self.peak |= backends()


class Process:
    """A child of `make run`'s command line, its output in a file, stopped with SIGTERM like devstack does."""

    def __init__(self, argv: list[str], env: dict, log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = spawn(argv, env=env, stdout=out, stderr=subprocess.STDOUT)  # its own group, as devstack

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_children([Child("test child", self.proc)], signal.SIGTERM)


@pytest.fixture(scope="module")
def make_run(django_db_setup, mail_sink, tmp_path_factory):
    """Web server, Celery worker and beat as `make run` starts them, on the test database and a private Redis."""
    broker = RedisBroker()  # not the suite's: its worker would take these tasks
    broker.start()
    logs = tmp_path_factory.mktemp("make-run")
    database = database_url_of(connections["default"].settings_dict)
    # The suite's own settings module is not `make run`'s: leave it out so devstack picks its own.
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environ.update(
        CELERY_BROKER_URL=broker.url,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mail_sink.port),
        EMAIL_OUTBOX_SWEEP_SECONDS="1",  # beat sends work every second
        WEB_CONCURRENCY=str(WORKERS),
        GUNICORN_THREADS=str(THREADS),
    )

    def env_of(role: str, make_env) -> dict:
        separator = "&" if "?" in database else "?"
        return make_env({**environ, "DATABASE_URL": f"{database}{separator}application_name={quote(APP[role])}"})

    web_env = env_of("web", commands.web_env)
    assert web_env["DJANGO_SETTINGS_MODULE"] == "config.settings.local"
    port = free_port()
    processes = {"web": Process(commands.web_command(port), web_env, logs / "web.log")}
    for name, argv in commands.celery_commands(logs / "celerybeat-schedule").items():
        role = name.split()[-1]
        processes[role] = Process(argv, env_of(role, commands.django_env), logs / f"{role}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _answers(url) or _died(processes),
            READY_TIMEOUT,
            lambda: f"`make run`'s web server did not answer:\n{processes['web'].log.read_text()[-3000:]}",
        )
        assert not _died(processes), _died(processes)
        yield url, processes
    finally:
        for process in processes.values():
            process.stop()
        broker.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _died(processes: dict) -> str:
    return "".join(f"{name} exited:\n{p.log.read_text()[-3000:]}" for name, p in processes.items() if not p.alive())


@pytest.fixture(scope="module")
def staff(hospital_a) -> list[str]:
    """Four hospital admins of A (they may list patients) and a few patients to list."""
    emails = []
    with tenant_context(hospital_a):
        for _ in range(4):
            user = user_create_verified(hospital=hospital_a, email=unique_email("run"), password=PASSWORD)
            member = staff_services.staff_member_create(user=user, role=StaffMember.Role.HOSPITAL_ADMIN)
            emails.append(user.email)
        for i in range(5):
            services.patient_create(
                created_by=member,
                mrn=f"RUN-{i}-{unique_email()[:8]}",
                first_name="Run",
                last_name=f"Test{i}",
                date_of_birth="1980-01-02",
            )
    return emails


class Client:
    """One user's session: mostly reads, now and then a token refresh, rarely a login."""

    def __init__(self, url: str, host: str, email: str, seed: int) -> None:
        self.api, self.email, self.rng = Api(url, host), email, random.Random(seed)
        self.token: str | None = None

    def step(self) -> tuple[str, requests.Response]:
        roll = self.rng.random()
        if self.token is None or roll < LOGIN_SHARE:
            kind, response = (
                "login",
                self.api.post("/accounts/login/", json={"email": self.email, "password": PASSWORD}),
            )
        elif roll < LOGIN_SHARE + REFRESH_SHARE:
            kind, response = "refresh", self.api.post("/accounts/token/refresh/", json={})
        elif roll < 0.5:
            kind, response = "profile", self.api.get("/accounts/user/", token=self.token)
        else:
            kind, response = "patients", self.api.get("/api/patients/", token=self.token)
        if kind in ("login", "refresh") and response.status_code == 200:
            self.token = response.json()["access"]
        return kind, response


def register(url: str, host: str, email: str) -> int:
    return (
        Api(url, host)
        .post("/accounts/registration/", json={"email": email, "password1": PASSWORD, "password2": PASSWORD})
        .status_code
    )


def drive(clients: list[Client], total: int) -> Counter:
    """`total` requests shared by the clients, each in its own thread; (kind, status) counts."""
    counts, lock = Counter(), threading.Lock()
    share = [total // len(clients) + (i < total % len(clients)) for i in range(len(clients))]

    def run(client: Client, n: int) -> None:
        for _ in range(n):
            try:
                kind, response = client.step()
                outcome = kind, response.status_code
            except requests.RequestException as exc:  # unanswered (runserver resets connections under load)
                outcome = "unanswered", type(exc).__name__
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=run, args=(c, n)) for c, n in zip(clients, share, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def test_make_run_serves_with_bounded_database_connections(make_run, staff, hospital_a, mail_sink):
    url, processes = make_run
    host = hospital_host(hospital_a.slug)
    with Peaks() as peaks:
        sequential = drive([Client(url, host, staff[0], seed=1)], SEQUENTIAL)
        concurrent_clients = [Client(url, host, staff[i % len(staff)], seed=10 + i) for i in range(CLIENTS)]
        # Registrations queue mail at once: work for every thread of the worker, meanwhile beat sends sweeps.
        registered = [unique_email("run-mail") for _ in range(CLIENTS)]
        answers = []
        registrations = [
            threading.Thread(target=lambda email=email: answers.append(register(url, host, email)))
            for email in registered
        ]
        for thread in registrations:
            thread.start()
        concurrent = drive(concurrent_clients, CONCURRENT)
        for thread in registrations:
            thread.join()
        assert answers == [201] * CLIENTS, answers
        for email in registered:
            mail_sink.wait_for(email, timeout=120)
    counts = sequential + concurrent
    print(
        f"\nmake run: {sum(sequential.values())} sequential + {sum(concurrent.values())} concurrent "
        f"({CLIENTS} clients) requests {dict(counts)}; peak backends {dict(peaks.peak)}, bounds "
        f"web {WEB_BOUND}, worker {WORKER_BOUND}, beat {BEAT_BOUND}"
    )
    assert sum(sequential.values()) == SEQUENTIAL and sum(concurrent.values()) == CONCURRENT
    assert {status for _, status in counts} == {200}, dict(counts)
    assert {kind for kind, _ in counts} == {"login", "refresh", "profile", "patients"}
    assert not _died(processes), _died(processes)
    assert 0 < peaks.peak[APP["web"]] <= WEB_BOUND, dict(peaks.peak)
    # The worker did its work (every mail arrived above); its connections live as long as a task, so a sample
    # may or may not catch one: the bound must hold for whatever was seen.
    assert peaks.peak[APP["worker"]] <= WORKER_BOUND, dict(peaks.peak)
    assert peaks.peak[APP["beat"]] <= BEAT_BOUND, dict(peaks.peak)


def test_make_run_serves_the_admin_with_its_css(make_run):
    """gunicorn serves no static files itself: whitenoise does, from the apps (no collectstatic under `make run`)."""
    url, _ = make_run
    login = requests.get(url + "/admin/login/", headers={"Host": "localhost"}, timeout=120)
    assert login.status_code == 200 and "/static/admin/css/base.css" in login.text
    css = requests.get(url + "/static/admin/css/base.css", headers={"Host": "localhost"}, timeout=120)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "body" in css.text
