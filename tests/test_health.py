"""/healthz and /readyz: answered on any host, before tenant routing; /readyz follows the database and the broker."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
import requests

from devtools import postgres
from tests.processes import WebServer
from tests.support import ANSWER_TIMEOUT

HOSTS = [
    "localhost",
    "alpha.localhost",
    "no-such-hospital.localhost",
    "10.0.0.7",
    "10.0.0.7:8000",
    "lb-probe.internal",
    "evil.example.com",
]


def probe(
    base_url: str, path: str, *, host: str = "10.0.0.7", method: str = "GET", session: requests.Session | None = None
) -> requests.Response:
    return (session or requests).request(method, base_url + path, headers={"Host": host}, timeout=ANSWER_TIMEOUT)


@pytest.mark.parametrize("host", HOSTS)
def test_probes_answer_on_any_host(server_url, hospital_a, host):
    live = probe(server_url, "/healthz", host=host)
    assert live.status_code == 200, live.text
    assert live.json() == {"status": "ok"}
    ready = probe(server_url, "/readyz", host=host)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "cache": "ok"}}
    assert ready.headers["Cache-Control"] == "no-store"


def test_head_answers_without_a_body(server_url):
    for path in ("/healthz", "/readyz"):
        response = probe(server_url, path, method="HEAD")
        assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_get_405(server_url, path, method):
    response = probe(server_url, path, method=method)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD"


def test_other_paths_still_go_through_tenant_routing(server_url):
    assert probe(server_url, "/healthzz", host="10.0.0.7").json()["code"] == "disallowed_host"


def test_readyz_names_the_broker_while_it_is_down(server_url, broker):
    broker.stop()
    try:
        response = probe(server_url, "/readyz")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["code"] == "not_ready" and "broker" in body["detail"]
        assert body["checks"]["broker"] == "failed" and body["checks"]["database"] == "ok"
        assert probe(server_url, "/healthz").status_code == 200  # alive, just not ready
    finally:
        broker.start()
    response = probe(server_url, "/readyz")
    assert response.status_code == 200, response.text


class ThrowawayPostgres:
    """An embedded PostgreSQL of this test's own in a temporary directory: stopping it disturbs no one."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hospital-test-readyz-"))
        self.pgdata = self.root / "pgdata"
        self.socket_dir = postgres.start(self.pgdata)
        self.url = postgres.url(self.socket_dir, "postgres")

    def stop(self) -> None:
        postgres.stop(self.pgdata, check=True)

    def start(self) -> None:
        postgres.start_again(self.pgdata, self.socket_dir)

    def backends(self) -> set[int]:
        with psycopg.connect(self.url) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchall()
        return {pid for (pid,) in rows}

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def throwaway_postgres():
    server = ThrowawayPostgres()
    yield server
    server.remove()


def test_readyz_follows_the_database_without_restarting_the_app(broker, throwaway_postgres):
    # readyz reads no table, so an empty database will do; the suite's own server is never touched.
    server = WebServer(
        env={"DATABASE_URL": throwaway_postgres.url, "CELERY_BROKER_URL": broker.url, "DB_CONN_MAX_AGE": "60"}
    )
    server.start()
    session = requests.Session()  # keep-alive: one server thread, so one persistent database connection
    try:
        assert probe(server.url, "/readyz", session=session).status_code == 200
        connected = throwaway_postgres.backends()
        for _ in range(5):
            assert probe(server.url, "/readyz", session=session).status_code == 200
        assert throwaway_postgres.backends() == connected, "a probe opened a new database connection"

        throwaway_postgres.stop()
        response = probe(server.url, "/readyz", session=session)
        assert response.status_code == 503, response.text
        body = response.json()
        assert "database" in body["detail"] and body["checks"] == {"database": "failed", "broker": "ok", "cache": "ok"}
        assert probe(server.url, "/healthz", session=session).status_code == 200

        throwaway_postgres.start()
        response = probe(server.url, "/readyz", session=session)
        assert response.status_code == 200, response.text
    finally:
        session.close()
        server.stop()
