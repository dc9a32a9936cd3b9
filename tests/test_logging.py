"""Logs: one JSON line per request and per task run, carrying the request id; no secret or personal data in them.

Read from the real output of a `runserver` process and of the suite's Celery worker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connections
from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from staff.models import StaffMember
from staff.services import staff_member_create
from tenants.services import hospital_host
from tests.conftest import database_url_of
from tests.processes import REPO, WebServer, wait_until
from tests.support import ANSWER_TIMEOUT, PASSWORD, Api, unique_email


@pytest.fixture(scope="module")
def web(django_db_setup, broker):
    server = WebServer(
        env={
            "DATABASE_URL": database_url_of(connections["default"].settings_dict),
            "CELERY_BROKER_URL": broker.url,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
    )
    server.start()
    yield server
    server.stop()


def json_lines(log: Path) -> list[dict]:
    """Every JSON object line of a log (runserver and Celery print a few plain banner lines at start)."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def request_lines(log: Path, request_id: str) -> list[dict]:
    return [
        line for line in json_lines(log) if line["logger"] == "hospital.request" and line["request_id"] == request_id
    ]


def new_id() -> str:
    return f"lb-{uuid.uuid4().hex}"


def test_each_request_logs_one_line_with_its_id_hospital_user_status_and_duration(web, hospital_a):
    admin = user_create_verified(hospital=hospital_a, email=unique_email("logs"), password=PASSWORD)
    with tenant_context(hospital_a):
        staff_member_create(user=admin, role=StaffMember.Role.HOSPITAL_ADMIN)
    api = Api(web.url, hospital_host(hospital_a.slug))
    ids = {name: new_id() for name in ("login", "wrong", "user", "create", "by_name", "by_mrn")}

    wrong = api.post(
        "/accounts/login/",
        json={"email": admin.email, "password": "not-the-Password-1"},
        headers={"X-Request-ID": ids["wrong"]},
    )
    assert wrong.status_code == 400
    login = api.post(
        "/accounts/login/", json={"email": admin.email, "password": PASSWORD}, headers={"X-Request-ID": ids["login"]}
    )
    assert login.status_code == 200 and login.headers["X-Request-ID"] == ids["login"]
    access, refresh = login.json()["access"], api.cookie("hospital-refresh")
    assert access and refresh

    user = api.get("/accounts/user/", token=access, headers={"X-Request-ID": ids["user"]})
    assert user.status_code == 200 and user.headers["X-Request-ID"] == ids["user"]

    mrn, last_name = f"MRN{uuid.uuid4().hex[:10]}", f"Zed{uuid.uuid4().hex[:8]}"
    created = api.post(
        "/api/patients/",
        token=access,
        headers={"X-Request-ID": ids["create"]},
        json={"mrn": mrn, "first_name": "Quentin", "last_name": last_name, "date_of_birth": "1970-03-04"},
    )
    assert created.status_code == 201, created.text
    for name, term in (("by_name", last_name), ("by_mrn", mrn)):
        found = api.get(f"/api/patients/?search={term}", token=access, headers={"X-Request-ID": ids[name]})
        assert found.status_code == 200 and found.json()["count"] == 1

    lines = {name: request_lines(web.log, request_id) for name, request_id in ids.items()}
    assert all(len(found) == 1 for found in lines.values()), lines
    line = lines["user"][0]
    assert line["method"] == "GET" and line["path"] == "/accounts/user/" and line["status"] == 200
    assert line["schema"] == hospital_a.schema_name and line["user_id"] == admin.pk
    assert line["host"] == api.host and line["remote_addr"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["time"]
    assert lines["login"][0]["status"] == 200 and lines["wrong"][0]["status"] == 400
    assert lines["by_name"][0]["path"] == "/api/patients/"  # no query string
    assert lines["by_name"][0]["user_id"] == admin.pk and lines["create"][0]["status"] == 201

    text = web.log.read_text()
    assert '"GET /accounts/user/ HTTP/1.1"' not in text  # runserver's own access line is gone
    for secret in (PASSWORD, "not-the-Password-1", access, refresh, admin.email, mrn, last_name, "Quentin", "search="):
        assert secret not in text, f"{secret!r} is in the log"


def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one(web, hospital_a):
    api = Api(web.url, hospital_host(hospital_a.slug))
    for sent in (None, "x" * 129, "has spaces; and <markup>"):
        response = api.get("/accounts/user/", headers={"X-Request-ID": sent} if sent else {})
        assert response.status_code == 401
        given = response.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", given)
        [line] = request_lines(web.log, given)
        assert line["status"] == 401 and line["user_id"] is None and line["schema"] == hospital_a.schema_name
    assert "markup" not in web.log.read_text()


def test_unknown_hosts_and_secret_links_are_logged_without_their_secrets(web, hospital_a):
    response = Api(web.url, "nosuch.localhost").get("/accounts/user/", headers={"X-Request-ID": "unknown-host"})
    assert response.status_code == 404 and response.headers["X-Request-ID"] == "unknown-host"
    [line] = request_lines(web.log, "unknown-host")
    assert line["schema"] is None and line["status"] == 404 and line["host"] == "nosuch.localhost"

    token, api = uuid.uuid4().hex, Api(web.url, hospital_host(hospital_a.slug))
    api.get(f"/accounts/invitations/accept/{token}/", headers={"X-Request-ID": "link"})
    api.get(f"/accounts/password/reset/confirm/MQ/{token}/", headers={"X-Request-ID": "link"})
    paths = {line["path"] for line in request_lines(web.log, "link")}
    assert paths == {
        "/accounts/invitations/accept/<str:token>/",
        "/accounts/password/reset/confirm/<str:uid>/<str:token>/",
    }
    assert token not in web.log.read_text()


def test_a_task_queued_by_a_request_logs_a_line_with_that_request_id(web, hospital_a, celery_worker, mail_sink):
    email, request_id = unique_email("logtask"), new_id()
    response = Api(web.url, hospital_host(hospital_a.slug)).post(
        "/accounts/registration/",
        json={"email": email, "password1": PASSWORD, "password2": PASSWORD},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 201, response.text
    mail_sink.wait_for(email)

    def task_lines() -> list[dict]:
        return [
            line
            for line in json_lines(celery_worker.log)
            if line["logger"] == "hospital.task" and line["request_id"] == request_id
        ]

    wait_until(task_lines, ANSWER_TIMEOUT, lambda: "no task line with the request's id")
    [line] = task_lines()
    assert line["task"] == "emails.tasks.email_send_task" and line["state"] == "SUCCESS"
    assert line["schema"] == hospital_a.schema_name and line["duration_ms"] >= 0 and line["task_id"]
    worker_log = celery_worker.log.read_text()
    assert email not in worker_log and PASSWORD not in worker_log
    assert " succeeded in " not in worker_log  # Celery's own task lines are replaced by ours


LOG_DATABASE_ERRORS = """
import logging
from django.db import IntegrityError, connection

log = logging.getLogger("hospital.test")
with connection.cursor() as cursor:
    cursor.execute("CREATE TEMP TABLE patient (mrn text UNIQUE, name text NOT NULL CHECK (name <> 'NAME-SECRET'))")
    cursor.execute("INSERT INTO patient VALUES ('MRN-SECRET', 'Quentin')")
for row in ("('MRN-SECRET', 'Quentin')", "('OTHER', 'NAME-SECRET')"):
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO patient VALUES {row}")
    except IntegrityError as exc:
        log.exception("insert failed")  # a traceback, as Django logs a 500
        logging.getLogger("celery.app.trace").error("Task raised unexpected: %r", exc)  # Celery's failure line
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_database_errors_are_logged_without_the_data_they_quote(django_db_setup, log_format):
    """PostgreSQL's DETAIL repeats the offending values (an MRN, a failing row): kept out of every log line."""
    env = {
        **os.environ,
        "LOG_FORMAT": log_format,
        "DATABASE_URL": database_url_of(connections["default"].settings_dict),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", LOG_DATABASE_ERRORS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert log.count("UniqueViolation") >= 1 and log.count("CheckViolation") >= 1, log  # the errors are there
    assert log.count("DETAIL: [redacted]") >= 4, log
    assert "MRN-SECRET" not in log and "NAME-SECRET" not in log, log


def test_hostile_input_is_a_400_and_leaves_no_traceback(web, hospital_a):
    """Issue 11, #5 and #6: nested JSON and impossible filters were 500s with a full traceback logged."""
    api = Api(web.url, hospital_host(hospital_a.slug))
    sent = {
        "deep": ("POST", "/accounts/login/", "[" * 2000 + "]" * 2000),
        "huge": ("POST", "/accounts/login/", '{"email": 1e999999}'),
        "nul": ("GET", "/api/audit/?actor=%00", None),
    }
    for request_id, (method, path, body) in sent.items():
        response = api.request(
            method,
            path,
            data=body,
            headers={"Content-Type": "application/json", "X-Request-ID": f"hostile-{request_id}"},
        )
        assert response.status_code == 400, response.text
        [line] = request_lines(web.log, f"hostile-{request_id}")
        assert line["status"] == 400
    lines = [line for line in json_lines(web.log) if str(line.get("request_id")).startswith("hostile-")]
    assert [line["logger"] for line in lines] == ["hospital.request"] * len(sent), lines  # no error lines
    assert "Traceback" not in json.dumps(lines) and "RecursionError" not in web.log.read_text()
