"""The authenticated request's cost in SQL statements, and the tenant cache that saves most of them.

Statements are counted at the database driver of the server process (config/sqlcount.py, on in the test
settings): every statement sent, Django's own and the ones it does not log (`SET search_path`, a health
check's `SELECT 1`), reported in the response's `X-SQL-Statements`.
"""

import uuid

import pytest
from django.db import connections

from config.sqlcount import HEADER
from tenants.models import Domain
from tenants.services import hospital_create, hospital_host
from tests.conftest import database_url_of
from tests.processes import WebServer
from tests.support import PASSWORD, Api, unique_email

# The steady state of `GET /accounts/user/`: the user with its hospital row and the host check, in one
# statement; `SET search_path` only when the connection's path changes.
AUTHED_GET_BUDGET = 2


def statements(response) -> int:
    return int(response.headers[HEADER])


def test_authed_get_sends_at_most_two_statements(api_a, user_a):
    access = api_a.login(user_a.email).json()["access"]
    counts = []
    for _ in range(6):  # one keep-alive connection: the server's thread and database session stay
        response = api_a.get("/accounts/user/", token=access)
        assert response.status_code == 200, response.text
        assert response.json()["hospital"] == "alpha"
        counts.append(statements(response))
    assert min(counts) >= 1, counts  # the counter sees the user query
    assert max(counts[1:]) <= AUTHED_GET_BUDGET, counts
    assert counts[-1] == 1, counts  # the same schema as the request before: no SET search_path at all


def test_cookie_authed_get_sends_at_most_two_statements(api_a, user_a):
    api_a.login(user_a.email)  # the access cookie, no Bearer header
    counts = [statements(api_a.get("/accounts/user/")) for _ in range(4)]
    assert max(counts[1:]) <= AUTHED_GET_BUDGET, counts


def test_a_switch_of_hospital_costs_no_set_search_path(api_for, hospital_a, hospital_b, user_a, user_b):
    api_a, api_b = api_for(hospital_a), api_for(hospital_b)
    access_a = api_a.login(user_a.email).json()["access"]
    access_b = api_b.login(user_b.email).json()["access"]
    api_a.get("/accounts/user/", token=access_a)  # each client's connection to the server is set up
    api_b.get("/accounts/user/", token=access_b)
    # The user statement names the schema of every table (public): whichever hospital the server's
    # session was on last, the profile is that one statement and no `SET search_path`
    # (tenants/postgresql_backend: schema_qualified_cursor).
    counts = []
    for _ in range(3):
        counts.append(statements(api_a.get("/accounts/user/", token=access_a)))
        counts.append(statements(api_b.get("/accounts/user/", token=access_b)))
    assert counts == [1] * 6, counts


@pytest.fixture
def second_server(broker):
    """A second web process on the test database: its own tenant cache and connections."""
    server = WebServer(
        env={
            "DATABASE_URL": database_url_of(connections["default"].settings_dict),
            "CELERY_BROKER_URL": broker.url,
            "DB_CONN_MAX_AGE": "60",
        }
    )
    server.start()
    yield server
    server.stop()


def test_suspension_and_domain_changes_reach_another_process_at_once(second_server, platform_api):
    slug = "cache-" + uuid.uuid4().hex[:8]
    admin_email = unique_email("admin")
    hospital_create(name="Cache General", slug=slug, admin_email=admin_email, admin_password=PASSWORD)
    host = hospital_host(slug)
    other = Api(second_server.url, host)  # the other process
    access = other.login(admin_email).json()["access"]

    def read():
        return other.get("/accounts/user/", token=access)

    for _ in range(2):
        response = read()
        assert response.status_code == 200, response.text
    assert statements(response) == 1, "the other process serves this host from its cache"

    # Suspended through this process's platform API: the other process refuses at once, cached or not.
    assert platform_api.post(f"/api/platform/hospitals/{slug}/suspend/").status_code == 200
    response = read()
    assert (response.status_code, response.json()["code"]) == (403, "hospital_suspended")
    response = other.post("/accounts/login/", json={"email": admin_email, "password": PASSWORD})
    assert (response.status_code, response.json()["code"]) == (403, "hospital_suspended")

    assert platform_api.post(f"/api/platform/hospitals/{slug}/reactivate/").status_code == 200
    assert read().status_code == 200

    # The host taken away (no service does this yet; the database alone is the truth): unknown at once.
    domain = Domain.objects.get(domain=host)
    domain.domain = f"moved-{slug}.localhost"
    domain.save()
    try:
        response = read()
        assert (response.status_code, response.json()["code"]) == (404, "unknown_host")
    finally:
        domain.domain = host
        domain.save()
    response = read()
    assert response.status_code == 200, response.text
    assert response.json()["hospital"] == slug
