"""Requests per second through 1 and through 2 web hosts of the multi-host deployment (devtools.multihost).

    sudo .venv/bin/python -m bench multihost [--requests 2000] [--concurrency 8] [--web-concurrency 2]

One deployment on network namespaces (PostgreSQL + PgBouncer, Redis, a worker host, two gunicorn hosts with
config/gunicorn.py and WEB_CONCURRENCY processes each); the clients, in the root namespace, send authenticated
`GET /accounts/user/` (keep-alive, a Bearer token), first all to web1, then to web1 and web2 in turn, then all
to web1 again with twice the processes (as many as both hosts had). Every
host shares this machine's cores with the clients: the figures show what a second host adds on them, not
what a second machine would. Needs root and PgBouncer (scripts/install-pgbouncer.sh); elsewhere it says why
and exits 0, so `make bench-smoke` still runs the other scenarios.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.driver import BenchError, Client, Timings, add_client_arguments, bounded_int, machine, run_clients, say
from devtools import multihost
from devtools.waits import free_port

SMOKE = ["--requests", "40", "--warmup", "2", "--concurrency", "2"]
FIGURES = r"(2 hosts / 1 host req/s: [\d.]+x|skipped: .+)"
SLUG = "bench"
HOST = f"{SLUG}.{multihost.BASE_DOMAIN}"
ADMIN = {"email": "admin@bench.example", "password": "Bench-admin-pass-1"}
HEADERS = {"Host": HOST, "X-Forwarded-Proto": "https"}  # as the TLS-terminating balancer sends it


@dataclass
class Result(Timings):
    label: str
    requests: int
    seconds: float
    latencies: list = field(repr=False)


class HostClient(Client):
    """bench.driver's keep-alive client, on one web host's address."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(0, HOST, token, quickack=False)  # gunicorn writes each answer at once
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.conn.timeout)
        self.headers["X-Forwarded-Proto"] = "https"

    def send(self) -> None:
        self.get("/accounts/user/")


def log_in(url: str) -> str:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request(
            "POST", "/accounts/login/", body=json.dumps(ADMIN), headers={**HEADERS, "Content-Type": "application/json"}
        )
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise BenchError(f"login on {url} answered HTTP {response.status}: {body[:300]!r}")
    return json.loads(body)["access"]


def measure(label: str, urls: list[str], token: str, args) -> Result:
    clients = [HostClient(urls[n % len(urls)], token) for n in range(args.concurrency)]
    say(f"{label}: {args.requests} requests, {args.concurrency} clients")
    seconds, latencies = run_clients(clients, args.requests, args.warmup, args.time_limit)
    return Result(label, args.requests, seconds, latencies)


def report(results: list[Result], args) -> None:
    print()
    print(machine() + "; every host and the clients share these CPUs")
    print(
        f"GET /accounts/user/ on {HOST}, Bearer token, {args.concurrency} keep-alive clients; each web host: gunicorn "
        f"(config/gunicorn.py), WEB_CONCURRENCY={args.web_concurrency}; PostgreSQL through PgBouncer (session mode)"
    )
    header = f"{'web hosts x processes':<22} {'requests':>8} {'seconds':>8} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.label:<22} {r.requests:>8} {r.seconds:>8.2f} {r.rate:>8.1f} {r.percentile(50):>7.2f} "
            f"{r.percentile(95):>7.2f}"
        )
    one, two, doubled = results
    print(f"2 hosts / 1 host req/s: {two.rate / one.rate:.2f}x")
    print(f"2 hosts / 1 host with as many processes as both: {two.rate / doubled.rate:.2f}x")


def add_arguments(parser) -> None:
    add_client_arguments(parser, requests=2000, concurrency=8, warmup=20)
    parser.add_argument(
        "--web-concurrency",
        type=bounded_int(1, 16),
        default=2,
        help="gunicorn processes per web host (WEB_CONCURRENCY, default 2)",
    )


def run(stack, args) -> int:
    if reason := multihost.unavailable():
        print(f"bench: multihost skipped: {reason}")
        return 0
    with multihost.Deployment(mail_port=free_port(), web_concurrency=args.web_concurrency) as deployment:
        deployment.manage(
            *("create_hospital", "--name", "Bench", "--slug", SLUG),
            *("--admin-email", ADMIN["email"], "--admin-password", ADMIN["password"]),
        )
        token = log_in(deployment.web_urls[0])
        n = args.web_concurrency
        results = [
            measure(f"1 x {n}", deployment.web_urls[:1], token, args),
            measure(f"2 x {n}", deployment.web_urls, token, args),
        ]
        # The same processes on one host: what the second host adds beyond its processes.
        web1 = deployment.hosts["web1"]
        web1.stop()
        web1.processes["gunicorn"].env["WEB_CONCURRENCY"] = str(2 * n)
        web1.start()
        results.append(measure(f"1 x {2 * n}", deployment.web_urls[:1], token, args))
    report(results, args)
    return 0
