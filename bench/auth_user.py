"""Throughput of authenticated `GET /accounts/user/`: persistent vs per-request DB connections.

    .venv/bin/python bench/auth_user.py [--requests 2000] [--concurrency 1]

Runs the demo hospital (`bootstrap_demo`) under `manage.py runserver` twice,
once with DB_CONN_MAX_AGE=60 and once with DB_CONN_MAX_AGE=0, and prints
requests per second and latency percentiles for each.

If DATABASE_URL is unset, the embedded PostgreSQL of scripts/devstack.py is
used (started, and afterwards stopped, only if it is not already running).
Everything talks to 127.0.0.1; the hospital is chosen by the Host header.
"""

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import devstack  # noqa: E402  (reused: database start/stop, child processes, signal handling)

HOST = "127.0.0.1"
TENANT_HOST = "demo.localhost"  # tenants.services.hospital_host("demo") with the default BASE_DOMAIN
LOGIN = {"email": "admin@demo.example", "password": "demo-admin-pass-1"}  # from bootstrap_demo
SETTINGS = "config.settings.local"
MODES = [("persistent", 60), ("per-request", 0)]  # (label, DB_CONN_MAX_AGE)
STEP_TIMEOUT = 300.0  # seconds for migrate_schemas / bootstrap_demo
SERVER_START_TIMEOUT = 60.0  # runserver runs the system checks before it listens
HTTP_TIMEOUT = 30.0  # per socket operation
MAX_CONCURRENCY = 64
LOG_DIR = REPO / ".run"


class BenchError(Exception):
    pass


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


@dataclass
class Result(Timings):
    mode: str
    conn_max_age: int
    requests: int
    seconds: float
    latencies: list = field(repr=False)
    tcp_connections: int


# --------------------------------------------------------------------------
# Setup: database, migrations, demo data


def django_env(**extra) -> dict:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, **extra)
    env.pop("DJANGO_ALLOWED_HOSTS", None)  # the defaults (localhost, .localhost) cover demo.localhost
    return env


