"""The project side by side with the seed's single-tenant dj-rest-auth app, and gunicorn configurations.

    .venv/bin/python -m bench seed_compare [--rounds 3] [--seconds 8] [--concurrency 8]
    .venv/bin/python -m bench seed_compare --configs sync:2,gthread:2x2,config --no-seed   # make bench-gunicorn

Both apps run under gunicorn on the same PostgreSQL (the embedded one of devtools, or DATABASE_URL's
server): the project on the demo hospital (`bootstrap_demo`), the seed (bench/seed/, built from the seed's
notes on the same pinned packages) in a database of its own with the same login. Each round starts each
side in turn (the order alternating), with 2 plain sync workers unless --configs says otherwise, and
measures with the same client (bench/driver.py: one keep-alive-capable connection per client thread):
authed `GET /accounts/user/` with a Bearer token and with the access cookie, the rotating refresh
(rotation + blacklist on both sides), and login. Figures are the medians over the rounds; ratios are
project / seed. Then each side's cost inside its own process (bench/inprocess.py): the median time of an
authed GET through the WSGI application with no network, and the SQL statements of GET, refresh and login.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from bench.driver import (
    HOST,
    HTTP_TIMEOUT,
    LOGIN,
    TENANT_HOST,
    BenchError,
    Client,
    ServerProcess,
    bounded_int,
    dedicated_database,
    django_env,
    machine,
    prepare_demo,
    ratio_summary,
    request,
    say,
)
from devtools import commands

SMOKE = ["--rounds", "1", "--seconds", "1", "--concurrency", "2", "--inprocess-requests", "20", "--configs", "config"]
FIGURES = r"authed GET \(Bearer\) req/s: seed [\d.]+, project [\d.]+"
SEED_DB = "bench_seed"
SIDES = ("seed", "project")
# name -> (worker class, workers, threads); "config" is config/gunicorn.py as production runs it.
PLAIN = "sync:2"


@dataclass
class Side:
    name: str
    host: str
    wsgi: str
    env: dict
    access_cookie: str


def parse_config(text: str) -> tuple[str, int, int] | None:
    """ "sync:2" -> ("sync", 2, 1); "gthread:3x2" -> ("gthread", 3, 2); "config" -> None (the file as is)."""
    if text == "config":
        return None
    kind, _, size = text.partition(":")
    workers, _, threads = size.partition("x")
    if kind not in ("sync", "gthread") or not workers.isdigit() or (threads and not threads.isdigit()):
        raise ValueError(text)
    return kind, int(workers), int(threads or 1)


class Gunicorn(ServerProcess):
    def __init__(self, stack, side: Side, config: str):
        log_name = f"bench-gunicorn-{side.name}-{config.replace(':', '-')}.log"
        super().__init__(stack, f"gunicorn ({side.name}, {config})", log_name)
        self.side, self.config = side, config
        self.probe_host = side.host

    def command(self) -> list[str]:
        parsed = parse_config(self.config)
        argv = list(commands.python("-m", "gunicorn"))
        if parsed is None:
            argv += ["--config", "config/gunicorn.py", "--workers", "2"]
        else:
            kind, workers, threads = parsed
            # Plain gunicorn: no config file, only what is said here (no max_requests, no access log).
            argv += ["--worker-class", kind, "--workers", str(workers), "--threads", str(threads)]
        return argv + ["--bind", f"{HOST}:{self.port}", self.side.wsgi]

    def environment(self) -> dict:
        return self.side.env


class GetClient(Client):
    def send(self) -> None:
        self.get("/accounts/user/")


class CookieClient(GetClient):
    def __init__(self, port, host, token, quickack, cookie):
        super().__init__(port, host, token, quickack)
        del self.headers["Authorization"]
        self.headers["Cookie"] = f"{cookie}={token}"


class PostClient(Client):
    """POSTs JSON; `body()` says what, `answered(data)` takes the answer."""

    def post(self, path: str, body: dict) -> tuple[dict, list]:
        headers = {"Host": self.headers["Host"], "Content-Type": "application/json"}
        for attempt in (1, 2):
            fresh = self.conn.sock is None
            try:
                if fresh:
                    self.conn.connect()
                    self.opened += 1
                self.conn.request("POST", path, body=json.dumps(body), headers=headers)
                self.acknowledge_quickly()
                response = self.conn.getresponse()
                data = response.read()
            except ConnectionError:
                self.conn.close()
                if fresh or attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise BenchError(f"POST {path} answered HTTP {response.status}: {data[:300]!r}")
            return json.loads(data), response.getheaders()


class RefreshClient(PostClient):
    """Each thread rotates its own refresh token, as a client would: the old one is blacklisted."""

    def __init__(self, port, host, refresh, quickack):
        super().__init__(port, host, "", quickack)
        self.refresh = refresh

    def send(self) -> None:
        data, headers = self.post("/accounts/token/refresh/", {"refresh": self.refresh})
        # The seed answers the new refresh token in the body; the project in its HttpOnly cookie only.
        self.refresh = data.get("refresh") or cookie_of(headers, "hospital-refresh")


class LoginClient(PostClient):
    def send(self) -> None:
        self.post("/accounts/login/", LOGIN)


def timed_run(clients: list, seconds: float) -> float:
    """Requests per second over `seconds` of the clients sending in a loop (after one warm-up request each)."""
    stop = threading.Event()
    counts = [0] * len(clients)
    errors: list = []

    def loop(i, client):
        try:
            client.send()
            barrier.wait(timeout=HTTP_TIMEOUT)
            while not stop.is_set():
                client.send()
                counts[i] += 1
        except Exception as exc:  # reported below
            errors.append(exc)
            barrier.abort()
        finally:
            client.close()

    barrier = threading.Barrier(len(clients) + 1)
    threads = [threading.Thread(target=loop, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    try:
        barrier.wait(timeout=HTTP_TIMEOUT * 2)
    except threading.BrokenBarrierError:
        pass
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    total_before_join = sum(counts)
    elapsed = time.perf_counter() - began
    for t in threads:
        t.join(timeout=HTTP_TIMEOUT)
    if errors:
        raise BenchError(f"a client failed: {errors[0]!r}")
    return total_before_join / elapsed


def log_in(port: int, host: str) -> dict:
    status, body, _ = request(port, "POST", "/accounts/login/", host=host, body=LOGIN)
    if status != 200:
        raise BenchError(f"login failed: HTTP {status}: {body[:300]!r}")
    return json.loads(body)


def measure(stack, side: Side, config: str, args, full: bool) -> dict:
    with Gunicorn(stack, side, config) as server:
        try:
            port, host, c = server.port, side.host, args.concurrency
            tokens = [log_in(port, host) for _ in range(c if full else 1)]
            access = tokens[0]["access"]
            figures = {"get": timed_run([GetClient(port, host, access, True) for _ in range(c)], args.seconds)}
            if full:
                figures["cookie"] = timed_run(
                    [CookieClient(port, host, access, True, side.access_cookie) for _ in range(c)], args.seconds
                )
                refreshes = [t["refresh"] for t in tokens]
                if not all(refreshes):  # the project sends it as an HttpOnly cookie only: ask for it in the body
                    refreshes = [refresh_of(port, host) for _ in range(c)]
                figures["refresh"] = timed_run([RefreshClient(port, host, r, True) for r in refreshes], args.seconds)
                figures["login"] = timed_run([LoginClient(port, host, "", True) for _ in range(2)], args.seconds)
        except BenchError as exc:
            raise server.fail(str(exc)) from None
    return figures


def refresh_of(port: int, host: str) -> str:
    """A refresh token of the project's demo admin: login sets it as a cookie (JWT_AUTH_HTTPONLY)."""
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT)
    try:
        headers = {"Host": host, "Content-Type": "application/json"}
        conn.request("POST", "/accounts/login/", body=json.dumps(LOGIN), headers=headers)
        response = conn.getresponse()
        response.read()
        return cookie_of(response.getheaders(), "hospital-refresh")
    finally:
        conn.close()


