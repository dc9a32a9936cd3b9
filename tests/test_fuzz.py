"""Fuzzing both OpenAPI schemas with schemathesis, over real HTTP, against the live test server.

Each URLconf's own schema (`GET /api/schema/`, fetched without authentication) drives the requests: on a
hospital domain with a hospital admin's Bearer token and without one, on the platform domain with platform
staff's token and without one. Checks: no 5xx (`not_a_server_error`), every answer matches its declared
schema (`response_schema_conformance`) and status code (`status_code_conformance`).

Bounded and reproducible: FUZZ_EXAMPLES (default 10) examples per operation and generation mode, derandomized,
no example database. The counts and every failure go to `.run/fuzz-report/summary.txt` (and `summary.json`)
and are printed at the end of the run.

Side effects are kept away from the rest of the suite: the hospital fuzz runs on its own hospital, and the
platform's writes on a named hospital (PATCH, suspend, reactivate) go to a throwaway hospital; onboarding
(POST /api/platform/hospitals/) is fuzzed with the slug pinned to that throwaway's (taken), so validation is
exercised without creating a schema per example (creation is tested in test_onboarding/test_provisioning).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter, defaultdict

import pytest
import requests
import schemathesis
from django.conf import settings
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from accounts.services import user_create_verified
from tenants.services import hospital_create, hospital_host
from tests.support import ANSWER_TIMEOUT, PASSWORD, Api, unique_email

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
REPORT_DIR = settings.BASE_DIR / ".run" / "fuzz-report"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
FUZZ = hypothesis_settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


class FuzzRun:
    """What the fuzzer did: examples per target and operation, and the failures."""

    def __init__(self) -> None:
        self.examples: dict[str, Counter] = defaultdict(Counter)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.failures: list[dict] = []
        self.skipped: list[str] = []
        self.last_failure: dict | None = None
        self.lock = threading.Lock()
        self.seconds = 0.0

    def call(self, target: str, case, *, base_url: str, headers: dict) -> None:
        label = f"{case.method.upper()} {case.path}"
        try:
            response = case.call(base_url=base_url, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # the server dropped the connection: a failure like a 5xx
            self._fail(target, label, case, exc)
            raise
        with self.lock:
            self.examples[target][label] += 1
            self.statuses[target][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:
            self._fail(target, label, case, exc)
            raise

    def _fail(self, target, label, case, exc) -> None:
        with self.lock:  # the last one is hypothesis' minimal example, replayed at the end
            self.last_failure = {
                "target": target,
                "operation": label,
                "error": str(exc).strip()[:2000],
                "path_parameters": case.path_parameters,
                "query": case.query,
                "body": case.body
                if isinstance(case.body, (dict, list, str, int, float, bool, type(None)))
                else repr(case.body),
            }

    def summary(self) -> str:
        lines = [
            f"schemathesis {schemathesis.SCHEMATHESIS_VERSION}, {FUZZ_EXAMPLES} examples per operation "
            f"and mode, derandomized; {self.seconds:.1f} s of fuzzing"
        ]
        for target in sorted(self.examples):
            examples = self.examples[target]
            statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses[target].items()))
            lines.append(f"{target}: {len(examples)} operations, {sum(examples.values())} requests ({statuses})")
        total_ops = sum(len(e) for e in self.examples.values())
        total = sum(sum(e.values()) for e in self.examples.values())
        lines.append(f"total: {total_ops} operation runs, {total} requests, {len(self.failures)} failing examples")
        for failure in self.failures:
            lines.append(
                f"FAILED {failure['target']} {failure['operation']} ({failure['mode']}): {failure['error'][:300]}"
            )
        for skipped in self.skipped:
            lines.append(f"not generated: {skipped}")
        return "\n".join(lines)

    def write(self) -> None:
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        (REPORT_DIR / "summary.txt").write_text(self.summary() + "\n")
        (REPORT_DIR / "summary.json").write_text(
            json.dumps(
                {
                    "examples": {t: dict(c) for t, c in self.examples.items()},
                    "statuses": {t: {str(k): v for k, v in c.items()} for t, c in self.statuses.items()},
                    "failures": self.failures,
                    "not_generated": self.skipped,
                },
                indent=2,
                default=str,
            )
        )


@pytest.fixture(scope="session")
def fuzz_run(request):
    run = FuzzRun()
    yield run
    if run.examples:
        run.write()
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter and capture:
            with capture.global_and_fixture_disabled():  # past -q and output capture
                reporter.write_line(f"\nfuzz report ({REPORT_DIR / 'summary.txt'}):\n{run.summary()}")


@pytest.fixture(scope="session")
def fuzz_hospital(db_access):
    """A hospital of its own, so that what the fuzzer creates touches no other test's data."""
    email = unique_email("fuzzadmin")
    return hospital_create(
        name="Fuzz General", slug=f"fuzz-{uuid.uuid4().hex[:8]}", admin_email=email, admin_password=PASSWORD
    ), email


