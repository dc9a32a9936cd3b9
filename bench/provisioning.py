"""Onboarding time with the pool of spare schemas vs django-tenants' default path, as hospitals accumulate.

    .venv/bin/python -m bench provisioning [--hospitals 300] [--batch 25] [--checkpoints 1,100,N]

Provisions hospitals #1..#N through tenants.services.hospital_create, which
claims a pre-migrated spare schema and renames it. The pool is refilled in
batches between timed creations (spare_pool_refill, untimed), so the times are
onboarding only. At each checkpoint (#1, #100, #300) one more hospital is
provisioned through django-tenants' default path (CREATE SCHEMA + every tenant
migration, in the same hospital_create) by making every spare unavailable: their
rows are locked by another session, so the claim finds none, as with an empty
pool. Then `migrate_schemas` (nothing to apply) is timed across all those
hospitals and the spares, with the standard and the multiprocessing executors.

Runs in a database of its own, `bench_provisioning`, on the embedded PostgreSQL
of devtools (started, and afterwards stopped, only if it is not
already running) or on the server of DATABASE_URL; it is dropped at the end.
By default admins are given no password (hospital_create's usual case), so the
times hold no Argon2 hashing; --admin-password adds it. Tasks are published to
Celery's in-memory transport (nobody consumes them).
"""

import statistics
import time
from contextlib import contextmanager, nullcontext

from bench.driver import BenchError, django_on_dedicated_database, machine, say

BENCH_DB = "bench_provisioning"
PASSWORD = "bench-admin-Pass-42"
MULTIPROCESSING_PROCESSES = 2
SMOKE = ["--hospitals", "3", "--batch", "2"]  # checkpoints 1 and 3, from --hospitals
FIGURES = r"at least 3x faster than default: +[\d.]+x"


# --------------------------------------------------------------------------
# Measurements


@contextmanager
def spares_unavailable():
    """Locks every spare row from another session: claims skip them, as if the pool were empty."""
    from django.db import connections

    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("SELECT id FROM tenants_spareschema FOR UPDATE")
        yield
    finally:
        other.rollback()
        other.close()


def timed_create(slug: str, admin_password: str | None) -> float:
    from tenants.services import hospital_create

    began = time.perf_counter()
    hospital_create(
        name=f"Bench {slug}", slug=slug, admin_email=f"admin@{slug}.bench.example", admin_password=admin_password
    )
    return time.perf_counter() - began


def warm_up(password: str | None) -> dict:
    """One onboarding through each path, rolled back, before anything is timed.

    A fresh process's first call pays for imports, query compilation and the
    broker connection, whichever path it takes; that is not what the pool
    changes, and it would flatter every later hospital next to #1.
    """
    from django.db import transaction

    from tenants.tasks import spare_pool_refill_task

    class Rollback(Exception):
        pass

    cold = {}
    for path, unavailable in (("pool", nullcontext), ("default path", spares_unavailable)):
        try:
            with unavailable(), transaction.atomic():
                cold[path] = timed_create(f"warm-up-{path.split()[0]}", password)
                raise Rollback
        except Rollback:
            pass
    spare_pool_refill_task.apply_async()  # the broker connection (the rollback discarded the publish)
    return cold


def provision(args) -> dict:
    from tenants.models import SpareSchema
    from tenants.provisioning import migration_fingerprint, spare_pool_refill

    password = PASSWORD if args.admin_password else None
    current = migration_fingerprint()

    def pool() -> int:
        return SpareSchema.objects.filter(fingerprint=current).count()

    began = time.perf_counter()
    refilled = spare_pool_refill(size=args.batch)
    refill_seconds = time.perf_counter() - began
    cold = warm_up(password)
    say("warm-up (rolled back): " + ", ".join(f"{path} {seconds:.3f} s" for path, seconds in cold.items()))
    pooled, default = {}, {}
    for number in range(1, args.hospitals + 1):
        if pool() == 0:
            began = time.perf_counter()
            refilled += spare_pool_refill(size=args.batch)
            refill_seconds += time.perf_counter() - began
        before = pool()
        pooled[number] = timed_create(f"pool-{number:04d}", password)
        if pool() != before - 1:
            raise BenchError(f"hospital #{number} did not claim a spare")
        if number in args.checkpoints:
            with spares_unavailable():
                default[number] = timed_create(f"default-{number:04d}", password)
            if pool() != before - 1:
                raise BenchError(f"the default-path hospital at #{number} claimed a spare")
            say(f"#{number}: pool {pooled[number]:.3f} s, default path {default[number]:.3f} s")
        if number % 25 == 0:
            say(
                f"{number}/{args.hospitals} hospitals; last {pooled[number]:.3f} s; "
                f"{refilled} spares made so far in {refill_seconds:.1f} s"
            )
    refilled += spare_pool_refill()  # a pool of the usual size for migrate_schemas to find
    return {
        "pooled": pooled,
        "default": default,
        "refilled": refilled,
        "refill_seconds": refill_seconds,
        "spares_left": pool(),
        "cold": cold,
    }


def time_migrate_schemas() -> dict:
    """Our migrate_schemas (hospitals, then spares), with nothing to apply, per executor."""
    from django.core.management import call_command

    from tenants.management.commands.migrate_schemas import Command as MigrateSchemas

    results = {}
    for executor in ("standard", "multiprocessing"):
        say(f"migrate_schemas --executor {executor}")
        began = time.perf_counter()
        call_command(MigrateSchemas(), executor=executor, interactive=False, verbosity=0)
        results[executor] = time.perf_counter() - began
    return results


