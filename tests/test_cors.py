"""CORS and CSRF for hospital frontends: each hospital's frontend origin may call its own hospital's API only."""

import pytest

from core.cors import origin_of
from core.links import hospital_link
from tenants.services import hospital_reactivate, hospital_suspend
from tests.support import PASSWORD

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, x-csrftoken"}


def frontend(hospital) -> str:
    return origin_of(hospital_link(hospital, ""))  # http://alpha.localhost:8000 in the tests


def test_preflight_from_a_hospitals_frontend_is_allowed_on_its_own_api_only(api_a, api_b, hospital_a):
    origin = frontend(hospital_a)
    own = api_a.request("OPTIONS", "/accounts/login/", headers={"Origin": origin, **PREFLIGHT})
    assert own.status_code == 200
    assert own.headers["Access-Control-Allow-Origin"] == origin
    assert own.headers["Access-Control-Allow-Credentials"] == "true"
    assert "x-csrftoken" in own.headers["Access-Control-Allow-Headers"]
    assert "POST" in own.headers["Access-Control-Allow-Methods"]

    other = api_b.request("OPTIONS", "/accounts/login/", headers={"Origin": origin, **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Credentials" not in other.headers


def test_credentialed_request_gets_cors_headers_from_its_own_hospital_only(api_a, api_b, hospital_a, user_a, user_b):
    origin = frontend(hospital_a)
    token_a = api_a.login(user_a.email).json()["access"]
    own = api_a.get("/accounts/user/", token=token_a, headers={"Origin": origin})
    assert own.status_code == 200
    assert own.headers["Access-Control-Allow-Origin"] == origin
    assert own.headers["Access-Control-Allow-Credentials"] == "true"
    assert "origin" in own.headers["Vary"].lower()
    # The frontend may read the request id for its error reports.
    assert "x-request-id" in own.headers["Access-Control-Expose-Headers"].lower()

    token_b = api_b.login(user_b.email).json()["access"]
    other = api_b.get("/accounts/user/", token=token_b, headers={"Origin": origin})
    assert other.status_code == 200  # the server answers; the browser hides it from A's frontend
    assert "Access-Control-Allow-Origin" not in other.headers


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://alpha.localhost:8001",
        "https://alpha.localhost:8000",
        "http://localhost:8000",
        "null",
    ],
)
def test_no_other_origin_is_allowed(api_a, hospital_a, origin):
    assert frontend(hospital_a) == "http://alpha.localhost:8000"  # what the near misses are near to
    response = api_a.request("OPTIONS", "/accounts/login/", headers={"Origin": origin, **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_platform_api_allows_no_frontend(api_for, hospital_a):
    response = api_for(None).request(
        "OPTIONS", "/accounts/login/", headers={"Origin": frontend(hospital_a), **PREFLIGHT}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_suspended_hospitals_403_is_readable_by_its_frontend(api_a, hospital_a):
    """The frontend can tell its users the hospital is suspended, instead of seeing a network error."""
    hospital_suspend(hospital=hospital_a)
    try:
        response = api_a.get("/accounts/user/", headers={"Origin": frontend(hospital_a)})
        assert response.status_code == 403 and response.json()["code"] == "hospital_suspended"
        assert response.headers["Access-Control-Allow-Origin"] == frontend(hospital_a)
        preflight = api_a.request("OPTIONS", "/accounts/login/", headers={"Origin": frontend(hospital_a), **PREFLIGHT})
        assert preflight.headers["Access-Control-Allow-Origin"] == frontend(hospital_a)
    finally:
        hospital_reactivate(hospital=hospital_a)


def test_cookie_writes_from_the_hospital_frontend_pass_csrf_and_others_do_not(api_a, user_a, hospital_a):
    api_a.login(user_a.email, PASSWORD)  # access cookie + csrftoken
    own = api_a.patch("/accounts/user/", json={"last_name": "Frontend"}, headers={"Origin": frontend(hospital_a)})
    assert own.status_code == 200, own.text
    foreign = api_a.patch("/accounts/user/", json={"last_name": "Evil"}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403, foreign.text
