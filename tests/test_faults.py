"""Surviving faults: PostgreSQL restarts under a running web server with persistent connections."""

from pathlib import Path

import pytest
from django.db import connections

from devtools import postgres
from tests.conftest import database_url_of
from tests.processes import WebServer
from tests.support import Api


def embedded_data_dir() -> Path | None:
    """The embedded server's data directory (its socket lives there), or None for another server."""
    settings_dict = connections["default"].settings_dict
    host = settings_dict["HOST"] or settings_dict["OPTIONS"].get("host", "")
    return postgres.data_dir_of(host) if host.startswith("/") else None


def test_requests_succeed_after_postgres_restarts_without_restarting_the_app(broker, user_a, hospital_a):
    data_dir = embedded_data_dir()
    if data_dir is None:
        pytest.skip("restarting PostgreSQL needs the embedded server of make test (DATABASE_URL is another one)")
    server = WebServer(
        env={
            "DATABASE_URL": database_url_of(connections["default"].settings_dict),
            "CELERY_BROKER_URL": broker.url,
            "DB_CONN_MAX_AGE": "60",
        }
    )
    server.start()
    try:
        api = Api(server.url, f"{hospital_a.slug}.localhost")
        access = api.login(user_a.email).json()["access"]
        assert api.get("/accounts/user/", token=access).status_code == 200  # a persistent connection now
        postgres.restart(data_dir)
        connections.close_all()  # this process's own connection died with the server too
        for _ in range(3):  # the next requests, on the same web server process
            response = api.get("/accounts/user/", token=access)
            assert response.status_code == 200, response.text
        assert api.login(user_a.email).status_code == 200
    finally:
        server.stop()
