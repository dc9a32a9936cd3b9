"""One side's cost per request inside its own process (no network): `python -m bench.inprocess project|seed`.

Run by bench/seed_compare.py in a child with that side's settings and database. Calls the WSGI
application through Django's test client with a Host header, and prints one JSON line: the median time
of an authed `GET /accounts/user/`, and the SQL statements of an authed GET, a rotating refresh and a
login. The project's statements are counted at the database driver (tenants/postgresql_backend: its
`SET search_path` and health checks too); the seed sends only what Django logs, counted by Django.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

HOST = {"project": "demo.localhost", "seed": "localhost"}
LOGIN = {"email": "admin@demo.example", "password": "demo-admin-pass-1"}


def main(side: str, requests: int) -> None:
    import django

    if side == "project":
        from django.conf import settings

        django.setup()
        settings.DB_STATEMENT_COUNTER = True  # before the first connection is made
        from tenants.postgresql_backend.base import statements_sent

        def counted(call):
            before = statements_sent()
            response = call()
            return response, statements_sent() - before
    else:
        django.setup()
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        def counted(call):
            with CaptureQueriesContext(connection) as queries:
                response = call()
            return response, len(queries)

    from django.db import connections
    from django.test import Client

    connections.close_all()
    client = Client(HTTP_HOST=HOST[side])

    def login():
        return client.post("/accounts/login/", LOGIN, content_type="application/json")

    login()  # a first login may upgrade the stored hash; not the steady state
    response, login_statements = counted(login)
    assert response.status_code == 200, response.content
    access, refresh = response.json()["access"], response.json()["refresh"] or client.cookies["hospital-refresh"].value
    client.cookies.clear()  # Bearer only, as the load client does

    def get():
        return client.get("/accounts/user/", HTTP_AUTHORIZATION=f"Bearer {access}")

    for _ in range(20):
        assert get().status_code == 200
    response, get_statements = counted(get)
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        get()
        times.append(time.perf_counter() - began)

    def rotate():
        return client.post("/accounts/token/refresh/", {"refresh": refresh}, content_type="application/json")

    response, refresh_statements = counted(rotate)
    assert response.status_code == 200, response.content
    print(
        json.dumps(
            {
                "side": side,
                "get_ms": statistics.median(times) * 1000,
                "get_statements": get_statements,
                "refresh_statements": refresh_statements,
                "login_statements": login_statements,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 500)
