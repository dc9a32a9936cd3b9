"""Throughput of `GET /api/patients/` (pages of 50) for a doctor who may see 5,000 of 50,000 patients.

    .venv/bin/python -m bench patients [--requests 500] [--concurrency 4] [--explain]

Seeds one hospital with 50,000 patients (bulk_create) and a doctor holding the
care-team grants (guardian's view_patient, change_patient, view_clinical,
add_note, in the direct-FK table) on 5,000 of them, plus their care-team rows.
Then, under `manage.py runserver` (DEBUG=false, DB_CONN_MAX_AGE=60), it times
sequential pages 1..100 of the doctor's list, the same with concurrent clients,
a ?search= on the commonest last name, and the hospital admin (who sees all
50,000) for comparison; every answer is checked (HTTP 200, count, page length).
In-process it also counts the SQL queries per request (page_size 1 and 50, with
django.test.Client) and times the list and count queries with EXPLAIN ANALYZE.

Runs in a database of its own, `bench_patients`, on the embedded PostgreSQL of
devtools (started, and afterwards stopped, only if it is not already
running) or on the server of DATABASE_URL; it is dropped at the end.
Everything talks to 127.0.0.1; the hospital is chosen by the Host header.
"""

import json
import math
import random
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import quote

from bench.driver import (
    BenchError,
    Client,
    Server,
    Timings,
    add_client_arguments,
    bounded_int,
    django_on_dedicated_database,
    log_in,
    machine,
    run_clients,
    say,
)

BENCH_DB = "bench_patients"
SLUG = "benchpat"
ADMIN_EMAIL = "admin@benchpat.example"
DOCTOR_EMAIL = "doctor@benchpat.example"
PASSWORD = "bench-Patients-Pass-42"
PAGE_SIZE = 50
MAX_PAGES = 100  # pages 1..100 of 50: the doctor's whole list, the admin's first 5,000
BATCH = 5000  # rows per INSERT while seeding
SMOKE = ["--patients", "200", "--visible", "60", "--requests", "10", "--concurrency", "2", "--warmup", "1"]
FIGURES = r"admin / doctor \(1 client\): [\d.]+x the req/s"

# Frequent US surnames with their weight (per 100,000, 2010 census), and common first names.
LAST_NAMES = {
    "Smith": 828,
    "Johnson": 655,
    "Williams": 551,
    "Brown": 487,
    "Jones": 484,
    "Garcia": 392,
    "Miller": 385,
    "Davis": 363,
    "Rodriguez": 350,
    "Martinez": 346,
    "Hernandez": 340,
    "Lopez": 294,
    "Gonzalez": 289,
    "Wilson": 278,
    "Anderson": 272,
    "Thomas": 264,
    "Taylor": 259,
    "Moore": 244,
    "Jackson": 239,
    "Martin": 238,
    "Lee": 231,
    "Perez": 227,
    "Thompson": 224,
    "White": 223,
    "Harris": 211,
    "Sanchez": 207,
    "Clark": 187,
    "Ramirez": 186,
    "Lewis": 180,
    "Robinson": 179,
    "Walker": 175,
    "Young": 167,
    "Allen": 164,
    "King": 160,
    "Wright": 159,
    "Scott": 153,
    "Torres": 151,
    "Nguyen": 149,
    "Hill": 148,
    "Flores": 147,
    "Green": 147,
    "Adams": 144,
    "Nelson": 141,
    "Baker": 141,
    "Hall": 139,
    "Rivera": 135,
    "Campbell": 132,
    "Mitchell": 130,
    "Carter": 127,
    "Roberts": 126,
    "Gomez": 118,
    "Phillips": 117,
    "Evans": 116,
    "Turner": 115,
    "Diaz": 115,
    "Parker": 113,
    "Cruz": 111,
    "Edwards": 110,
    "Collins": 109,
    "Reyes": 108,
    "Stewart": 106,
    "Morris": 104,
    "Morales": 103,
    "Murphy": 102,
    "Cook": 101,
    "Rogers": 100,
    "Gutierrez": 97,
    "Ortiz": 97,
    "Morgan": 96,
    "Cooper": 96,
    "Peterson": 95,
    "Bailey": 94,
    "Reed": 94,
    "Kelly": 93,
    "Howard": 93,
    "Ramos": 91,
    "Kim": 91,
    "Cox": 91,
    "Ward": 90,
    "Richardson": 90,
    "Watson": 89,
    "Brooks": 88,
    "Chavez": 88,
    "Wood": 87,
    "James": 87,
    "Bennett": 86,
    "Gray": 85,
    "Mendoza": 85,
    "Ruiz": 85,
    "Hughes": 84,
    "Price": 83,
    "Alvarez": 83,
    "Castillo": 83,
    "Sanders": 82,
    "Patel": 82,
    "Myers": 81,
    "Long": 80,
    "Ross": 80,
    "Foster": 80,
}
FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Dorothy",
    "George",
    "Melissa",
    "Timothy",
    "Deborah",
    "Maria",
    "Jose",
    "Luis",
    "Ana",
    "Wei",
    "Mei",
    "Ahmed",
    "Fatima",
    "Olga",
    "Ivan",
    "Priya",
    "Arjun",
]
STREETS = [
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Park Rd",
    "Elm St",
    "Washington Blvd",
    "Lake View Ct",
    "Hillcrest Rd",
    "Sunset Ave",
    "River Rd",
    "Church St",
]
CITIES = ["Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview", "Salem"]
DEPARTMENTS = [
    ("Cardiology", "cardio"),
    ("Emergency", "er"),
    ("General Medicine", "gm"),
    ("Neurology", "neuro"),
    ("Oncology", "onco"),
    ("Orthopedics", "ortho"),
    ("Pediatrics", "peds"),
    ("Surgery", "surg"),
]


