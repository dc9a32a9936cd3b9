"""One patient's access log in a hospital whose audit trail holds 1,000,000 events: p50/p95 of the API's page.

    .venv/bin/python -m bench access_log [--events 1000000] [--patients 1000] [--requests 200] [--explain]

Seeds one hospital with `--patients` patients and `--events` audit events in one INSERT ... SELECT over
generate_series (80% on patients, spread evenly, the rest on staff records; actions, actors, addresses and
grants varied), then ANALYZE. In-process, through django.test.Client with the hospital's Host header and a
hospital admin's Bearer token (the whole middleware and DRF stack, real PostgreSQL), it times:
`GET /api/patients/{id}/access-log/` (page 1 of 50, with its COUNT), the same filtered by `?via=break_glass`,
a deep page, and the CSV export of the patient's whole log (streamed); every answer is checked. Then, for
comparison, the page once more with the `audit_target_history` index dropped (a few runs), and the index's
build time when it is created again. EXPLAIN ANALYZE shows the page query's plan.

Runs in a database of its own, `bench_access_log`, on the embedded PostgreSQL of devtools (or the server of
DATABASE_URL); it is dropped at the end.
"""

import csv
import io
import re
import statistics
import time
from dataclasses import dataclass, field

from bench.driver import BenchError, Timings, bounded_int, django_on_dedicated_database, machine, say

BENCH_DB = "bench_access_log"
SLUG = "benchlog"
ADMIN_EMAIL = "admin@benchlog.example"
PASSWORD = "bench-AccessLog-Pass-42"
INDEX = "audit_target_history"
SMOKE = ["--events", "20000", "--patients", "100", "--requests", "10", "--without-index-runs", "2"]
FIGURES = r"access log page 1: p50 [\d.]+ ms, p95 [\d.]+ ms"

SEED_SQL = """
INSERT INTO audit_auditevent
    (created, action, actor_id, actor_email, ip, user_agent, target_type, target_id, detail)
SELECT
    now() - make_interval(secs => i * 2),
    (ARRAY['patient_viewed', 'notes_viewed', 'care_team_viewed', 'note_added', 'patient_changed'])[1 + i % 5],
    1000 + i % 300,
    'staff' || (i % 300) || '@benchlog.example',
    ('10.' || (i % 200) || '.' || (i % 250) || '.' || (1 + i % 253))::inet,
    'Mozilla/5.0 (bench) ward-' || (i % 40),
    CASE WHEN i % 10 < 8 THEN 'hospitals.patient' ELSE 'staff.staffmember' END,
    ((i * 7919) % {patients} + {first})::text,
    CASE i % 20
        WHEN 0 THEN jsonb_build_object(
            'via', jsonb_build_array('break_glass'),
            'break_glass', jsonb_build_object('id', i, 'reason', 'Emergency admission, team unreachable'))
        WHEN 1 THEN jsonb_build_object('via', jsonb_build_array('admin_role'))
        WHEN 2 THEN jsonb_build_object('via', jsonb_build_array('department_head'))
        ELSE jsonb_build_object('via', jsonb_build_array('care_team'))
    END
FROM generate_series(1::bigint, {events}::bigint) AS i
"""


@dataclass
class Run(Timings):
    label: str
    requests: int
    seconds: float
    latencies: list = field(repr=False)
    rows: int = 0


def prepare(args) -> tuple[object, int, int, dict]:
    """The hospital, the patient measured, how many events it has, and the seeding times."""
    from django.db import connection
    from django_tenants.utils import tenant_context

    from audit.models import AuditEvent
    from hospitals.models import Patient
    from tenants.services import hospital_create

    say(f"creating hospital {SLUG!r} and {args.patients:,} patients")
    hospital = hospital_create(name="Bench Access Log", slug=SLUG, admin_email=ADMIN_EMAIL, admin_password=PASSWORD)
    seconds = {}
    with tenant_context(hospital):
        Patient.objects.bulk_create(
            [
                Patient(mrn=f"LOG{n:08d}", first_name="Log", last_name=f"Patient{n}", date_of_birth="1970-01-01")
                for n in range(1, args.patients + 1)
            ],
            batch_size=5000,
        )
        first = Patient.objects.order_by("pk").values_list("pk", flat=True).first()
        say(f"inserting {args.events:,} audit events (INSERT ... SELECT generate_series)")
        began = time.perf_counter()
        with connection.cursor() as cursor:
            # Event target ids line up with the patients' ids (from `first` on); no parameters, so `%` is modulo.
            cursor.execute(SEED_SQL.format(patients=int(args.patients), first=int(first), events=int(args.events)))
        seconds["insert"] = time.perf_counter() - began
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
        seconds["analyze"] = time.perf_counter() - began
        total = AuditEvent.objects.count()
        target = first
        events = AuditEvent.objects.filter(target_type="hospitals.patient", target_id=str(target)).count()
    if total < args.events:
        raise BenchError(f"the trail holds {total} events, not {args.events}")
    say(
        f"seeded in {seconds['insert']:.1f} s (+ ANALYZE {seconds['analyze']:.1f} s); patient {target}: {events} events"
    )
    return hospital, target, events, seconds


def client_and_token(hospital):
    from django.test import Client

    from tenants.services import hospital_host

    client = Client(HTTP_HOST=hospital_host(hospital.slug))
    response = client.post(
        "/accounts/login/", {"email": ADMIN_EMAIL, "password": PASSWORD}, content_type="application/json"
    )
    if response.status_code != 200:
        raise BenchError(f"login answered HTTP {response.status_code}")
    return client, f"Bearer {response.json()['access']}"


