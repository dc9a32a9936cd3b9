"""A bounded concurrent load: 50 clients for 30 s across three hospitals; no 5xx, no cross-hospital answer.

No verdict on speed: each request may take up to the client's generous timeout (tests.support.Api),
and every one sent must be answered. Throughput figures are bench/'s (make bench, bench-patients).

Run twice: against the suite's threaded server (in this process) and against
gunicorn as production runs it (config/gunicorn.py, two worker processes).
LOAD_SECONDS and LOAD_CLIENTS change the size (e.g. LOAD_SECONDS=5 while developing).
"""

import os
import random
import threading
import time
from collections import Counter

import pytest
import requests
from django.db import connections
from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from hospitals import services
from staff import services as staff_services
from staff.models import StaffMember
from tenants.services import hospital_create
from tests.conftest import database_url_of
from tests.processes import Gunicorn
from tests.support import PASSWORD, Api, unique_email

SECONDS = float(os.environ.get("LOAD_SECONDS", "30"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "50"))


def seed(hospital, prefix: str) -> list[dict]:
    """Two staff members (one admin) and five patients whose MRNs carry the hospital's prefix."""
    people = []
    with tenant_context(hospital):
        for role in (StaffMember.Role.HOSPITAL_ADMIN, StaffMember.Role.NURSE):
            user = user_create_verified(hospital=hospital, email=unique_email(f"load-{prefix}"), password=PASSWORD)
            people.append({"email": user.email, "staff": staff_services.staff_member_create(user=user, role=role)})
        for i in range(5):
            services.patient_create(
                created_by=people[0]["staff"],
                mrn=f"{prefix}-{i}-{unique_email()[:8]}",
                first_name="Load",
                last_name=f"Test{i}",
                date_of_birth="1975-03-04",
            )
    return people


@pytest.fixture(scope="module")
def hospitals(hospital_a, hospital_b) -> dict:
    """slug -> (hospital, seeded staff), the same for every server under load."""
    gamma = hospital_create(
        name="Gamma General", slug="gamma-load", admin_email=unique_email(), admin_password=PASSWORD
    )
    return {h.slug: (h, seed(h, h.slug.upper())) for h in (hospital_a, hospital_b, gamma)}


@pytest.fixture(scope="module")
def gunicorn_url(django_db_setup, broker, mail_sink):
    server = Gunicorn(
        env={
            "DATABASE_URL": database_url_of(connections["default"].settings_dict),
            "CELERY_BROKER_URL": broker.url,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(mail_sink.port),
            "WEB_CONCURRENCY": "2",
        }
    )
    server.start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("server", ["server_url", "gunicorn_url"], ids=["threaded", "gunicorn"])
def test_fifty_clients_for_thirty_seconds(request, server, hospitals):
    server_url = request.getfixturevalue(server)
    stats, problems, lock = Counter(), [], threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(number: int) -> None:
        rng = random.Random(number)
        slug = rng.choice(list(hospitals))
        person = rng.choice(hospitals[slug][1])
        api = Api(server_url, f"{slug}.localhost")
        token = None
        while time.monotonic() < deadline:
            try:
                kind, response, wrong = one_request(api, rng, person, slug, token)
            except requests.RequestException as exc:  # unanswered: a failure, however slow the machine
                with lock:
                    stats["unanswered"] += 1
                    problems.append((slug, "unanswered", type(exc).__name__, str(exc)[:200]))
                continue
            if kind == "login" and response.status_code == 200:
                token = response.json()["access"]
            with lock:
                stats[kind] += 1
                stats[response.status_code] += 1
                if response.status_code >= 500 or wrong:
                    problems.append((slug, kind, response.status_code, response.text[:200]))

    def one_request(api, rng, person, slug, token):
        wrong = False
        if token is None or rng.random() < 0.1:
            response = api.post("/accounts/login/", json={"email": person["email"], "password": PASSWORD})
            kind = "login"
            if response.status_code == 200:
                wrong = response.json()["user"]["hospital"] != slug
        elif rng.random() < 0.5:
            response, kind = api.get("/accounts/user/", token=token), "user"
            wrong = response.status_code == 200 and response.json()["hospital"] != slug
        else:
            response, kind = api.get("/api/patients/?page_size=50", token=token), "patients"
            # Other tests add patients to these hospitals too; what must never appear
            # is a patient seeded into another hospital.
            foreign = tuple(f"{other.upper()}-" for other in hospitals if other != slug)
            wrong = response.status_code == 200 and any(
                p["mrn"].startswith(foreign) for p in response.json()["results"]
            )
        return kind, response, wrong

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # each ends at the deadline, its last request answered or timed out
    elapsed = time.monotonic() - started
    total = stats["login"] + stats["user"] + stats["patients"]
    print(
        f"\nload ({server}): {CLIENTS} clients, {elapsed:.1f} s, {total} requests ({total / elapsed:.1f}/s): "
        f"{stats['login']} logins, {stats['user']} profile reads, {stats['patients']} patient lists; "
        f"statuses {dict((k, v) for k, v in stats.items() if isinstance(k, int))}"
    )
    assert not problems, problems[:5]  # no 5xx, no foreign answer, nothing unanswered
    assert total >= CLIENTS  # every client got through at least once
    assert not any(isinstance(k, int) and k >= 500 for k in stats)