def run_quiet(stack: devstack.Stack, name: str, argv) -> None:
    """Run a setup step with its output captured; show the output only if it fails."""
    proc = stack.spawn(name, argv, env=django_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        # Stack's exit kills it.
        raise BenchError(f"{name} did not finish within {STEP_TIMEOUT:.0f}s") from exc
    stack.forget(proc)
    if proc.returncode != 0:
        sys.stderr.write(output)
        raise BenchError(f"{name} failed (exit code {proc.returncode}); its output is above")


def prepare(stack: devstack.Stack) -> None:
    devstack.ensure_database(stack)  # no-op when DATABASE_URL is set
    run_quiet(stack, "migrate_schemas", [sys.executable, "manage.py", "migrate_schemas", "--noinput"])
    run_quiet(stack, "bootstrap_demo", [sys.executable, "manage.py", "bootstrap_demo"])


# --------------------------------------------------------------------------
# The server under test


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


class Server:
    """`manage.py runserver` in its own process group; its log goes to .run/bench-runserver-<mode>.log."""

    def __init__(self, stack: devstack.Stack, mode: str, conn_max_age: int):
        self.stack = stack
        self.name = f"runserver ({mode})"
        self.port = free_port()
        LOG_DIR.mkdir(exist_ok=True)
        self.log_path = LOG_DIR / f"bench-runserver-{mode}.log"
        self.conn_max_age = conn_max_age
        self.proc = None

    def __enter__(self):
        env = django_env(DB_CONN_MAX_AGE=str(self.conn_max_age), DJANGO_DEBUG="false")
        with open(self.log_path, "w") as log:
            self.proc = self.stack.spawn(
                self.name, [sys.executable, "manage.py", "runserver", f"{HOST}:{self.port}", "--noreload"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        self.wait_until_answering()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def fail(self, message: str) -> BenchError:
        return BenchError(f"{message}\n--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}")

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.fail(f"{self.name} exited with code {self.proc.returncode} before answering")
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
            try:
                conn.request("GET", "/accounts/user/", headers={"Host": TENANT_HOST})
                conn.getresponse().read()  # any status will do (401 without a token): it answers
                return
            except OSError:
                time.sleep(0.2)
            finally:
                conn.close()
        raise self.fail(f"{self.name} did not answer within {SERVER_START_TIMEOUT:.0f}s")

    def stop(self) -> None:
        """Terminate and wait; SIGKILL the group if it lingers."""
        if self.proc is not None:
            self.stack.stop_child(self.proc)


# --------------------------------------------------------------------------
# HTTP client


def log_in(port: int, host: str = TENANT_HOST, credentials: dict = LOGIN) -> str:
    """An access token for `credentials` on `host` (one POST /accounts/login/)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("POST", "/accounts/login/", body=json.dumps(credentials),
                     headers={"Host": host, "Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise BenchError(f"login as {credentials['email']} failed: HTTP {response.status}: {body[:300]!r}")
    return json.loads(body)["access"]


class Client:
    """One keep-alive connection; reopens it when the server has closed it."""

    def __init__(self, port: int, token: str, quickack: bool):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT)
        self.headers = {"Host": TENANT_HOST, "Authorization": f"Bearer {token}"}
        self.quickack = quickack
        self.opened = 0  # TCP connections opened: 1 per worker if keep-alive holds

    def ensure_connected(self) -> None:
        if self.conn.sock is None:  # new, or closed after a `Connection: close` answer
            self.conn.connect()
            self.opened += 1

    def acknowledge_quickly(self) -> None:
        # runserver writes the response headers and the body in two small
        # send()s with Nagle on, so the body waits for the client's ACK of the
        # headers, which Linux delays by ~40 ms: a stall that would swamp the
        # database cost we measure. Sending the request puts the socket back in
        # delayed-ACK mode, hence set after each request is sent.
        if self.quickack:
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def get_user(self) -> None:
        # One retry: a keep-alive connection may have been closed by the server
        # between requests, which shows up only when we use it.
        for attempt in (1, 2):
            fresh = self.conn.sock is None
            try:
                self.ensure_connected()
                self.conn.request("GET", "/accounts/user/", headers=self.headers)
                self.acknowledge_quickly()
                response = self.conn.getresponse()
                body = response.read()
            except ConnectionError:  # reset, aborted, broken pipe, RemoteDisconnected
                self.conn.close()
                if fresh or attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise BenchError(f"GET /accounts/user/ answered HTTP {response.status}: {body[:300]!r}")
            return

    def close(self) -> None:
        self.conn.close()


def worker(client: Client, warmup: int, count: int, start: threading.Barrier, deadline: float,
           latencies: list, errors: list) -> None:
    try:
        for _ in range(warmup):
            client.get_user()
        start.wait(timeout=max(0.0, deadline - time.monotonic()))
        for _ in range(count):
            if time.monotonic() > deadline:
                raise BenchError("time limit reached before all requests were sent")
            began = time.perf_counter()
            client.get_user()
            latencies.append(time.perf_counter() - began)  # list.append is atomic under the GIL
    except Exception as exc:  # reported by the main thread
        errors.append(exc)
        start.abort()  # release the others rather than leave them waiting
    finally:
        client.close()


def run_clients(clients: list, requests: int, warmup: int, time_limit: float) -> tuple[float, list]:
    """Send `requests` GETs split over one thread per client (`worker`); return (seconds, latencies)."""
    concurrency = len(clients)
    deadline = time.monotonic() + time_limit
    shares = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    # The main thread joins the barrier too, so the clock starts when every worker has warmed up.
    start = threading.Barrier(concurrency + 1)
    latencies, errors = [], []
    threads = [
        threading.Thread(target=worker, args=(c, warmup, n, start, deadline, latencies, errors), daemon=True)
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


def measure(port: int, token: str, requests: int, concurrency: int, warmup: int, time_limit: float,
            quickack: bool):
    """Send `requests` GETs split over `concurrency` threads; return (seconds, latencies, tcp connections)."""
    clients = [Client(port, token, quickack) for _ in range(concurrency)]
    seconds, latencies = run_clients(clients, requests, warmup, time_limit)
    return seconds, latencies, sum(c.opened for c in clients)


def bench_mode(stack, mode: str, conn_max_age: int, args) -> Result:
    print(f"bench: {mode} (DB_CONN_MAX_AGE={conn_max_age}): {args.requests} requests, "
          f"concurrency {args.concurrency}", flush=True)
    with Server(stack, mode, conn_max_age) as server:
        try:
            token = log_in(server.port)
            seconds, latencies, opened = measure(server.port, token, args.requests, args.concurrency,
                                                 args.warmup, args.time_limit, args.quickack)
        except BenchError as exc:
            raise server.fail(str(exc)) from None
    return Result(mode, conn_max_age, args.requests, seconds, latencies, opened)


# --------------------------------------------------------------------------
# Report


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what `nproc` prints: the CPUs we may run on
    except AttributeError:
        return os.cpu_count() or 1


def report(results, args) -> None:
    print()
    print(f"machine: nproc={nproc()}, python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.machine()}; client and server share these CPUs")
    print(f"GET /accounts/user/ on {TENANT_HOST}, Bearer token, concurrency {args.concurrency}, "
          f"manage.py runserver (DEBUG=false), client TCP_QUICKACK {'on' if args.quickack else 'off'}")
    header = f"{'mode':<28} {'requests':>8} {'seconds':>8} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'tcp conns':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        label = f"{r.mode} (CONN_MAX_AGE={r.conn_max_age})"
        print(f"{label:<28} {r.requests:>8} {r.seconds:>8.2f} {r.rate:>8.1f} {r.percentile(50):>7.2f} "
              f"{r.percentile(95):>7.2f} {r.tcp_connections:>9}")
    persistent, per_request = results
    print(f"speed-up (persistent / per-request req/s): {persistent.rate / per_request.rate:.2f}x")


# --------------------------------------------------------------------------


def bounded_int(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value
    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=bounded_int(1, 1_000_000), default=2000,
                        help="measured requests per mode (default 2000)")
    parser.add_argument("--concurrency", type=bounded_int(1, MAX_CONCURRENCY), default=1,
                        help="client threads, each with its own keep-alive connection (default 1)")
    parser.add_argument("--warmup", type=bounded_int(0, 100_000), default=50,
                        help="unmeasured requests per client thread before timing starts (default 50)")
    parser.add_argument("--time-limit", type=bounded_int(1, 3600), default=600,
                        help="seconds allowed per mode for warm-up plus measurement (default 600)")
    parser.add_argument("--delayed-ack", dest="quickack", action="store_false",
                        help="leave the kernel's delayed ACKs on (adds a ~40 ms stall per request under runserver)")
    args = parser.parse_args(argv)
    if not hasattr(socket, "TCP_QUICKACK"):
        args.quickack = False  # Linux only; elsewhere the stall stays
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.chdir(REPO)
    devstack.install_signal_handlers()  # Ctrl-C / SIGTERM still stop the servers and the database
    try:
        with devstack.Stack() as stack:
            try:
                prepare(stack)
                results = [bench_mode(stack, mode, age, args) for mode, age in MODES]
            except (BenchError, devstack.StepFailed) as exc:
                print(f"bench: error: {exc}", file=sys.stderr, flush=True)
                return 1
    except devstack.Interrupted as exc:
        return 128 + exc.signum
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