def timed_gets(client, auth: str, path: str, runs: int, check) -> tuple[float, list]:
    from django.db import connection

    latencies = []
    began = time.perf_counter()
    try:
        for _ in range(runs):
            start = time.perf_counter()
            response = client.get(path, HTTP_AUTHORIZATION=auth)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise BenchError(f"GET {path} answered HTTP {response.status_code}: {body[:300]!r}")
            check(body)
    finally:
        connection.set_schema_to_public()
    return time.perf_counter() - began, latencies


def page_check(expected_count: int | None, length: int | None):
    import json

    def check(body: bytes) -> None:
        data = json.loads(body)
        if expected_count is not None and data["count"] != expected_count:
            raise BenchError(f"count {data['count']}, expected {expected_count}")
        if length is not None and len(data["results"]) != length:
            raise BenchError(f"{len(data['results'])} results, expected {length}")

    return check


def explain_page(hospital, target: int) -> tuple[str, float]:
    from django.db import connection
    from django_tenants.utils import tenant_context

    from audit.selectors import audit_target_history

    with tenant_context(hospital):
        sql, params = audit_target_history(target_type="hospitals.patient", target_id=str(target))[
            :50
        ].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
    connection.set_schema_to_public()
    return plan, float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1))


def run(stack, args) -> int:
    began = time.monotonic()
    with django_on_dedicated_database(stack, BENCH_DB):
        from django.db import connection
        from django_tenants.utils import tenant_context

        hospital, target, events, seconds = prepare(args)
        client, auth = client_and_token(hospital)
        base = f"/api/patients/{target}/access-log/"
        runs = []
        say(f"timing {args.requests} GETs of each (in-process, django.test.Client)")
        seconds_, latencies = timed_gets(
            client, auth, f"{base}?page_size=50", args.requests, page_check(events, min(50, events))
        )
        runs.append(Run("access log page 1", args.requests, seconds_, latencies))
        seconds_, latencies = timed_gets(
            client, auth, f"{base}?page_size=50&via=break_glass", args.requests, page_check(None, None)
        )
        runs.append(Run("?via=break_glass page 1", args.requests, seconds_, latencies))
        last_page = max(1, (events + 49) // 50)
        seconds_, latencies = timed_gets(
            client,
            auth,
            f"{base}?page_size=50&page={last_page}",
            args.requests,
            page_check(events, events - (last_page - 1) * 50),
        )
        runs.append(Run(f"last page ({last_page})", args.requests, seconds_, latencies))

        rows = []

        def csv_check(body: bytes) -> None:
            rows.append(len(list(csv.reader(io.StringIO(body.decode())))) - 1)

        exports = max(1, args.requests // 10)
        seconds_, latencies = timed_gets(client, auth, f"{base}export/", exports, csv_check)
        runs.append(Run("CSV export (whole log)", exports, seconds_, latencies, rows=rows[-1]))
        if rows[-1] < events:
            raise BenchError(f"the CSV has {rows[-1]} rows, the log {events}")

        plan, plan_ms = explain_page(hospital, target)

        say(f"without the index: {args.without_index_runs} GETs of page 1, then the index built again")
        with tenant_context(hospital), connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {INDEX}")
        connection.set_schema_to_public()
        seconds_, latencies = timed_gets(
            client, auth, f"{base}?page_size=50", args.without_index_runs, page_check(None, min(50, events))
        )
        runs.append(Run("page 1, index dropped", args.without_index_runs, seconds_, latencies))
        build = time.perf_counter()
        with tenant_context(hospital), connection.cursor() as cursor:
            cursor.execute(
                f'CREATE INDEX {INDEX} ON audit_auditevent ("target_type", "target_id", "created" DESC, "id" DESC)'
            )
        connection.set_schema_to_public()
        build = time.perf_counter() - build

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server_version = cursor.fetchone()[0]
        print()
        print(machine(f", PostgreSQL {server_version}") + "; in-process (django.test.Client), one client")
        print(
            f"trail: {args.events:,} audit events in one hospital ({seconds['insert']:.1f} s to insert, "
            f"ANALYZE {seconds['analyze']:.1f} s); the patient measured has {events:,}"
        )
        header = (
            f"{'GET /api/patients/{id}/access-log/...':<40} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'rows':>6}"
        )
        print(header)
        print("-" * len(header))
        for r in runs:
            print(f"{r.label:<40} {r.requests:>8} {r.percentile(50):>8.1f} {r.percentile(95):>8.1f} {r.rows or '':>6}")
        page = runs[0]
        print(f"access log page 1: p50 {page.percentile(50):.1f} ms, p95 {page.percentile(95):.1f} ms")
        print(
            f"page query alone (EXPLAIN ANALYZE): {plan_ms:.2f} ms; "
            f"index build on {args.events:,} events: {build:.1f} s; "
            f"without it page 1 takes {statistics.median(runs[-1].latencies) * 1000:.0f} ms (median)"
        )
        if args.explain:
            print()
            print(plan)
    say(f"done in {time.monotonic() - began:.0f} s")
    return 0


def add_arguments(parser) -> None:
    parser.add_argument(
        "--events", type=bounded_int(1000, 50_000_000), default=1_000_000, help="audit events (default 1,000,000)"
    )
    parser.add_argument(
        "--patients", type=bounded_int(1, 1_000_000), default=1000, help="patients they are spread over (default 1,000)"
    )
    parser.add_argument("--requests", type=bounded_int(1, 100_000), default=200, help="GETs per case (default 200)")
    parser.add_argument(
        "--without-index-runs", type=bounded_int(1, 1000), default=5, help="GETs with the index dropped (default 5)"
    )
    parser.add_argument("--explain", action="store_true", help="also print the page query's plan")