# --------------------------------------------------------------------------
# The dedicated database and the hospital in it


@dataclass
class World:
    hospital: object
    host: str
    doctor: object  # StaffMember
    admin: object  # StaffMember
    patients: int
    visible: int
    search: str
    search_count: int
    seed_seconds: dict = field(default_factory=dict)


def fake_patient(rng: random.Random, number: int, departments: list):
    from hospitals.models import Patient

    first = rng.choice(FIRST_NAMES)
    last = rng.choices(list(LAST_NAMES), weights=list(LAST_NAMES.values()))[0]
    return Patient(
        mrn=f"MRN{number:08d}",
        first_name=first,
        last_name=last,
        date_of_birth=date(1930, 1, 1) + timedelta(days=rng.randrange(94 * 365)),
        sex=rng.choice(("female", "male", "female", "male", "other", "unknown")),
        phone=f"+1-555-{rng.randrange(1000):03d}-{rng.randrange(10000):04d}",
        email=f"{first.lower()}.{last.lower()}{number}@mail.example",
        address=f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}, {rng.choice(CITIES)}",
        department=rng.choice(departments),
    )


def prepare(args) -> World:
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction
    from django_tenants.utils import tenant_context

    from accounts.services import user_create_verified
    from hospitals.models import CareTeamMembership, Patient, PatientUserObjectPermission
    from hospitals.permissions import care_team_grants
    from hospitals.selectors import patient_list
    from staff.models import Department, StaffMember
    from staff.services import staff_member_create
    from tenants.services import hospital_create, hospital_host

    say(f"creating hospital {SLUG!r}, its admin and a doctor")
    hospital = hospital_create(name="Bench Patients", slug=SLUG, admin_email=ADMIN_EMAIL, admin_password=PASSWORD)
    rng = random.Random(args.seed)
    seconds = {}
    with tenant_context(hospital):
        admin = StaffMember.objects.select_related("user").get(user__email=ADMIN_EMAIL)
        doctor_user = user_create_verified(
            hospital=hospital, email=DOCTOR_EMAIL, password=PASSWORD, first_name="Dana", last_name="Doctor"
        )
        doctor = staff_member_create(user=doctor_user, role=StaffMember.Role.DOCTOR)
        grants = care_team_grants(StaffMember.Role.DOCTOR)
        permissions = list(
            Permission.objects.filter(content_type=ContentType.objects.get_for_model(Patient), codename__in=grants)
        )
        if len(permissions) != len(grants):
            raise BenchError(f"missing permissions: {sorted(grants - {p.codename for p in permissions})}")

        say(f"seeding {args.patients:,} patients, {args.visible:,} of them on the doctor's care team")
        began = time.perf_counter()
        with transaction.atomic():
            departments = Department.objects.bulk_create([Department(name=n, code=c) for n, c in DEPARTMENTS])
            patients = Patient.objects.bulk_create(
                [fake_patient(rng, n, departments) for n in range(1, args.patients + 1)], batch_size=BATCH
            )
        seconds["patients"] = time.perf_counter() - began

        # What care_team_add does per patient (assign_perm for each grant), in bulk.
        began = time.perf_counter()
        visible = rng.sample(patients, args.visible)
        with transaction.atomic():
            PatientUserObjectPermission.objects.bulk_create(
                [
                    PatientUserObjectPermission(permission=perm, user=doctor_user, content_object=patient)
                    for patient in visible
                    for perm in permissions
                ],
                batch_size=BATCH,
            )
            CareTeamMembership.objects.bulk_create(
                [
                    CareTeamMembership(patient=patient, staff=doctor, role=CareTeamMembership.Role.ATTENDING)
                    for patient in visible
                ],
                batch_size=BATCH,
            )
        seconds["grants"] = time.perf_counter() - began

        began = time.perf_counter()
        tables = [m._meta.db_table for m in (Patient, Department, PatientUserObjectPermission, CareTeamMembership)]
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))
        seconds["analyze"] = time.perf_counter() - began
        say(
            f"seeded in {sum(seconds.values()):.1f} s: {args.patients:,} patients {seconds['patients']:.1f} s, "
            f"{len(visible) * len(permissions):,} grants + {len(visible):,} care-team rows {seconds['grants']:.1f} s, "
            f"ANALYZE {seconds['analyze']:.1f} s"
        )

        search = Counter(p.last_name for p in visible).most_common(1)[0][0]
        seen = patient_list(staff=doctor).count()
        search_count = patient_list(staff=doctor, search=search).count()
        if seen != args.visible:
            raise BenchError(f"the doctor sees {seen} patients, not {args.visible}")
        if patient_list(staff=admin).count() != args.patients:
            raise BenchError(f"the admin does not see all {args.patients} patients")
    return World(
        hospital, hospital_host(SLUG), doctor, admin, args.patients, args.visible, search, search_count, seconds
    )