def cookie_of(headers: list, name: str) -> str:
    for header, value in headers:
        if header.lower() == "set-cookie" and value.startswith(name + "="):
            return value.split(";", 1)[0].split("=", 1)[1]
    raise BenchError(f"the answer set no {name} cookie")


def inprocess(side: Side, requests: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", side.name, str(requests)],
        env=side.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise BenchError(f"bench.inprocess {side.name} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def add_arguments(parser) -> None:
    parser.add_argument("--rounds", type=bounded_int(1, 50), default=3, help="alternating rounds (default 3)")
    parser.add_argument("--seconds", type=bounded_int(1, 120), default=8, help="seconds per figure (default 8)")
    parser.add_argument("--concurrency", type=bounded_int(1, 64), default=8, help="client threads (default 8)")
    parser.add_argument("--inprocess-requests", type=bounded_int(1, 100_000), default=1000)
    parser.add_argument(
        "--configs",
        default="",
        help="also measure the project's authed GET under these gunicorn setups, e.g. "
        "sync:2,sync:3,gthread:2x2,config (config = config/gunicorn.py with 2 workers)",
    )
    parser.add_argument("--no-seed", action="store_true", help="only the --configs comparison")


def validate(parser, args) -> None:
    try:
        args.config_list = [c for c in args.configs.split(",") if c]
        for c in args.config_list:
            parse_config(c)
    except ValueError as exc:
        parser.error(f"--configs: cannot read {exc}")
    if args.no_seed and not args.config_list:
        parser.error("--no-seed needs --configs")


def run(stack, args) -> int:
    prepare_demo(stack)
    server_url = stack.ensure_database()
    project_env = django_env(DJANGO_DEBUG="false", LOG_FORMAT="json", DB_CONN_MAX_AGE="60")
    project = Side("project", TENANT_HOST, "config.wsgi", project_env, "hospital-access")
    print(machine())
    with dedicated_database(server_url, SEED_DB) as seed_url:
        seed_env = django_env(SEED_DATABASE_URL=seed_url)
        seed_env["DJANGO_SETTINGS_MODULE"] = "bench.seed.settings"
        seed = Side("seed", "localhost", "bench.seed.wsgi", seed_env, "my-app-auth")
        seed_setup(seed)
        results: dict[str, list[dict]] = {name: [] for name in SIDES}
        if not args.no_seed:
            for round_ in range(args.rounds):
                order = (seed, project) if round_ % 2 == 0 else (project, seed)
                for side in order:
                    say(f"round {round_ + 1}/{args.rounds}: {side.name}, gunicorn {PLAIN}")
                    results[side.name].append(measure(stack, side, PLAIN, args, full=True))
            costs = {side.name: inprocess(side, args.inprocess_requests) for side in (seed, project)}
            report(results, costs, args)
        if args.config_list:
            configs(stack, project, args)
    return 0


def seed_setup(seed: Side) -> None:
    def django(*argv):
        proc = subprocess.run(
            [sys.executable, "-m", "django", *argv], env=seed.env, capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            raise BenchError(f"seed: django {' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")

    say("seed: migrating its database and creating the demo admin")
    django("migrate", "--noinput")
    django(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_superuser(email={LOGIN['email']!r}, password={LOGIN['password']!r})",
    )


def report(results: dict, costs: dict, args) -> None:
    def median(side, key):
        return statistics.median(r[key] for r in results[side])

    print()
    print(
        f"gunicorn {PLAIN} (2 sync workers) each, {args.concurrency} client threads, {args.seconds} s per figure, "
        f"{args.rounds} alternating round(s), medians; client and servers share the CPUs"
    )
    header = f"{'figure':<34} {'seed':>9} {'project':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for key, label in (
        ("get", "authed GET (Bearer) req/s"),
        ("cookie", "authed GET (cookie) req/s"),
        ("refresh", "refresh (rotate + blacklist) req/s"),
        ("login", "login req/s (2 clients)"),
    ):
        s, p = median("seed", key), median("project", key)
        ratio = f"{p / s:>6.2f}x" if s else "    n/a"  # a smoke run may finish no seed login in its second
        print(f"{label:<34} {s:>9.1f} {p:>9.1f} {ratio}")
    # A round's two sides run back to back: the spread of the rounds' ratios is the machine's noise.
    for key, label in (("get", "Bearer"), ("cookie", "cookie")):
        pairs = zip(results["seed"], results["project"], strict=True)
        ratios = [project[key] / seed[key] for seed, project in pairs if seed[key]]
        listed = ", ".join(f"{r:.2f}x" for r in ratios)
        print(f"  authed GET ({label}) project / seed by round: {listed}; {ratio_summary(ratios)}")
    s, p = costs["seed"], costs["project"]
    label, ratio = "in-process ms per authed GET", p["get_ms"] / s["get_ms"]
    print(f"{label:<34} {s['get_ms']:>9.2f} {p['get_ms']:>9.2f} {ratio:>6.2f}x")
    for key, label in (("get", "authed GET"), ("refresh", "refresh"), ("login", "login")):
        print(f"{'SQL statements: ' + label:<34} {s[key + '_statements']:>9} {p[key + '_statements']:>9}")
    print(f"authed GET (Bearer) req/s: seed {median('seed', 'get'):.1f}, project {median('project', 'get'):.1f}")


def configs(stack, project: Side, args) -> None:
    """Every setup runs at once, each on its own port; a round measures each in turn (the order alternating),
    so the setups meet the same moments of the machine and no restart sits between a round's figures."""
    rates: dict[str, list[float]] = {c: [] for c in args.config_list}
    with contextlib.ExitStack() as running:
        servers = {config: running.enter_context(Gunicorn(stack, project, config)) for config in args.config_list}
        tokens = {config: log_in(server.port, project.host)["access"] for config, server in servers.items()}
        for round_ in range(args.rounds):
            order = args.config_list if round_ % 2 == 0 else list(reversed(args.config_list))
            say(f"round {round_ + 1}/{args.rounds}: project, gunicorn {', '.join(order)}")
            for config in order:
                port = servers[config].port
                clients = [GetClient(port, project.host, tokens[config], True) for _ in range(args.concurrency)]
                try:
                    rates[config].append(timed_run(clients, args.seconds))
                except BenchError as exc:
                    raise servers[config].fail(str(exc)) from None
    print()
    print(
        f"the project's authed GET (Bearer) under gunicorn setups running side by side, {args.concurrency} client "
        f"threads, {args.seconds} s per figure, {args.rounds} round(s), medians"
    )
    for config, values in rates.items():
        label = "config/gunicorn.py (2 workers)" if config == "config" else config
        print(f"{label:<34} {statistics.median(values):>9.1f} req/s   rounds: {', '.join(f'{v:.0f}' for v in values)}")
    if PLAIN in rates:  # each setup against 2 plain sync workers measured in the same round
        for config, values in rates.items():
            if config != PLAIN:
                ratios = [v / plain for v, plain in zip(values, rates[PLAIN], strict=True)]
                listed = ", ".join(f"{r:.2f}" for r in ratios)
                print(f"  {config} / {PLAIN} by round: {listed}; {ratio_summary(ratios)}")
