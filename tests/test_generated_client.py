"""Clients generated from both domains' OpenAPI schemas: type-checked with mypy, then run with no cookie jar.

Issue 14: a client generated with openapi-python-client typed login as needing a logged-in client, could
never refresh (its refresh token existed only in a cookie), and misnamed or mistyped some operations. Here the
schemas are taken from the live server, the clients generated, `tests/generated_client_flow.py` type-checked
against them (mypy --strict, which also checks the generated code it imports) and run end to end.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.support import ANSWER_TIMEOUT, PASSWORD, link_in, unique_email

BIN = Path(sys.executable).parent
FLOW = Path(__file__).with_name("generated_client_flow.py")
# The project has no `*.localhost` resolution for Python: one address, each domain in the Host header.
DOMAINS = {"hospital_client": "alpha.localhost", "platform_client": None}
COMMAND_TIMEOUT = 600  # a cold mypy run on a busy machine; only "never" fails it


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, **kwargs)


@pytest.fixture(scope="module")
def generated(server_url, hospital_a, tmp_path_factory) -> Path:
    """The two generated packages, from the schemas the live server serves, in one directory."""
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))  # no ruff formatting of the generated code: not ours
    for package, host in DOMAINS.items():
        response = requests.get(
            f"{server_url}/api/schema/?format=json",
            headers={"Host": host or settings.BASE_DOMAIN},
            timeout=ANSWER_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        schema = out / f"{package}.json"
        schema.write_text(response.text)
        result = run(
            [
                str(BIN / "openapi-python-client"),
                "generate",
                "--path",
                str(schema),
                "--meta",
                "none",
                "--output-path",
                str(out / package),
                "--config",
                str(config),
            ]
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr  # nothing skipped
    return out


def operation(package: Path, tag: str, name: str) -> str:
    return (package / "api" / tag / f"{name}.py").read_text()


def test_anonymous_operations_take_a_plain_client_and_names_are_clean(generated):
    hospital, platform = generated / "hospital_client", generated / "platform_client"
    for package, names in (
        (
            hospital,
            [
                "accounts_login_create",
                "accounts_logout_create",
                "accounts_token_refresh_create",
                "accounts_token_verify_create",
                "accounts_registration_create",
                "accounts_registration_verify_email_create",
                "accounts_registration_resend_email_create",
                "accounts_password_reset_create",
                "accounts_password_reset_confirm_create",
                "accounts_invitations_accept_create",
                "accounts_invitations_accept_retrieve",
                "accounts_password_reset_confirm_retrieve",
                "accounts_registration_account_confirm_email_retrieve",
            ],
        ),
        (platform, ["accounts_login_create", "accounts_logout_create", "accounts_token_refresh_create"]),
    ):
        for name in names:
            assert "    client: AuthenticatedClient | Client,\n" in operation(package, "accounts", name), name
    # ...and what needs a token says so.
    assert "    client: AuthenticatedClient,\n" in operation(hospital, "accounts", "accounts_user_retrieve")
    assert "    client: AuthenticatedClient,\n" in operation(platform, "api", "api_platform_hospitals_create")

    models = {p.stem for p in (hospital / "models").glob("*.py")} | {p.stem for p in (platform / "models").glob("*.py")}
    assert not {m for m in models if m.endswith("request_request") or m.endswith("response_request")}
    # A paginated list is a list operation typed as a paginated list.
    notes = operation(hospital, "api", "api_patients_notes_list")
    assert "-> Error | PaginatedNoteList | None:" in notes and "page: int | Unset = UNSET" in notes
    assert not (hospital / "api" / "api" / "api_patients_notes_retrieve.py").exists()
    # Token verify answers {} (an object), not "no body".
    assert "AccountsTokenVerifyCreateResponse200" in operation(hospital, "accounts", "accounts_token_verify_create")


def test_a_program_using_the_generated_clients_type_checks(generated, tmp_path):
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    result = run(
        [str(BIN / "mypy"), "--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), str(FLOW)],
        env={**os.environ, "MYPYPATH": str(generated)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


@pytest.fixture
def flow(generated):
    """tests/generated_client_flow.py, imported with the generated packages on the path (and forgotten after)."""
    sys.path.insert(0, str(generated))
    try:
        yield importlib.import_module("tests.generated_client_flow")
    finally:
        sys.path.remove(str(generated))
        for name in [n for n in sys.modules if n.split(".")[0] in DOMAINS or n == "tests.generated_client_flow"]:
            del sys.modules[name]


def test_the_program_completes_every_flow_without_cookies(flow, server_url, platform_user, mail_sink):
    slug = f"gen-{uuid.uuid4().hex[:8]}"
    admin_email, doctor_email = unique_email("gen-admin"), unique_email("gen-doctor")

    def invitation_token(email: str) -> str:
        mail = mail_sink.wait_for(email)[-1]
        return link_in(mail, r"/accounts/invitations/accept/([^/\s]+)/").group(1)

    outcome = flow.run(
        base_url=server_url,
        platform_host=settings.BASE_DOMAIN,
        platform_email=platform_user.email,
        platform_password=PASSWORD,
        slug=slug,
        admin_email=admin_email,
        doctor_email=doctor_email,
        invitation_token=invitation_token,
    )
    assert outcome.hospital.slug == slug and outcome.hospital.domain == f"{slug}.{settings.BASE_DOMAIN}"
    assert [note.body for note in outcome.notes.results] == ["Seen today."] and outcome.notes.count == 1
    assert [member.staff_role for member in outcome.care_team] == ["doctor"]
    assert [patient.id for patient in outcome.doctor_sees.results] == [outcome.patient.id]
    assert outcome.logged_out_refresh.code == "token_not_valid"
    assert outcome.missing_refresh.code == "refresh_missing"
    # No cookie was ever set for these clients, and the whole flow went over the network.
    assert outcome.wire.set_cookies == []
    assert ("POST", "/accounts/token/refresh/", 200) in outcome.wire.statuses
    assert len(outcome.wire.statuses) >= 20