def argon2_seconds() -> float:
    from django.contrib.auth.hashers import make_password

    make_password(PASSWORD)
    began = time.perf_counter()
    for _ in range(3):
        make_password(PASSWORD)
    return (time.perf_counter() - began) / 3


# --------------------------------------------------------------------------
# Report


def report(args, result: dict, migrate: dict) -> None:
    from django.db import connection

    from tenants.models import Hospital

    pooled, default = result["pooled"], result["default"]
    times = [pooled[n] for n in sorted(pooled)]
    p50 = statistics.median(times)
    first, last = args.checkpoints[0], args.checkpoints[-1]
    hospitals = Hospital.objects.exclude(schema_name="public").count()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]

    print()
    print(machine(f", PostgreSQL {server_version}"))
    print(
        f"hospital_create, {args.hospitals} hospitals through the pool (refilled in batches of {args.batch}, "
        f"untimed) + 1 through the default path at each checkpoint; admin password: "
        f"{'yes (Argon2)' if args.admin_password else 'none'}"
    )
    header = f"{'hospital':>9} {'pool s':>8} {'default path s':>15} {'default / pool':>15}"
    print(header)
    print("-" * len(header))
    for number in args.checkpoints:
        print(
            f"{'#' + str(number):>9} {pooled[number]:>8.3f} {default[number]:>15.3f} "
            f"{default[number] / pooled[number]:>14.1f}x"
        )
    head, tail = times[:25], times[-25:]
    p90 = statistics.quantiles(times, n=10, method="inclusive")[-1]
    print(
        f"pool, all {len(times)}: p50 {p50:.3f} s, p90 {p90:.3f} s, "
        f"max {max(times):.3f} s; p50 of #1-#{len(head)} {statistics.median(head):.3f} s, "
        f"of the last {len(tail)} {statistics.median(tail):.3f} s"
    )
    blocks = [times[i : i + 50] for i in range(0, len(times), 50)]
    print(
        "pool p50 per 50 hospitals: "
        + ", ".join(
            f"#{i * 50 + 1}-#{i * 50 + len(block)} {statistics.median(block):.3f} s" for i, block in enumerate(blocks)
        )
    )
    print(
        f"spares: {result['refilled']} made in {result['refill_seconds']:.1f} s "
        f"({result['refill_seconds'] / max(result['refilled'], 1):.3f} s each, outside the timings); "
        f"{result['spares_left']} left in the pool"
    )
    print(
        "first call in a fresh process (the warm-up, rolled back, not counted): "
        + ", ".join(f"{path} {seconds:.3f} s" for path, seconds in result["cold"].items())
    )
    included = "included in" if args.admin_password else "not in"
    print(f"Argon2 hash of one password on this machine ({included} the times above): {argon2_seconds():.3f} s")
    print()
    print(f"migrate_schemas, nothing to apply: public + {hospitals} hospitals + {result['spares_left']} spares")
    for executor, seconds in migrate.items():
        label = f"{executor} ({MULTIPROCESSING_PROCESSES} processes)" if executor == "multiprocessing" else executor
        print(
            f"  {label:<28} {seconds:>7.2f} s  ({seconds / (hospitals + result['spares_left']) * 1000:.0f} ms "
            f"per tenant schema)"
        )
    print()
    ratio = pooled[last] / pooled[first]
    speedups = [default[n] / pooled[n] for n in args.checkpoints]
    print("targets:")
    print(f"  p50 under 0.2 s:                    {p50:.3f} s  {'met' if p50 < 0.2 else 'MISSED'}")
    print(f"  #{last} within 1.2x of #{first}:              {ratio:.2f}x    {'met' if ratio <= 1.2 else 'MISSED'}")
    print(
        f"  at least 3x faster than default:    {min(speedups):.1f}x (lowest)  "
        f"{'met' if min(speedups) >= 3 else 'MISSED'}"
    )


# --------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("--hospitals", type=int, default=300, help="hospitals provisioned through the pool")
    parser.add_argument("--batch", type=int, default=25, help="spares made per (untimed) refill")
    parser.add_argument(
        "--checkpoints",
        default=None,
        help="hospitals also provisioned through the default path (default 1,100,N for --hospitals N, "
        "without those above N)",
    )
    parser.add_argument("--admin-password", action="store_true", help="give each admin a password (Argon2)")


def validate(parser, args) -> None:
    if args.checkpoints is None:  # the defaults follow --hospitals
        args.checkpoints = sorted({n for n in (1, 100, args.hospitals) if n <= args.hospitals})
    else:
        args.checkpoints = sorted({int(n) for n in args.checkpoints.split(",")})
    if not 1 <= args.hospitals <= 5000:
        parser.error("--hospitals must be between 1 and 5000")
    if not 1 <= args.batch <= 500:
        parser.error("--batch must be between 1 and 500")
    if not args.checkpoints or args.checkpoints[0] < 1 or args.checkpoints[-1] > args.hospitals:
        parser.error("--checkpoints must lie between 1 and --hospitals")


def run(stack, args) -> int:
    began = time.monotonic()
    with django_on_dedicated_database(stack, BENCH_DB):
        from django.conf import settings

        settings.TENANT_MULTIPROCESSING_MAX_PROCESSES = MULTIPROCESSING_PROCESSES
        result = provision(args)
        migrate = time_migrate_schemas()
        report(args, result, migrate)
    say(f"done in {time.monotonic() - began:.0f} s")
    return 0