@pytest.fixture(scope="session")
def throwaway_hospital(db_access):
    """The hospital the platform fuzz renames, suspends and reactivates."""
    return hospital_create(
        name="Throwaway General",
        slug=f"fuzz-throwaway-{uuid.uuid4().hex[:8]}",
        admin_email=unique_email("throwaway"),
        admin_password=PASSWORD,
    )


def _token(server_url: str, host: str, email: str) -> str:
    return Api(server_url, host).login(email).json()["access"]


def _schema(server_url: str, host: str):
    response = requests.get(f"{server_url}/api/schema/?format=json", headers={"Host": host}, timeout=ANSWER_TIMEOUT)
    assert response.status_code == 200, response.text  # served without authentication
    return schemathesis.openapi.from_dict(response.json())


@pytest.fixture(scope="session")
def hospital_target(server_url, fuzz_hospital):
    hospital, email = fuzz_hospital
    host = hospital_host(hospital.slug)
    return {"host": host, "token": _token(server_url, host, email)}


@pytest.fixture(scope="session")
def platform_target(server_url, db_access):
    email = unique_email("fuzzstaff")
    user_create_verified(hospital=None, email=email, password=PASSWORD)
    return {"host": settings.BASE_DOMAIN, "token": _token(server_url, settings.BASE_DOMAIN, email)}


@pytest.fixture(scope="session")
def hospital_schema(server_url, hospital_target):
    return _schema(server_url, hospital_target["host"])


@pytest.fixture(scope="session")
def platform_schema(server_url, platform_target):
    return _schema(server_url, platform_target["host"])


def _stub_platform_writes(case, throwaway_slug: str) -> None:
    """Writes to a named hospital go to the throwaway one; onboarding gets a taken slug (no schema is made)."""
    if "{slug}" in case.path and case.method.upper() != "GET":
        case.path_parameters = {**(case.path_parameters or {}), "slug": throwaway_slug}
    if case.path == "/api/platform/hospitals/" and case.method.upper() == "POST" and isinstance(case.body, dict):
        case.body = {**case.body, "slug": throwaway_slug}


def _fuzz_operation(run: FuzzRun, target: str, operation, mode, *, base_url: str, headers: dict, prepare) -> None:
    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case):
        if prepare:
            prepare(case)
        run.call(target, case, base_url=base_url, headers=headers)

    one()


def fuzz(run: FuzzRun, target: str, schema, *, base_url: str, headers: dict, prepare=None) -> None:
    """Every operation of `schema`, positive and negative examples; all failures reported at the end."""
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run.last_failure = None
            try:
                _fuzz_operation(run, target, operation, mode, base_url=base_url, headers=headers, prepare=prepare)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below, with the rest
                if run.last_failure is None:  # not an answer of the API: generation gave up
                    run.skipped.append(f"{target} {operation.label} ({mode.value}): {type(exc).__name__}")
                else:
                    run.failures.append({**run.last_failure, "mode": mode.value})
    run.seconds += time.monotonic() - started
    assert not [f for f in run.failures if f["target"] == target], "\n\n".join(
        f"{f['operation']} ({f['mode']}): {f['error']}\ninput: path={f['path_parameters']} query={f['query']} "
        f"body={f['body']!r}"
        for f in run.failures
        if f["target"] == target
    )


def test_fuzz_hospital_as_admin(server_url, hospital_target, hospital_schema, fuzz_run):
    fuzz(
        fuzz_run,
        "hospital (admin token)",
        hospital_schema,
        base_url=server_url,
        headers={"Host": hospital_target["host"], "Authorization": f"Bearer {hospital_target['token']}"},
    )


def test_fuzz_hospital_without_auth(server_url, hospital_target, hospital_schema, fuzz_run):
    fuzz(
        fuzz_run, "hospital (no auth)", hospital_schema, base_url=server_url, headers={"Host": hospital_target["host"]}
    )


def test_fuzz_platform_as_staff(server_url, platform_target, platform_schema, throwaway_hospital, fuzz_run):
    fuzz(
        fuzz_run,
        "platform (staff token)",
        platform_schema,
        base_url=server_url,
        headers={"Host": platform_target["host"], "Authorization": f"Bearer {platform_target['token']}"},
        prepare=lambda case: _stub_platform_writes(case, throwaway_hospital.slug),
    )


def test_fuzz_platform_without_auth(server_url, platform_target, platform_schema, fuzz_run):
    fuzz(
        fuzz_run, "platform (no auth)", platform_schema, base_url=server_url, headers={"Host": platform_target["host"]}
    )
