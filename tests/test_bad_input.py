"""Bad input gets a clear JSON 4xx, never a 500, and nothing is half-done."""

import json
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django_tenants.utils import tenant_context
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.services import user_create_verified
from staff.models import StaffMember
from staff.services import staff_member_create
from tests.support import PASSWORD, unique_email

User = get_user_model()


def assert_json_error(response, status: int, code: str | None = None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"]
    if code:
        assert body["code"] == code, body
    return body


def test_unknown_hospital_host_is_a_json_404(api_for):
    response = api_for(host="no-such-hospital.localhost").post("/accounts/login/", json={})
    assert_json_error(response, 404, "unknown_host")


# The JSON endpoints anyone may post to, without logging in.
ANONYMOUS_JSON_POSTS = [
    "/accounts/login/",
    "/accounts/registration/",
    "/accounts/password/reset/",
    "/accounts/token/refresh/",
    "/accounts/token/verify/",
    "/accounts/logout/",
]


def test_host_outside_the_platform_is_a_json_400(api_for):
    assert_json_error(api_for(host="evil.example.com").get("/accounts/user/"), 400, "disallowed_host")


def test_unknown_path_and_missing_slash_are_json_404(api_a):
    assert_json_error(api_a.get("/nope/"), 404, "not_found")
    assert_json_error(api_a.post("/accounts/login", json={}), 404, "not_found")


def test_wrong_method_is_a_json_405(api_a):
    assert_json_error(api_a.get("/accounts/login/"), 405)


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/login/",
        "/accounts/registration/",
        "/accounts/password/reset/",
        "/accounts/token/refresh/",
        "/accounts/logout/",
    ],
)
def test_malformed_json_is_a_json_400(api_a, path):
    response = api_a.post(path, data=b'{"email": "x@y.org", "password": ', headers={"Content-Type": "application/json"})
    assert_json_error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "path",
    [*ANONYMOUS_JSON_POSTS, "/accounts/registration/verify-email/", "/accounts/password/reset/confirm/"],
)
@pytest.mark.parametrize("body", [[], "just a string", 42, None])
def test_json_that_is_not_an_object_is_a_json_4xx(api_a, path, body):
    response = api_a.post(path, json=body)
    assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text)
    assert response.json()["detail"]


def test_form_encoded_body_is_a_json_415(api_a):
    assert_json_error(api_a.post("/accounts/login/", data={"email": "a@b.org", "password": "x"}), 415)


def test_missing_fields_are_named(api_a):
    body = assert_json_error(api_a.post("/accounts/registration/", json={}), 400, "invalid")
    assert set(body["fields"]) == {"email", "password1", "password2"}
    body = assert_json_error(api_a.post("/accounts/login/", json={"email": "a@b.org"}), 400, "invalid")
    assert "password" in body["fields"]


def test_invalid_email_and_weak_password_are_refused_and_create_nothing(api_a):
    before = User.objects.count()
    body = assert_json_error(
        api_a.post(
            "/accounts/registration/", json={"email": "not-an-email", "password1": PASSWORD, "password2": PASSWORD}
        ),
        400,
    )
    assert "email" in body["fields"]
    body = assert_json_error(
        api_a.post(
            "/accounts/registration/", json={"email": unique_email(), "password1": "12345678", "password2": "12345678"}
        ),
        400,
    )
    assert "password1" in body["fields"]
    body = assert_json_error(
        api_a.post(
            "/accounts/registration/",
            json={"email": unique_email(), "password1": PASSWORD, "password2": PASSWORD + "x"},
        ),
        400,
    )
    assert "password2" in body["fields"]
    assert User.objects.count() == before


def test_oversized_body_is_a_json_413_and_creates_nothing(api_a):
    email = unique_email("big")
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = api_a.post(
        "/accounts/registration/",
        json={"email": email, "password1": PASSWORD, "password2": PASSWORD, "first_name": padding},
    )
    assert_json_error(response, 413, "body_too_large")
    assert not User.objects.filter(email=email).exists()


def _forged_tokens(user):
    good = AccessToken.for_user(user)
    good["hospital"] = user.hospital_id
    header, payload, _ = str(good).split(".")
    expired = AccessToken.for_user(user)
    expired["hospital"] = user.hospital_id
    expired.set_exp(lifetime=-timedelta(seconds=5))
    claims = dict(good.payload)
    return {
        "garbage": "not-a-jwt",
        "alg_none": jwt.encode(claims, key=None, algorithm="none"),
        "wrong_key": jwt.encode(claims, key="an-attacker-key-that-is-long-enough-32b", algorithm="HS256"),
        "tampered_claims": f"{header}.{jwt.utils.base64url_encode(b'{}').decode()}.{str(good).split('.')[2]}",
        "expired": str(expired),
        "no_hospital_claim": str(AccessToken.for_user(user)),
        "refresh_as_access": str(RefreshToken.for_user(user)),
    }


def test_forged_expired_and_alg_none_tokens_are_401(api_a, user_a):
    for name, token in _forged_tokens(user_a).items():
        response = api_a.get("/accounts/user/", token=token)
        body = assert_json_error(response, 401)
        assert user_a.email not in response.text, name
        assert body["code"] in {"token_not_valid", "bad_authorization_header"}, (name, body)
        refresh = api_a.post("/accounts/token/refresh/", json={"refresh": token})
        assert refresh.status_code == 401, (name, refresh.text)


def test_no_credentials_is_401_not_403(api_a):
    assert_json_error(api_a.get("/accounts/user/"), 401, "not_authenticated")