# --------------------------------------------------------------------------
# In-process: SQL queries per request, and the plans of the list's queries


def request_queries(world: World, email: str, path: str) -> list:
    """The SQL of one GET (after a warm-up GET), through django.test.Client with the hospital's Host."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST=world.host)
    response = client.post("/accounts/login/", {"email": email, "password": PASSWORD}, content_type="application/json")
    if response.status_code != 200:
        raise BenchError(f"in-process login as {email} answered HTTP {response.status_code}")
    auth = f"Bearer {response.json()['access']}"
    try:
        client.get(path, HTTP_AUTHORIZATION=auth)  # warm the per-process caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path, HTTP_AUTHORIZATION=auth)
    finally:
        connection.set_schema_to_public()
    if response.status_code != 200:
        raise BenchError(f"in-process GET {path} answered HTTP {response.status_code}: {response.content[:300]!r}")
    return [q["sql"] for q in queries.captured_queries]


def explain(sql: str) -> tuple[str, float, float]:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement in the current schema: (plan, execution ms, planning ms)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return (
        plan,
        float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1)),
        float(re.search(r"Planning Time: ([\d.]+) ms", plan).group(1)),
    )


def wall_ms(sql: str, runs: int = 7) -> float:
    """Median wall time of a statement run as is (rows fetched), without EXPLAIN's per-node timing."""
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            began = time.perf_counter()
            cursor.execute(sql)
            cursor.fetchall()
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def page_and_count_sql(queryset, offset: int) -> tuple[str, str]:
    """The SQL the paginator runs for a page at `offset`: the page's SELECT and the COUNT."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        list(queryset[offset : offset + PAGE_SIZE])
        queryset.count()
    page, count = (q["sql"] for q in queries.captured_queries[-2:])
    return page, count


def in_process(world: World, args) -> dict:
    from django_tenants.utils import tenant_context

    from hospitals.selectors import patient_list

    say("counting SQL queries per request and explaining the list's queries (in-process)")
    counts = {}
    for who, email in (("doctor", DOCTOR_EMAIL), ("admin", ADMIN_EMAIL)):
        for size in (1, PAGE_SIZE):
            counts[who, size] = request_queries(world, email, f"/api/patients/?page_size={size}")
        if len(counts[who, 1]) != len(counts[who, PAGE_SIZE]):
            say(
                f"warning: {who}: {len(counts[who, 1])} queries at page_size=1, "
                f"{len(counts[who, PAGE_SIZE])} at page_size={PAGE_SIZE}"
            )
    plans = {}
    last_offset = (min(MAX_PAGES, math.ceil(world.visible / PAGE_SIZE)) - 1) * PAGE_SIZE
    with tenant_context(world.hospital):
        cases = [
            ("doctor", world.doctor, "", 0),
            ("doctor", world.doctor, "", last_offset),
            ("doctor", world.doctor, world.search, 0),
            ("admin", world.admin, "", 0),
        ]
        for who, staff, search, offset in cases:
            page_sql, count_sql = page_and_count_sql(patient_list(staff=staff, search=search), offset)
            explain(page_sql)  # warm the buffers: report the steady state the HTTP runs see
            plans[who, search, offset] = {
                "page": explain(page_sql),
                "count": explain(count_sql),
                "wall": (wall_ms(page_sql), wall_ms(count_sql)),
            }
    return {"queries": counts, "plans": plans, "last_offset": last_offset}


# --------------------------------------------------------------------------
# Over HTTP: runserver, keep-alive clients


def page_paths(count: int, search: str = "") -> list:
    """(path, expected count, expected page length) for pages 1..MAX_PAGES of a list of `count` rows."""
    query = f"&search={quote(search)}" if search else ""
    return [
        (
            f"/api/patients/?page_size={PAGE_SIZE}{query}&page={page}",
            count,
            min(PAGE_SIZE, count - (page - 1) * PAGE_SIZE),
        )
        for page in range(1, min(MAX_PAGES, math.ceil(count / PAGE_SIZE)) + 1)
    ]


class PatientClient(Client):
    """A keep-alive client on the bench hospital, cycling through pages and checking each answer."""

    def __init__(self, port: int, token: str, quickack: bool, host: str, paths: list, first: int):
        super().__init__(port, host, token, quickack)
        self.paths = paths
        self.sent = first  # clients start at different pages

    def send(self) -> None:
        path, count, length = self.paths[self.sent % len(self.paths)]
        self.sent += 1
        data = json.loads(self.get(path))
        if data["count"] != count or len(data["results"]) != length:
            raise BenchError(
                f"GET {path}: count {data['count']} and {len(data['results'])} results, expected {count} and {length}"
            )


@dataclass
class Row(Timings):
    who: str
    sees: int
    query: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list = field(repr=False)


def measure(port: int, token: str, host: str, paths: list, args, concurrency: int) -> tuple[float, list]:
    """`args.requests` GETs over `concurrency` threads (run_clients); return (seconds, latencies)."""
    clients = [
        PatientClient(port, token, args.quickack, host, paths, first=i * len(paths) // concurrency)
        for i in range(concurrency)
    ]
    return run_clients(clients, args.requests, args.warmup, args.time_limit)


def over_http(stack, world: World, args) -> list:
    pages = f"pages 1-{min(MAX_PAGES, math.ceil(world.visible / PAGE_SIZE))}"
    runs = [("doctor", world.visible, pages, page_paths(world.visible), 1)]
    if args.concurrency > 1:
        runs.append(("doctor", world.visible, pages, page_paths(world.visible), args.concurrency))
    search_paths = page_paths(world.search_count, world.search)
    runs.append(
        (
            "doctor",
            world.visible,
            f"?search={world.search} ({world.search_count} hits, pages 1-{len(search_paths)})",
            search_paths,
            1,
        )
    )
    runs.append(
        (
            "admin",
            world.patients,
            f"pages 1-{min(MAX_PAGES, math.ceil(world.patients / PAGE_SIZE))}",
            page_paths(world.patients),
            1,
        )
    )
    rows = []
    with Server(stack, "patients", 60) as server:
        try:
            tokens = {
                who: log_in(server.port, world.host, {"email": email, "password": PASSWORD})
                for who, email in (("doctor", DOCTOR_EMAIL), ("admin", ADMIN_EMAIL))
            }
            for who, sees, query, paths, concurrency in runs:
                say(f"{who}, {query}: {args.requests} requests, concurrency {concurrency}")
                seconds, latencies = measure(server.port, tokens[who], world.host, paths, args, concurrency)
                rows.append(Row(who, sees, query, concurrency, args.requests, seconds, latencies))
        except BenchError as exc:
            raise server.fail(str(exc)) from None
    return rows


# --------------------------------------------------------------------------
# Report


def report(world: World, checks: dict, rows: list, args) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
    print()
    print(machine(f", PostgreSQL {server_version}") + "; client and server share these CPUs")
    seconds = world.seed_seconds
    print(
        f"seed: {world.patients:,} patients in {seconds['patients']:.1f} s; the doctor's {world.visible:,} "
        f"(grants + care-team rows) in {seconds['grants']:.1f} s; ANALYZE {seconds['analyze']:.1f} s"
    )
    print(
        f"GET /api/patients/?page_size={PAGE_SIZE} on {world.host}, Bearer token, manage.py runserver "
        f"(DEBUG=false, DB_CONN_MAX_AGE=60), client TCP_QUICKACK {'on' if args.quickack else 'off'}, "
        f"{args.warmup} warm-up requests per client"
    )
    header = (
        f"{'who':<7} {'sees':>6} {'query':<36} {'clients':>7} {'requests':>8} {'seconds':>7} {'req/s':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.who:<7} {r.sees:>6} {r.query:<36} {r.concurrency:>7} {r.requests:>8} {r.seconds:>7.2f} "
            f"{r.rate:>7.1f} {r.percentile(50):>7.2f} {r.percentile(95):>7.2f}"
        )
    doctor, admin = rows[0], rows[-1]
    print(f"admin / doctor (1 client): {admin.rate / doctor.rate:.2f}x the req/s")

    queries = checks["queries"]

    def kinds(sqls: list) -> str:
        sets = sum(sql.startswith("SET search_path") for sql in sqls)
        ctypes = sum('FROM "django_content_type"' in sql for sql in sqls)
        return f"{sets} SET search_path" + (f", {ctypes} content-type lookups" if ctypes else "")

    print(
        "SQL queries per request (in-process, django.test.Client): "
        + "; ".join(
            f"{who} page_size=1: {len(queries[who, 1])}, page_size={PAGE_SIZE}: {len(queries[who, PAGE_SIZE])} "
            f"({kinds(queries[who, PAGE_SIZE])})"
            for who in ("doctor", "admin")
        )
    )
    print(
        "the list's two queries, in-process, warm: page query / COUNT query; wall ms (median of 7 runs), "
        "and EXPLAIN ANALYZE execution ms (planning ms)"
    )
    last = checks["last_offset"] // PAGE_SIZE + 1
    labels = {
        ("doctor", "", 0): "doctor, patient_list()[:50] (page 1)",
        ("doctor", "", checks["last_offset"]): f"doctor, page {last}",
        ("doctor", world.search, 0): f"doctor, ?search={world.search} page 1",
        ("admin", "", 0): "admin, page 1",
    }
    for key, plans in checks["plans"].items():
        (_, page_ms, page_plan_ms), (_, count_ms, count_plan_ms) = plans["page"], plans["count"]
        page_wall, count_wall = plans["wall"]
        print(
            f"  {labels[key]:<38} wall {page_wall:>6.2f} / {count_wall:>6.2f};  EXPLAIN ANALYZE "
            f"{page_ms:>6.2f} ({page_plan_ms:.2f}) / {count_ms:>6.2f} ({count_plan_ms:.2f})"
        )
    if args.explain:
        print()
        for who in ("doctor", "admin"):
            print(f"-- SQL of one {who} request (page_size={PAGE_SIZE}):")
            for sql in queries[who, PAGE_SIZE]:
                print(f"   {sql}")
        for key, plans in checks["plans"].items():
            for kind in ("page", "count"):
                print(f"\n-- {labels[key]}: {kind} query")
                print(plans[kind][0])


# --------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument(
        "--patients", type=bounded_int(100, 1_000_000), default=50_000, help="patients in the hospital (default 50,000)"
    )
    parser.add_argument(
        "--visible",
        type=bounded_int(1, 1_000_000),
        default=5_000,
        help="patients on the doctor's care team (default 5,000)",
    )
    add_client_arguments(parser, requests=500, concurrency=4, warmup=20)
    parser.add_argument("--seed", type=int, default=1, help="random seed for the fake patients (default 1)")
    parser.add_argument("--explain", action="store_true", help="also print the SQL and the full query plans")


def validate(parser, args) -> None:
    if args.visible > args.patients:
        parser.error("--visible cannot exceed --patients")


def run(stack, args) -> int:
    began = time.monotonic()
    with django_on_dedicated_database(stack, BENCH_DB):
        world = prepare(args)
        checks = in_process(world, args)
        rows = over_http(stack, world, args)
        report(world, checks, rows, args)
    say(f"done in {time.monotonic() - began:.0f} s")
    return 0
