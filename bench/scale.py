"""1,000 hospitals on one PostgreSQL: onboarding, authed reads, a long-lived connection's memory, migrate_schemas.

    .venv/bin/python -m bench scale [--hospitals 1000] [--requests 2000] [--concurrency 4] [--max-requests 300]

In a database of its own (`bench_scale`, dropped at the end), on the embedded
PostgreSQL of devtools or the server of DATABASE_URL:

1. Onboarding: hospitals #1..#N through tenants.services.hospital_create from
   the spare pool (refilled in untimed batches, as a worker would), each timed,
   statement by statement too (StatementClock). Each gets a verified admin (no
   password: tokens are minted, not logged in). #1 and #N are half an hour
   apart, so their ratio carries the machine's drift too; once the N exist,
   onboardings are therefore also timed side by side: into this database of N
   and into a peer database on the same server that holds one hospital
   (`bench_scale_one`, the demo hospital; a child process of its own), in
   alternation, each hospital purged again untimed, spares made ahead and both
   databases settled first.
2. Authed `GET /accounts/user/` req/s under gunicorn (2 sync workers,
   DB_CONN_MAX_AGE=60, DEBUG off) with the admins' Bearer tokens: on hospital #1
   when it is the only one; then, once the N hospitals exist and the database has
   settled (VACUUM ANALYZE and a CHECKPOINT, untimed: the state of a database whose
   hospitals came over months, not the last minutes' burst of DDL whose autovacuum
   would otherwise share the CPUs with the measurement): the requests spread over
   every hospital's subdomain (round robin), #1 of N alone, and the peer database
   of one hospital, so that both sides meet the same machine. The three servers
   run at once; after a warm-up that reaches each hospital from each worker, a
   round measures each in turn, the order rotating from round to round.
3. Memory of one long-lived connection: gunicorn with 1 sync worker
   (DB_CONN_MAX_AGE=3600), so one PostgreSQL backend serves everything. Its
   private memory (RssAnon in /proc/<pid>/status; relcache and catcache live
   there) after serving hospital #1, then after each pass over all N hospitals
   (`GET /accounts/user/` and `GET /api/me/permissions/`, which reads the
   hospital's own tables). Then the same passes with gunicorn `--max-requests`:
   the worker, and with it its connection, is replaced every that many
   requests; the largest backend seen is the bound.
4. migrate_schemas (tenants' command) with nothing to apply, in this process
   and as `manage.py migrate_schemas` processes; django-tenants' plain
   executor on a sample of schemas with nothing to apply; and hospitals 0004
   (a new column), with the migrations after it, rolled back first everywhere
   and applied again to all N hospitals through the command vs to the sample
   through the plain executor, per schema.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

from bench.driver import (
    HOST,
    LOGIN,
    TENANT_HOST,
    BenchError,
    Client,
    ServerProcess,
    admin_execute,
    bounded_int,
    dedicated_database,
    django_env,
    django_on_dedicated_database,
    machine,
    ratio_summary,
    request,
    run_clients,
    say,
    setup_django,
)
from bench.provisioning import warm_up
from devtools import REPO, commands

BENCH_DB = "bench_scale"
PEER_DB = "bench_scale_one"  # the same server, one hospital: what "req/s at 1 hospital" is measured against
SMOKE = ["--hospitals", "3", "--batch", "2", "--requests", "20", "--warmup-passes", "1", "--max-requests", "4"]
SMOKE += ["--migrate-sample", "2", "--rounds", "1", "--onboard-rounds", "2"]
FIGURES = r"req/s at \d+ hospitals / at 1: +[\d.]+x"
SPREAD_VS_PEER = "spread / the 1-hospital database"  # the by-round ratios the req/s goal is read from
SERVER_APPLICATION = "bench-scale-web"
PREVIOUS = ("hospitals", "0003_department_staffmember_department_patient_and_more")


# --------------------------------------------------------------------------
# Hospitals


def make_spares(count: int) -> int:
    """`count` spares at once: bare schemas, recorded stale, that migrate_schemas migrates on 2 processes and stamps.

    The same end state as spare_pool_refill (one schema at a time, in a worker), in about half the time on 2 cores.
    """
    import secrets

    from django.db import connection

    from tenants.models import SpareSchema
    from tenants.provisioning import SPARE_PREFIX, STALE

    names = [SPARE_PREFIX + secrets.token_hex(8) for _ in range(count)]
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f'CREATE SCHEMA "{name}"')
    SpareSchema.objects.bulk_create([SpareSchema(schema_name=name, fingerprint=STALE) for name in names])
    run_command(tenant=True, executor="multiprocessing")
    # A worker makes spares on a database session of its own; this one has just read every spare's
    # django_migrations (their relcache and catcache entries stay in its backend). The onboardings that
    # follow get a fresh session, as the web process that serves them would have (opened here, untimed).
    connection.close()
    connection.ensure_connection()
    return count


class StatementClock:
    """Where an onboarding's time goes: each SQL statement's time (by its text with names and literals
    blanked) and each COMMIT's, through Django's execute wrapper and the connection's commit."""

    LITERALS = re.compile(r"'[^']*'|\"[^\"]*\d[^\"]*\"|\b\w*\d\w*\b")  # schema and savepoint names too

    def __init__(self, connection):
        self.spent: dict[str, float] = {}  # of the current `measuring()`
        self.connection = connection
        self.commit = connection._commit

    def __call__(self, execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add(self.LITERALS.sub("?", " ".join(sql.split()))[:110], began)

    def add(self, key: str, began: float) -> None:
        self.spent[key] = self.spent.get(key, 0.0) + time.perf_counter() - began

    def timed_commit(self):
        began = time.perf_counter()
        try:
            return self.commit()
        finally:
            self.add("COMMIT", began)

    @contextlib.contextmanager
    def measuring(self):
        self.spent = {}
        self.connection._commit = self.timed_commit  # Django's commit bypasses the execute wrapper
        try:
            with self.connection.execute_wrapper(self):
                yield self.spent
        finally:
            del self.connection._commit


def create_hospitals(first: int, last: int, batch: int, timings: dict, spare_seconds: list, statements: dict) -> None:
    from tenants.models import SpareSchema
    from tenants.provisioning import migration_fingerprint

    current = migration_fingerprint()
    for number in range(first, last + 1):
        if not SpareSchema.objects.filter(fingerprint=current).exists():
            began = time.perf_counter()
            made = make_spares(min(batch, last - number + 1))
            spare_seconds.append((time.perf_counter() - began, made))
        _, timings[number], statements[number] = timed_onboarding(f"h{number:04d}")
        if number % 100 == 0:
            made = sum(n for _, n in spare_seconds)
            say(f"{number}/{last} hospitals; last onboarding {timings[number]:.3f} s; {made} spares made so far")


def timed_onboarding(slug: str):
    """hospital_create of `slug`, timed as a whole and statement by statement: (hospital, seconds, statements)."""
    from django.db import connection

    from tenants.services import hospital_create

    with StatementClock(connection).measuring() as spent:
        began = time.perf_counter()
        hospital = hospital_create(name=f"Scale {slug}", slug=slug, admin_email=f"admin@{slug}.bench.example")
        seconds = time.perf_counter() - began
    return hospital, seconds, spent


def onboard_and_purge(slug: str) -> tuple[float, dict[str, float]]:
    """One timed onboarding (seconds, statements), then the hospital suspended and purged, untimed."""
    from tenants.services import hospital_purge, hospital_suspend

    hospital, seconds, spent = timed_onboarding(slug)
    hospital_purge(hospital=hospital_suspend(hospital=hospital))
    return seconds, spent


def onboarding_peer() -> None:
    """The peer of the side-by-side onboardings: a child process with Django on the peer database (its
    DATABASE_URL). Reads `spares N` and `onboard SLUG` lines; answers each with a `peer: {json}` line."""
    setup_django(os.environ["DATABASE_URL"])
    for line in sys.stdin:
        command, argument = line.split()
        if command == "spares":
            make_spares(int(argument))
            warm_up(None)
            database_settle()
            answer: dict = {}
        else:
            seconds, spent = onboard_and_purge(argument)
            answer = {"seconds": seconds, "statements": spent}
        print(f"peer: {json.dumps(answer)}", flush=True)


class OnboardingPeer:
    """The child process of onboarding_peer, on `database_url`."""

    def __init__(self, stack, database_url: str):
        argv = commands.python("-c", "import bench.scale; bench.scale.onboarding_peer()")
        env = django_env(DATABASE_URL=database_url)
        self.proc = stack.spawn("onboarding peer", argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.stack = stack

    def onboard_and_purge(self, slug: str) -> tuple[float, dict[str, float]]:
        answer = self.ask(f"onboard {slug}")
        return answer["seconds"], answer["statements"]

    def ask(self, line: str) -> dict:
        self.proc.stdin.write(f"{line}\n".encode())
        self.proc.stdin.flush()
        for answer in self.proc.stdout:
            if answer.startswith(b"peer: "):
                return json.loads(answer[len(b"peer: ") :])
        raise BenchError(f"the onboarding peer exited (code {self.proc.wait()}) on `{line}`")

    def close(self) -> None:
        self.proc.stdin.close()
        self.stack.stop_child(self.proc)


def onboarding_side_by_side(stack, peer_url: str, args) -> dict:
    """Onboarding into this database of N hospitals and into the peer's of 1, in alternation (the order
    rotating), each hospital purged again untimed: every one meets N or 1 hospitals, at the same moment of
    the machine. Spares made ahead on both sides, both databases settled first."""
    peer = OnboardingPeer(stack, peer_url)
    try:
        say(f"onboarding side by side: {args.onboard_rounds} spares on each side, then both settled (untimed)")
        make_spares(args.onboard_rounds)
        database_settle()
        peer.ask(f"spares {args.onboard_rounds}")
        here: dict = {"seconds": [], "statements": []}
        there: dict = {"seconds": [], "statements": []}
        turns = [(here, onboard_and_purge), (there, peer.onboard_and_purge)]
        for number in range(args.onboard_rounds):
            for side, onboard in turns if number % 2 == 0 else turns[::-1]:
                seconds, spent = onboard(f"side{number:03d}")
                side["seconds"].append(seconds)
                side["statements"].append(spent)
    finally:
        peer.close()
    ratios = [a / b for a, b in zip(here["seconds"], there["seconds"], strict=True)]
    say(f"onboarding at {args.hospitals} / at 1 hospital, by round: {ratio_summary(ratios)}")
    return {"here": here, "there": there, "ratios": ratios}


def staff_tokens(first: int, last: int) -> dict[str, str]:
    """host -> a Bearer token of a verified hospital admin there (minted: no password, no Argon2)."""
    from django_tenants.utils import tenant_context

    from accounts.serializers import HospitalTokenObtainPairSerializer
    from accounts.services import user_create_verified
    from staff.models import StaffMember
    from staff.services import staff_member_create
    from tenants.models import Hospital
    from tenants.services import hospital_host

    tokens = {}
    for number in range(first, last + 1):
        hospital = Hospital.objects.get(slug=f"h{number:04d}")
        user = user_create_verified(hospital=hospital, email=f"staff@h{number:04d}.bench.example", password=None)
        with tenant_context(hospital):
            staff_member_create(user=user, role=StaffMember.Role.HOSPITAL_ADMIN)
        tokens[hospital_host(hospital.slug)] = str(HospitalTokenObtainPairSerializer.get_token(user).access_token)
    return tokens


# --------------------------------------------------------------------------
# The server under test


class Gunicorn(ServerProcess):
    """gunicorn with plain sync workers (not config/gunicorn.py: the same server whatever that file says)."""

    probe_path, probe_host = "/healthz", "localhost"

    def __init__(
        self, stack, name: str, *, workers: int, conn_max_age: int, max_requests: int = 0, database_url: str = ""
    ):
        super().__init__(stack, f"gunicorn ({name})", f"bench-scale-{name}.log")
        self.argv = commands.python("-m", "gunicorn", "config.wsgi", "--bind", f"{HOST}:{self.port}")
        self.argv += ["--workers", str(workers), "--worker-class", "sync", "--timeout", "120"]
        if max_requests:
            self.argv += ["--max-requests", str(max_requests)]
        self.env = django_env(DB_CONN_MAX_AGE=str(conn_max_age), DJANGO_DEBUG="false", LOG_LEVEL="WARNING")
        if database_url:
            self.env["DATABASE_URL"] = database_url
        url = self.env["DATABASE_URL"]  # its backends are told apart from this process's by application_name
        self.env["DATABASE_URL"] = f"{url}{'&' if '?' in url else '?'}application_name={SERVER_APPLICATION}"

    def command(self) -> list[str]:
        return list(self.argv)

    def environment(self) -> dict:
        return self.env


class SpreadClient(Client):
    """Sends GET `paths` to each host in turn, with that host's token."""

    def __init__(self, port: int, tokens: dict[str, str], paths: tuple[str, ...], start: int):
        super().__init__(port, "", "", quickack=True)
        hosts = list(tokens)
        offset = start % len(hosts)
        self.cycle = itertools.cycle([(h, p) for h in hosts[offset:] + hosts[:offset] for p in paths])
        self.tokens = tokens

    def send(self) -> None:
        host, path = next(self.cycle)
        self.headers = {"Host": host, "Authorization": f"Bearer {self.tokens[host]}"}
        self.get(path)


def spread_clients(port: int, tokens: dict[str, str], args) -> list[SpreadClient]:
    return [
        SpreadClient(port, tokens, ("/accounts/user/",), i * len(tokens) // args.concurrency)
        for i in range(args.concurrency)
    ]


def rate_of(server: Gunicorn, label: str, tokens: dict[str, str], args, warmup: int) -> float:
    """req/s of GET /accounts/user/ spread over `tokens`' hosts, after `warmup` requests per client thread."""
    try:
        seconds, latencies = run_clients(
            spread_clients(server.port, tokens, args), args.requests, warmup, args.time_limit
        )
    except BenchError as exc:
        raise server.fail(str(exc)) from None
    rate = args.requests / seconds
    say(f"{label}: {rate:.1f} req/s (p50 {statistics.median(latencies) * 1000:.2f} ms)")
    return rate


def full_warmup(tokens: dict[str, str], args) -> int:
    """Requests per client thread by which each of the server's 2 workers has met every hospital."""
    return max(20, args.warmup_passes * 2 * len(tokens) // args.concurrency)


def side_by_side(stack, sides: dict[str, tuple[str, dict[str, str]]], args) -> dict[str, list[float]]:
    """Every side's server runs at once (label -> (database URL, tokens)); after a warm-up that reaches each
    hospital from each worker, a round measures each side in turn, the order rotating from round to round,
    so that the machine's drift meets every side alike and no server is restarted between a round's runs."""
    rates: dict[str, list[float]] = {label: [] for label in sides}
    with contextlib.ExitStack() as running:
        servers = {}
        for label, (url, tokens) in sides.items():
            server = Gunicorn(stack, label.replace(" ", "-"), workers=2, conn_max_age=60, database_url=url)
            servers[label] = running.enter_context(server)
            rate_of(servers[label], f"{label} (warm-up run)", tokens, args, full_warmup(tokens, args))
        labels = list(sides)
        for round_number in range(args.rounds):
            turn = round_number % len(labels)
            for label in labels[turn:] + labels[:turn]:
                rates[label].append(rate_of(servers[label], label, sides[label][1], args, warmup=20))
    return rates


def database_settle() -> None:
    """VACUUM ANALYZE (catalogs included) and a CHECKPOINT: what autovacuum and the checkpointer would do in
    the minutes after the burst of DDL that made the hospitals, done now rather than during a measurement."""
    from django.db import connection

    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")
    say(f"database settled (VACUUM ANALYZE, CHECKPOINT) in {time.perf_counter() - began:.0f} s, untimed")


@contextlib.contextmanager
def one_hospital_peer(stack):
    """The peer database on the same server: migrated, with the demo hospital (bootstrap_demo) and nothing else.
    Yields its URL; the caller logs in once its server is up."""
    with dedicated_database(stack.ensure_database(), PEER_DB) as url:
        env = django_env(DATABASE_URL=url)
        for argv in (("migrate_schemas", "--noinput"), ("bootstrap_demo",)):
            result = subprocess.run(
                commands.python("manage.py", *argv), cwd=REPO, env=env, capture_output=True, text=True
            )
            if result.returncode != 0:
                raise BenchError(f"{PEER_DB}: manage.py {' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
        admin_execute(url, "VACUUM (ANALYZE)")
        admin_execute(url, "CHECKPOINT")
        say(f"{PEER_DB}: one hospital (demo), settled")
        yield url


def peer_token(stack, database_url: str) -> dict[str, str]:
    """A Bearer token of the peer's demo admin, from a real login on a server of the peer database."""
    with Gunicorn(stack, "peer-login", workers=1, conn_max_age=0, database_url=database_url) as server:
        status, body, _ = request(server.port, "POST", "/accounts/login/", host=TENANT_HOST, body=LOGIN)
    if status != 200:
        raise BenchError(f"{PEER_DB}: login answered {status}: {body[:300]!r}")
    return {TENANT_HOST: json.loads(body)["access"]}


# --------------------------------------------------------------------------
# A long-lived connection's memory


def backend_pids() -> list[int]:
    """The server's backends on this database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [SERVER_APPLICATION],
        )
        return [row[0] for row in cursor.fetchall()]


def private_kb(pid: int) -> int | None:
    """RssAnon of a process (its private memory: PostgreSQL's backend-local caches live there)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def one_pass(port: int, tokens: dict[str, str], paths: tuple[str, ...]) -> None:
    client = SpreadClient(port, tokens, paths, 0)
    try:
        for _ in range(len(tokens) * len(paths)):
            client.send()
    finally:
        client.close()


@contextlib.contextmanager
def peak_sampler():
    """Samples every server backend's private memory every 0.1 s; yields a dict holding the peak (kB)."""
    from django.db import connections

    seen = {"peak": 0, "backends": set()}
    stop = threading.Event()

    def sample():
        try:
            while not stop.is_set():
                for pid in backend_pids():
                    seen["backends"].add(pid)
                    seen["peak"] = max(seen["peak"], private_kb(pid) or 0)
                stop.wait(0.1)
        finally:
            connections.close_all()  # this thread's connection

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=30)


def connection_memory(stack, tokens: dict[str, str], first_host: str, args) -> dict:
    paths = ("/accounts/user/", "/api/me/permissions/")
    result: dict = {}
    with Gunicorn(stack, "one-connection", workers=1, conn_max_age=3600) as server:
        one_pass(server.port, {first_host: tokens[first_host]}, paths * 100)
        pids = backend_pids()
        if len(pids) != 1:
            raise BenchError(f"expected the one worker's backend, found {len(pids)}: {pids}")
        pid = pids[0]
        result["one_hospital"] = private_kb(pid)
        result["passes"] = []
        with peak_sampler() as seen:
            for _ in range(2):
                one_pass(server.port, tokens, paths)
                if backend_pids() != [pid]:
                    raise BenchError("the long-lived connection was replaced during the passes")
                result["passes"].append(private_kb(pid))
        result["peak"] = seen["peak"]
    say(f"one connection: {result['one_hospital']} kB after hospital #1, {result['passes']} kB after each pass")
    with (
        Gunicorn(stack, "recycled", workers=1, conn_max_age=3600, max_requests=args.max_requests) as server,
        peak_sampler() as seen,
    ):
        for _ in range(2):
            one_pass(server.port, tokens, paths)
    result["recycled_peak"] = seen["peak"]
    result["recycled_backends"] = len(seen["backends"])
    say(f"--max-requests {args.max_requests}: peak {seen['peak']} kB over {len(seen['backends'])} backends")
    return result


# --------------------------------------------------------------------------
# migrate_schemas


def rolled_back() -> str:
    """The migrations that going back to PREVIOUS unapplies everywhere (and migrate_schemas then applies again):
    `9 migrations (hospitals 0004-0007, staff 0001-0004)`."""
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    children = [child for child in graph.node_map[PREVIOUS].children if child.key[0] == PREVIOUS[0]]
    undone = {key for child in children for key in graph.backwards_plan(child.key)}
    numbers: dict[str, list[str]] = {}
    for app, name in sorted(undone):
        numbers.setdefault(app, []).append(name.split("_")[0])
    ranges = ", ".join(f"{app} {min(n)}-{max(n)}" for app, n in numbers.items())
    return f"{len(undone)} migrations ({ranges})"


def run_command(**options) -> float:
    from django.core.management import call_command

    from tenants.management.commands.migrate_schemas import Command as MigrateSchemas

    began = time.perf_counter()
    call_command(MigrateSchemas(), interactive=False, verbosity=0, **options)
    return time.perf_counter() - began


def plain_executor(schema_names: list[str]) -> float:
    """django-tenants' own standard executor over `schema_names` (what its migrate_schemas runs per schema)."""
    from django_tenants.migration_executors.standard import StandardExecutor
    from django_tenants.utils import get_tenant_base_migrate_command_class

    parser = get_tenant_base_migrate_command_class()().create_parser("manage.py", "migrate")
    options = {**vars(parser.parse_args([])), "interactive": False, "verbosity": 0, "skip_checks": True}
    began = time.perf_counter()
    StandardExecutor((), options).run_migrations(tenants=list(schema_names))
    return time.perf_counter() - began


def manage_py(*argv: str) -> float:
    began = time.perf_counter()
    result = subprocess.run(
        commands.python("manage.py", "migrate_schemas", "--noinput", *argv),
        cwd=REPO,
        env=django_env(),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BenchError(f"manage.py migrate_schemas {' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - began


def migrations(args) -> dict:
    from tenants.models import Hospital, SpareSchema

    names = list(Hospital.objects.exclude(schema_name="public").values_list("schema_name", flat=True))
    sample = names[: args.migrate_sample]
    result: dict = {"hospitals": len(names), "sample": len(sample)}
    run_command()  # every record current (the public schema's included)
    say("migrate_schemas with nothing to apply")
    result["noop_tenant"] = min(run_command(tenant=True) for _ in range(3))
    result["noop_all"] = min(run_command() for _ in range(3))
    result["noop_process_tenant"] = manage_py("--tenant", "--executor=multiprocessing")
    result["noop_process_all"] = manage_py()
    result["noop_plain_sample"] = plain_executor(sample)

    result["applied"] = rolled_back()
    say(f"rolling back {result['applied']} in all {len(names)} hospitals (untimed)")
    run_command(app_label=PREVIOUS[0], migration_name=PREVIOUS[1], tenant=True, executor="multiprocessing")
    say("applying them again through migrate_schemas")
    result["apply_schemas"] = len(names) + SpareSchema.objects.count()  # the rollback took the spares back too
    result["apply_command"] = run_command(tenant=True)
    say(f"and to {len(sample)} of them through django-tenants' plain executor")
    for name in sample:
        run_command(app_label=PREVIOUS[0], migration_name=PREVIOUS[1], schema_name=name)
    result["apply_plain_sample"] = plain_executor(sample)
    run_command()  # records back to current for the sample
    return result


# --------------------------------------------------------------------------
# Report


def report_statements(before: tuple[list, list], after: tuple[list, list], labels: str) -> None:
    """Two groups of onboardings, each (seconds, statements): time in SQL (COMMIT included) and outside it,
    and the statements whose median grew most from the first group to the second."""

    def p50(group: tuple[list, list], key: str | None = None) -> float:
        if key is None:
            return statistics.median(sum(spent.values()) for spent in group[1])
        return statistics.median(spent.get(key, 0.0) for spent in group[1])

    def outside(group: tuple[list, list]) -> float:
        return statistics.median(s - sum(spent.values()) for s, spent in zip(*group, strict=True))

    print(
        f"    p50 in SQL (COMMIT included) {p50(before) * 1000:.1f} / {p50(after) * 1000:.1f} ms, outside it "
        f"{outside(before) * 1000:.1f} / {outside(after) * 1000:.1f} ms ({labels}); the statements that grew most:"
    )
    keys = {key for spent in before[1] + after[1] for key in spent}
    for key in sorted(keys, key=lambda key: p50(before, key) - p50(after, key))[:5]:
        print(f"      {p50(before, key) * 1000:6.2f} -> {p50(after, key) * 1000:6.2f} ms  {key}")


def report(
    args,
    onboard: dict,
    statements: dict,
    side: dict,
    spares: list,
    rates: dict,
    by_round: dict,
    memory: dict,
    migrate: dict | None,
) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_class")
        relations = cursor.fetchone()[0]
    n = args.hospitals
    times = [onboard[i] for i in sorted(onboard)]
    head, tail = times[:25], times[-25:]
    spare_seconds = sum(s for s, _ in spares)
    spares_made = sum(m for _, m in spares)
    print()
    print(machine(f", PostgreSQL {server_version}; client and server share these CPUs"))
    print(f"{n} hospitals in one database ({relations} relations in pg_class)")
    print()
    refills = "every spare made ahead" if args.spares_ahead else f"pool refilled by {args.batch} in between"
    print(f"onboarding (hospital_create from the spare pool, no admin password; {refills})")
    print(
        f"  #1 {times[0]:.3f} s, #{n} {times[-1]:.3f} s; p50 {statistics.median(times):.3f} s, max {max(times):.3f} s"
    )
    ratio = statistics.median(tail) / statistics.median(head)
    print(
        f"  in order: p50 of #1-#{len(head)} {statistics.median(head):.3f} s, of the last {len(tail)} "
        f"{statistics.median(tail):.3f} s: {ratio:.2f}x (minutes apart: the machine's drift is in it)"
    )
    numbers = sorted(onboard)
    report_statements(
        ([onboard[k] for k in numbers[:25]], [statements[k] for k in numbers[:25]]),
        ([onboard[k] for k in numbers[-25:]], [statements[k] for k in numbers[-25:]]),
        "first / last 25",
    )
    here, there = side["here"], side["there"]
    at_n, at_1 = statistics.median(here["seconds"]), statistics.median(there["seconds"])
    print(
        f"  side by side, once the {n} exist: p50 onboarding into a database of {n} hospitals {at_n:.3f} s, "
        f"of 1 hospital {at_1:.3f} s: {at_n / at_1:.2f}x (alternating, each purged again; spares made ahead)"
    )
    print(f"    at {n} / at 1 by round: {ratio_summary(side['ratios'])}")
    report_statements((there["seconds"], there["statements"]), (here["seconds"], here["statements"]), f"at 1 / at {n}")
    print(
        f"  spares: {spares_made} made in {spare_seconds:.0f} s ({spare_seconds / max(spares_made, 1):.3f} s each, "
        "untimed, as a worker would)"
    )
    print()
    print(
        f"authed GET /accounts/user/, gunicorn 2 sync workers, {args.concurrency} client threads, keep-alive off, "
        f"median of {args.rounds} runs of {args.requests}"
    )
    for label, rate in rates.items():
        print(f"  {label:<40} {rate:>8.1f} req/s")
    spread = rates[f"{n} hospitals, spread over all"] / rates["database with 1 hospital, alternating"]
    same_time = rates[f"{n} hospitals, spread over all"] / rates[f"hospital #1 of {n}"]
    before = rates[f"{n} hospitals, spread over all"] / rates["1 hospital (the only one)"]
    print(
        f"  req/s at {n} hospitals / at 1: {spread:.2f}x (spread / the 1-hospital database, alternating; "
        f"spread / #1 of {n}: {same_time:.2f}x; spread / this database before the others existed: {before:.2f}x)"
    )
    for label, ratios in by_round.items():
        print(f"  {label} by round: {', '.join(f'{r:.2f}' for r in ratios)}; {ratio_summary(ratios)}")
    print()
    grown = memory["passes"][-1] - memory["one_hospital"]
    print("one long-lived connection (gunicorn 1 sync worker), its backend's private memory (RssAnon)")
    print(f"  after 200 requests to hospital #1:              {memory['one_hospital'] / 1024:>7.1f} MB")
    for i, kb in enumerate(memory["passes"], 1):
        print(f"  after pass {i} over all {n} hospitals (2 GETs each): {kb / 1024:>7.1f} MB")
    print(f"  growth: {grown / 1024:.1f} MB, {grown / max(n - 1, 1):.1f} kB per hospital served")
    print(f"  peak while serving (sampled every 0.1 s):        {memory['peak'] / 1024:>7.1f} MB")
    print(
        f"  with gunicorn --max-requests {args.max_requests}: peak {memory['recycled_peak'] / 1024:.1f} MB "
        f"over {memory['recycled_backends']} successive backends"
    )
    print()
    # Both goals are read by round (a round's sides run back to back), with the interval the rounds' noise leaves.
    side_ratio = statistics.median(side["ratios"])
    rate_ratios = by_round[SPREAD_VS_PEER]
    rate_ratio = statistics.median(rate_ratios)
    targets = [
        f"onboarding at {n} within 1.2x of at 1 (side by side, median by round): {side_ratio:.2f}x  "
        f"{'met' if side_ratio <= 1.2 else 'MISSED'} ({ratio_summary(side['ratios'])}; in order: {ratio:.2f}x)",
        f"req/s at {n} within 5% of 1 hospital (side by side, median by round): {rate_ratio:.2f}x  "
        f"{'met' if rate_ratio >= 0.95 else 'MISSED'} ({ratio_summary(rate_ratios)})",
    ]
    if migrate is not None:
        targets += report_migrations(migrate)
    print("targets:")
    for line in targets:
        print(f"  {line}")


def report_migrations(migrate: dict) -> list[str]:
    """Prints part 4's figures; returns its target lines."""
    h, s = migrate["hospitals"], migrate["sample"]
    print(f"migrate_schemas, {h} hospitals")
    print(f"  nothing to apply, --tenant, in process (best of 3):          {migrate['noop_tenant']:>7.2f} s")
    print(f"  nothing to apply, public + tenants, in process (best of 3):  {migrate['noop_all']:>7.2f} s")
    print(f"  nothing to apply, manage.py migrate_schemas --tenant:        {migrate['noop_process_tenant']:>7.2f} s")
    print(f"  nothing to apply, manage.py migrate_schemas:                 {migrate['noop_process_all']:>7.2f} s")
    plain_noop = migrate["noop_plain_sample"] / max(s, 1)
    print(
        f"  django-tenants' plain executor, nothing to apply:            {plain_noop * 1000:>7.1f} ms per schema "
        f"(over {s}; {plain_noop * h:.1f} s for {h})"
    )
    command_each = migrate["apply_command"] / migrate["apply_schemas"]
    plain_each = migrate["apply_plain_sample"] / max(s, 1)
    print(
        f"  {migrate['applied']} applied: migrate_schemas {command_each * 1000:.1f} ms per schema over "
        f"{h} hospitals + {migrate['apply_schemas'] - h} spares ({migrate['apply_command']:.1f} s); "
        f"plain executor {plain_each * 1000:.1f} ms per schema over {s}: {command_each / plain_each:.2f}x"
    )
    print()
    noop = migrate["noop_tenant"]
    ok = command_each <= plain_each * 1.05
    return [
        f"nothing to apply under 2 s:                  {noop:.2f} s  {'met' if noop < 2 else 'MISSED'}",
        f"migrations at most the plain cost:           {command_each / plain_each:.2f}x  {'met' if ok else 'MISSED'}",
    ]


# --------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("--hospitals", type=bounded_int(2, 5000), default=1000, help="hospitals (default 1000)")
    parser.add_argument("--batch", type=bounded_int(1, 500), default=50, help="spares made per untimed refill")
    parser.add_argument("--requests", type=bounded_int(1, 1_000_000), default=2000, help="measured GETs per run")
    parser.add_argument("--concurrency", type=bounded_int(1, 64), default=4, help="client threads (default 4)")
    parser.add_argument(
        "--warmup-passes", type=bounded_int(1, 10), default=1, help="warm-up passes over every hospital per run"
    )
    parser.add_argument(
        "--max-requests", type=bounded_int(2, 1_000_000), default=300, help="gunicorn --max-requests of the bound"
    )
    parser.add_argument(
        "--migrate-sample", type=bounded_int(1, 5000), default=100, help="schemas run through the plain executor"
    )
    parser.add_argument("--rounds", type=bounded_int(1, 200), default=25, help="req/s rounds (default 25)")
    parser.add_argument(
        "--onboard-rounds",
        type=bounded_int(1, 500),
        default=25,
        help="onboardings at N and at 1 hospital side by side, once the N exist (default 25 each)",
    )
    parser.add_argument(
        "--spares-ahead",
        action="store_true",
        help="make every spare before the first timed onboarding (no refill's DDL between onboardings)",
    )
    parser.add_argument(
        "--no-migrations", action="store_true", help="leave out part 4 (migrate_schemas; ~15 of the ~40 minutes)"
    )
    parser.add_argument("--time-limit", type=bounded_int(1, 3600), default=900, help="seconds per req/s run")


def validate(parser, args) -> None:
    args.migrate_sample = min(args.migrate_sample, args.hospitals)


def run(stack, args) -> int:
    began = time.monotonic()
    os.environ["JWT_ACCESS_MINUTES"] = "240"  # the minted tokens outlive the run
    with django_on_dedicated_database(stack, BENCH_DB):
        from tenants.provisioning import spare_pool_refill
        from tenants.services import hospital_host

        onboard: dict[int, float] = {}
        statements: dict[int, dict[str, float]] = {}
        spares: list = []
        spare_pool_refill(size=2)
        warm_up(None)  # a first onboarding in a fresh process pays for imports: rolled back, untimed
        create_hospitals(1, 1, args.batch, onboard, spares, statements)
        tokens = staff_tokens(1, 1)
        first_host = hospital_host("h0001")
        only = side_by_side(stack, {"1 hospital": ("", tokens)}, args)["1 hospital"]
        rates = {"1 hospital (the only one)": statistics.median(only)}
        if args.spares_ahead:
            say(f"making {args.hospitals - 1} spares ahead (untimed)")
            began_spares = time.perf_counter()
            made = make_spares(args.hospitals - 1)
            spares.append((time.perf_counter() - began_spares, made))
            database_settle()
        say(f"creating hospitals #2..#{args.hospitals}")
        create_hospitals(2, args.hospitals, args.batch, onboard, spares, statements)
        tokens.update(staff_tokens(2, args.hospitals))
        with one_hospital_peer(stack) as peer_url:
            side = onboarding_side_by_side(stack, peer_url, args)
            database_settle()
            admin_execute(peer_url, "VACUUM (ANALYZE)")
            admin_execute(peer_url, "CHECKPOINT")
            peer_tokens = peer_token(stack, peer_url)
            run = side_by_side(
                stack,
                {
                    "spread": ("", tokens),
                    "1 of many": ("", {first_host: tokens[first_host]}),
                    "peer with 1": (peer_url, peer_tokens),
                },
                args,
            )
        spread, single, peer = run["spread"], run["1 of many"], run["peer with 1"]
        rates[f"{args.hospitals} hospitals, spread over all"] = statistics.median(spread)
        rates[f"hospital #1 of {args.hospitals}"] = statistics.median(single)
        rates["database with 1 hospital, alternating"] = statistics.median(peer)
        # A round's runs are back to back: their ratios carry less of the machine's drift than the medians.
        by_round = {
            SPREAD_VS_PEER: [a / b for a, b in zip(spread, peer, strict=True)],
            f"spread / #1 of {args.hospitals}": [a / b for a, b in zip(spread, single, strict=True)],
        }
        memory = connection_memory(stack, tokens, first_host, args)
        migrate = None if args.no_migrations else migrations(args)
        report(args, onboard, statements, side, spares, rates, by_round, memory, migrate)
    say(f"done in {time.monotonic() - began:.0f} s")
    return 0