def test_cookie_writes_need_the_csrf_header(api_a, user_a):
    api_a.login(user_a.email)
    assert_json_error(api_a.patch("/accounts/user/", json={"last_name": "X"}, csrf=False), 403)
    assert api_a.patch("/accounts/user/", json={"last_name": "X"}).status_code == 200
    # Bearer clients have no cookies to forge with, so they need no CSRF header.
    access = api_a.login(user_a.email).json()["access"]
    api_a.session.cookies.clear()
    assert api_a.patch("/accounts/user/", json={"last_name": "Y"}, token=access, csrf=False).status_code == 200


def test_logout_without_a_refresh_token_is_a_clear_401(api_a):
    assert_json_error(api_a.post("/accounts/logout/", json={}), 401, "refresh_missing")  # 401 like dj-rest-auth


# Hostile JSON (issue 11, #5): the parser refuses it for every endpoint, before any view or serializer.
DEEP = "[" * 2000 + "]" * 2000  # deeper than Python's stack: a RecursionError in json
HOSTILE_BODIES = {
    "deep_array": DEEP,
    "very_deep_array": "[" * 100_000 + "]" * 100_000,
    "deep_object": '{"a": ' * 3000 + "1" + "}" * 3000,
    # Parses, but deep enough to reach a serializer's or the renderer's recursion.
    "deep_in_a_field": '{"email": ' + "[" * 900 + "]" * 900 + ', "password": "x", "refresh": 1}',
    "beyond_float_range": '{"email": 1e999999, "password": "x", "refresh": -1e999}',
    "integer_beyond_python_limit": '{"email": ' + "9" * 5000 + ', "password": "x"}',
}


@pytest.mark.parametrize(
    "path",
    ANONYMOUS_JSON_POSTS,
)
@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_hostile_json_is_a_json_400_without_logging_in(api_a, path, name):
    response = api_a.post(path, data=HOSTILE_BODIES[name].encode(), headers={"Content-Type": "application/json"})
    assert_json_error(response, 400, "parse_error")


def test_hostile_json_is_a_json_400_on_the_workspace_and_the_platform(api_for, hospital_a, platform_user):
    admin = user_create_verified(hospital=hospital_a, email=unique_email("deep"), password=PASSWORD)
    with tenant_context(hospital_a):
        staff_member_create(user=admin, role=StaffMember.Role.HOSPITAL_ADMIN)
    api = api_for(hospital_a)
    api.login(admin.email)
    platform = api_for(None)
    platform.login(platform_user.email)
    patient = {"mrn": "DEEP-1", "first_name": "D", "last_name": "E", "date_of_birth": "1990-01-01"}
    cases = [
        (api, "POST", "/api/patients/", DEEP),
        (api, "POST", "/api/patients/", json.dumps(patient)[:-1] + ', "department": 1e999999}'),
        (api, "POST", "/api/departments/", '{"name": "X", "code": "deep-x", "head": 1e999}'),
        (api, "PATCH", "/accounts/user/", '{"first_name": ' + "[" * 500 + "]" * 500 + "}"),
        (platform, "POST", "/api/platform/hospitals/", DEEP),
    ]
    for client, method, path, body in cases:
        response = client.request(method, path, data=body.encode(), headers={"Content-Type": "application/json"})
        assert_json_error(response, 400, "parse_error")
    # Shallow nesting and long arrays are still ordinary (invalid) input.
    response = api.post("/api/patients/", json=[1] * 50_000)
    assert_json_error(response, 400, "invalid")
    response = api.post("/api/patients/", json={**patient, "first_name": [[["x"]]]})
    assert "first_name" in assert_json_error(response, 400, "invalid")["fields"]


# NUL characters (issue 11, #6): PostgreSQL text cannot hold one, so no query parameter may carry one.


@pytest.mark.parametrize(
    "query", ["search=%00", "search=a%00b", "%00=1", "page=%00", "page_size=1%00", "department=%00", "x=1&y=%00"]
)
def test_a_nul_in_any_query_parameter_is_a_json_400_naming_it(api_for, hospital_a, query):
    admin = user_create_verified(hospital=hospital_a, email=unique_email("nul"), password=PASSWORD)
    with tenant_context(hospital_a):
        staff_member_create(user=admin, role=StaffMember.Role.HOSPITAL_ADMIN)
    api = api_for(hospital_a)
    api.login(admin.email)
    named = query.split("&")[-1].split("=")[0].replace("%00", "\\x00")
    for path in ("/api/patients/", "/api/staff/", "/api/departments/", "/api/audit/", "/accounts/user/"):
        body = assert_json_error(api.get(f"{path}?{query}"), 400, "invalid")
        assert list(body["fields"]) == [named], body


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/accounts/registration/",
            {"email": "nul\u0000@example.org", "password1": PASSWORD, "password2": PASSWORD},
            "email",
        ),
        (
            "/accounts/registration/",
            {"email": "nul@example.org", "password1": PASSWORD, "password2": PASSWORD, "first_name": "a\u0000"},
            "first_name",
        ),
        ("/accounts/login/", {"email": "a@example.org", "password": "x\u0000"}, "password"),
        ("/accounts/token/refresh/", {"refresh": "a\u0000"}, "refresh"),
        ("/accounts/password/reset/", {"email": "a\u0000@example.org"}, "email"),
    ],
)
def test_a_nul_in_a_json_string_is_a_json_400_naming_the_field(api_a, path, body, field):
    assert field in assert_json_error(api_a.post(path, json=body), 400, "invalid")["fields"]
