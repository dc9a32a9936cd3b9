"""Throughput of authenticated `GET /accounts/user/`: persistent vs per-request DB connections.

    .venv/bin/python -m bench auth_user [--requests 2000] [--concurrency 1]

Runs the demo hospital (`bootstrap_demo`) under `manage.py runserver` twice,
once with DB_CONN_MAX_AGE=60 and once with DB_CONN_MAX_AGE=0, and prints
requests per second and latency percentiles for each.

If DATABASE_URL is unset, the embedded PostgreSQL of devtools is used (started,
and afterwards stopped, only if it is not already running).
Everything talks to 127.0.0.1; the hospital is chosen by the Host header.
"""

from dataclasses import dataclass, field

from bench.driver import (
    TENANT_HOST,
    BenchError,
    Client,
    Server,
    Timings,
    add_client_arguments,
    log_in,
    machine,
    prepare_demo,
    run_clients,
    say,
)

MODES = [("persistent", 60), ("per-request", 0)]  # (label, DB_CONN_MAX_AGE)
SMOKE = ["--requests", "20", "--warmup", "2"]
FIGURES = r"speed-up \(persistent / per-request req/s\): [\d.]+x"


@dataclass
class Result(Timings):
    mode: str
    conn_max_age: int
    requests: int
    seconds: float
    latencies: list = field(repr=False)
    tcp_connections: int


class UserClient(Client):
    def send(self) -> None:
        self.get("/accounts/user/")


def bench_mode(stack, mode: str, conn_max_age: int, args) -> Result:
    say(f"{mode} (DB_CONN_MAX_AGE={conn_max_age}): {args.requests} requests, concurrency {args.concurrency}")
    with Server(stack, mode, conn_max_age) as server:
        try:
            token = log_in(server.port)
            clients = [UserClient(server.port, TENANT_HOST, token, args.quickack) for _ in range(args.concurrency)]
            seconds, latencies = run_clients(clients, args.requests, args.warmup, args.time_limit)
        except BenchError as exc:
            raise server.fail(str(exc)) from None
    return Result(mode, conn_max_age, args.requests, seconds, latencies, sum(c.opened for c in clients))


def report(results, args) -> None:
    print()
    print(machine() + "; client and server share these CPUs")
    print(
        f"GET /accounts/user/ on {TENANT_HOST}, Bearer token, concurrency {args.concurrency}, "
        f"manage.py runserver (DEBUG=false), client TCP_QUICKACK {'on' if args.quickack else 'off'}"
    )
    header = f"{'mode':<28} {'requests':>8} {'seconds':>8} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'tcp conns':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        label = f"{r.mode} (CONN_MAX_AGE={r.conn_max_age})"
        print(
            f"{label:<28} {r.requests:>8} {r.seconds:>8.2f} {r.rate:>8.1f} {r.percentile(50):>7.2f} "
            f"{r.percentile(95):>7.2f} {r.tcp_connections:>9}"
        )
    persistent, per_request = results
    print(f"speed-up (persistent / per-request req/s): {persistent.rate / per_request.rate:.2f}x")


def add_arguments(parser) -> None:
    add_client_arguments(parser, requests=2000, concurrency=1, warmup=50)


def run(stack, args) -> int:
    prepare_demo(stack)
    results = [bench_mode(stack, mode, age, args) for mode, age in MODES]
    report(results, args)
    return 0
