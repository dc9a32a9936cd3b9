"""What the scenarios share: errors and output, the database they run in, the runserver under test, HTTP clients."""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing.util
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devtools import REPO, commands
from devtools.stack import Stack
from devtools.waits import TimedOut, free_port, wait_until

HOST = "127.0.0.1"
TENANT_HOST = "demo.localhost"  # tenants.services.hospital_host("demo") with the default BASE_DOMAIN
LOGIN = {"email": "admin@demo.example", "password": "demo-admin-pass-1"}  # from bootstrap_demo
SETTINGS = "config.settings.local"
STEP_TIMEOUT = 300.0  # seconds for migrate_schemas / bootstrap_demo
SERVER_START_TIMEOUT = 60.0  # runserver runs the system checks before it listens
HTTP_TIMEOUT = 30.0  # per socket operation
MAX_CONCURRENCY = 64
LOG_DIR = REPO / ".run"


class BenchError(Exception):
    pass


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def bounded_int(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def add_client_arguments(parser: argparse.ArgumentParser, *, requests: int, concurrency: int, warmup: int) -> None:
    """The options of the HTTP scenarios' clients."""
    parser.add_argument(
        "--requests",
        type=bounded_int(1, 1_000_000),
        default=requests,
        help=f"measured requests per run (default {requests})",
    )
    parser.add_argument(
        "--concurrency",
        type=bounded_int(1, MAX_CONCURRENCY),
        default=concurrency,
        help=f"client threads, each with its own keep-alive connection (default {concurrency})",
    )
    parser.add_argument(
        "--warmup",
        type=bounded_int(0, 100_000),
        default=warmup,
        help=f"unmeasured requests per client thread before timing starts (default {warmup})",
    )
    parser.add_argument(
        "--time-limit",
        type=bounded_int(1, 3600),
        default=600,
        help="seconds allowed per run for warm-up plus measurement (default 600)",
    )
    parser.add_argument(
        "--delayed-ack",
        dest="quickack",
        action="store_false",
        help="leave the kernel's delayed ACKs on (adds a ~40 ms stall per request under runserver)",
    )


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what `nproc` prints: the CPUs we may run on
    except AttributeError:
        return os.cpu_count() or 1


def machine(extra: str = "") -> str:
    return (
        f"machine: nproc={nproc()}, python {platform.python_version()} ({platform.python_implementation()})"
        f"{extra}, {platform.system()} {platform.machine()}"
    )


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free interval for the median of `values`: (low, high, its coverage).

    The k-th smallest and k-th largest values, with k the largest that keeps the chance that the median lies
    outside them (binomial, p = 1/2) within 1 - confidence; k is at least 1, so with few values the coverage
    returned is below `confidence` (5 values: 93.75%).
    """
    ordered, n = sorted(values), len(values)
    if n == 0:
        raise ValueError("no values")

    def below(k: int) -> float:  # P(fewer than k of n values fall below the median)
        return sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k + 1 <= (n + 1) // 2 and below(k + 1) <= (1 - confidence) / 2:
        k += 1
    return ordered[k - 1], ordered[n - k], 1 - 2 * below(k)


def ratio_summary(ratios: list[float]) -> str:
    """`median 0.99x, 95% interval 0.93x-1.04x over 9 rounds`: how far the rounds' noise lets a ratio be read."""
    low, high, coverage = median_interval(ratios)
    return (
        f"median {statistics.median(ratios):.2f}x, {coverage:.0%} interval {low:.2f}x-{high:.2f}x "
        f"over {len(ratios)} round(s)"
    )


class Timings:
    """Rate and latency percentiles of a run (its `requests`, `seconds` and `latencies` in seconds)."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: int) -> float:
        """p-th percentile latency in milliseconds."""
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


# --------------------------------------------------------------------------
# The database: the demo hospital of `make run`, or a dedicated database


def django_env(**extra) -> dict:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, **extra)
    env.pop("DJANGO_ALLOWED_HOSTS", None)  # the defaults (localhost, .localhost) cover demo.localhost
    return env


def run_quiet(stack: Stack, name: str, argv) -> None:
    """Runs a setup step with its output captured; shows the output only if it fails."""
    proc = stack.spawn(name, argv, env=django_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{name} did not finish within {STEP_TIMEOUT:.0f}s") from exc  # the stack's exit kills it
    stack.forget(proc)
    if proc.returncode != 0:
        sys.stderr.write(output)
        raise BenchError(f"{name} failed (exit code {proc.returncode}); its output is above")


def prepare_demo(stack: Stack) -> None:
    """`make run`'s database (or DATABASE_URL's), migrated, with the demo hospital."""
    stack.ensure_database()  # no-op when DATABASE_URL is set
    run_quiet(stack, "migrate_schemas", commands.python("manage.py", "migrate_schemas", "--noinput"))
    run_quiet(stack, "bootstrap_demo", commands.python("manage.py", "bootstrap_demo"))


def admin_execute(url: str, statement) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def dedicated_database(server_url: str, name: str):
    """A fresh database `name` on the server of server_url; dropped on the way out."""
    from psycopg import sql

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    admin_execute(server_url, drop)  # left over by an interrupted run
    admin_execute(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    say(f"created database {name}")
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django not set up yet
            pass
        admin_execute(server_url, drop)
        say(f"dropped database {name}")


class _PoolWorkerSignals:
    """The multiprocessing executor's pool workers are forks of this process, the stack's signal handlers included.

    A pool is ended with SIGTERM, which those handlers would turn into a
    traceback per worker: in a forked worker, SIGTERM just ends it.
    """

    @staticmethod
    def reset(_) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


_POOL_WORKER_SIGNALS = _PoolWorkerSignals()


@contextmanager
def django_on_dedicated_database(stack: Stack, name: str):
    """Django in this process on a fresh database `name` (public schema migrated, platform domain) on the
    stack's server; dropped on the way out."""
    server_url = stack.ensure_database()  # no-op when DATABASE_URL is set
    with dedicated_database(server_url, name) as database_url:
        setup_django(database_url)
        from django.core.management import call_command

        from tenants.services import platform_ensure

        say("migrating the public schema")
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        platform_ensure()
        yield


def setup_django(database_url: str) -> None:
    """Django in this process, on database_url, with tasks published to an in-memory broker nobody reads."""
    multiprocessing.util.register_after_fork(_POOL_WORKER_SIGNALS, _PoolWorkerSignals.reset)
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DJANGO_DEBUG": "false",  # DEBUG keeps every query in memory
            "CELERY_BROKER_URL": "memory://localhost",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("DJANGO_ALLOWED_HOSTS", None)
    import django

    django.setup()


# --------------------------------------------------------------------------
# The server under test


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


class ServerProcess:
    """A server under test in its own process group, its output in .run/<log_name>; ready once a GET of
    `probe_path` on `probe_host` answers (any status). Subclasses say what to run: `command()`, `environment()`."""

    probe_path, probe_host = "/accounts/user/", TENANT_HOST

    def __init__(self, stack: Stack, name: str, log_name: str):
        self.stack, self.name = stack, name
        self.port = free_port(HOST)
        LOG_DIR.mkdir(exist_ok=True)
        self.log_path = LOG_DIR / log_name
        self.proc = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict:
        raise NotImplementedError

    def __enter__(self):
        with open(self.log_path, "w") as log:
            self.proc = self.stack.spawn(
                self.name, self.command(), env=self.environment(), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_until(self._answers, SERVER_START_TIMEOUT, f"{self.name} did not answer", interval=0.2)
        except TimedOut as exc:
            raise self.fail(str(exc)) from None
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.stack.stop_child(self.proc)
        return False

    def fail(self, message: str) -> BenchError:
        return BenchError(f"{message}\n--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise self.fail(f"{self.name} exited with code {self.proc.returncode} before answering")
        try:
            request(self.port, "GET", self.probe_path, host=self.probe_host, timeout=2)
            return True
        except OSError:
            return False


class Server(ServerProcess):
    """`manage.py runserver`; its log goes to .run/bench-runserver-<mode>.log."""

    def __init__(self, stack: Stack, mode: str, conn_max_age: int):
        super().__init__(stack, f"runserver ({mode})", f"bench-runserver-{mode}.log")
        self.conn_max_age = conn_max_age

    def command(self) -> list[str]:
        return list(commands.runserver_command(f"{HOST}:{self.port}", reload=False))

    def environment(self) -> dict:
        return django_env(DB_CONN_MAX_AGE=str(self.conn_max_age), DJANGO_DEBUG="false")


def request(
    port: int, method: str, path: str, *, host: str, body: dict | None = None, timeout: float = HTTP_TIMEOUT
) -> tuple[int, bytes, float]:
    """One request on a fresh connection: (status, body, seconds)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    headers = {"Host": host}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        began = time.perf_counter()
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - began
    finally:
        conn.close()


def log_in(port: int, host: str = TENANT_HOST, credentials: dict = LOGIN) -> str:
    """An access token for `credentials` on `host` (one POST /accounts/login/)."""
    status, body, _ = request(port, "POST", "/accounts/login/", host=host, body=credentials)
    if status != 200:
        raise BenchError(f"login as {credentials['email']} failed: HTTP {status}: {body[:300]!r}")
    return json.loads(body)["access"]


class Client:
    """One keep-alive connection with a Bearer token; reopens it when the server has closed it.

    A scenario's client says what `send()` requests and checks.
    """

    def __init__(self, port: int, host: str, token: str, quickack: bool):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT)
        self.headers = {"Host": host, "Authorization": f"Bearer {token}"}
        self.quickack = quickack and hasattr(socket, "TCP_QUICKACK")  # Linux only; elsewhere the stall stays
        self.opened = 0  # TCP connections opened: 1 per worker if keep-alive holds

    def send(self) -> None:
        raise NotImplementedError

    def get(self, path: str) -> bytes:
        """The body of a 200 answer to GET path; BenchError for any other status."""
        # One retry: a keep-alive connection may have been closed by the server
        # between requests, which shows up only when we use it.
        for attempt in (1, 2):
            fresh = self.conn.sock is None
            try:
                if fresh:  # new, or closed after a `Connection: close` answer
                    self.conn.connect()
                    self.opened += 1
                self.conn.request("GET", path, headers=self.headers)
                self.acknowledge_quickly()
                response = self.conn.getresponse()
                body = response.read()
            except ConnectionError:  # reset, aborted, broken pipe, RemoteDisconnected
                self.conn.close()
                if fresh or attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise BenchError(f"GET {path} answered HTTP {response.status}: {body[:300]!r}")
            return body

    def acknowledge_quickly(self) -> None:
        # runserver writes the response headers and the body in two small
        # send()s with Nagle on, so the body waits for the client's ACK of the
        # headers, which Linux delays by ~40 ms: a stall that would swamp the
        # database cost we measure. Sending the request puts the socket back in
        # delayed-ACK mode, hence set after each request is sent.
        if self.quickack:
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def close(self) -> None:
        self.conn.close()


def _worker(
    client: Client, warmup: int, count: int, start: threading.Barrier, deadline: float, latencies: list, errors: list
) -> None:
    try:
        for _ in range(warmup):
            client.send()
        start.wait(timeout=max(0.0, deadline - time.monotonic()))
        for _ in range(count):
            if time.monotonic() > deadline:
                raise BenchError("time limit reached before all requests were sent")
            began = time.perf_counter()
            client.send()
            latencies.append(time.perf_counter() - began)  # list.append is atomic under the GIL
    except Exception as exc:  # reported by the main thread
        errors.append(exc)
        start.abort()  # release the others rather than leave them waiting
    finally:
        client.close()


def run_clients(clients: list, requests: int, warmup: int, time_limit: float) -> tuple[float, list]:
    """Sends `requests` requests split over one thread per client; returns (seconds, latencies)."""
    concurrency = len(clients)
    deadline = time.monotonic() + time_limit
    shares = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    # The main thread joins the barrier too, so the clock starts when every worker has warmed up.
    start = threading.Barrier(concurrency + 1)
    latencies, errors = [], []
    threads = [
        threading.Thread(target=_worker, args=(c, warmup, n, start, deadline, latencies, errors), daemon=True)
        for c, n in zip(clients, shares, strict=True)
    ]
    for t in threads:
        t.start()
    try:
        start.wait(timeout=max(0.0, deadline - time.monotonic()))
    except threading.BrokenBarrierError:
        pass  # a worker failed or time ran out: reported below
    began = time.perf_counter()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + HTTP_TIMEOUT)
    seconds = time.perf_counter() - began
    if errors:
        raise BenchError(f"a client failed: {errors[0]!r}")
    if any(t.is_alive() for t in threads) or len(latencies) != requests:
        raise BenchError(f"only {len(latencies)} of {requests} requests finished within {time_limit:.0f}s")
    return seconds, latencies
