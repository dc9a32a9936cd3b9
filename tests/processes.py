"""Real servers the suite starts and stops itself, on devtools: a Redis broker, a Celery worker, web servers.

They stay in pytest's process group (`group=False`), so that `make test`'s supervisor stopping pytest's
group stops them too.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import requests

from devtools import REPO, commands
from devtools.processes import spawn, stop_process
from devtools.redis import RedisServer
from devtools.waits import free_port, port_is_free, wait_until

__all__ = [
    "REPO",
    "READY_TIMEOUT",
    "wait_until",
    "RedisBroker",
    "CeleryWorker",
    "WebServer",
    "Gunicorn",
    "OpenIdProvider",
]

# Waits for a process to come up (or to shut down cleanly): generous, since two busy cores can take a
# minute to import Django.
READY_TIMEOUT = 180.0


class RedisBroker(RedisServer):
    """redis-server on a private unix socket in a temporary directory; stop() is an outage, start() the recovery."""

    def __init__(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="hospital-test-redis-"))
        super().__init__(directory / "redis.sock", directory, start_timeout=READY_TIMEOUT)


class _Process:
    """A child of the suite, its output in `log`, ready when `ready()` says so, stopped with SIGTERM."""

    name = "process"

    def __init__(self, *, env: dict[str, str], prefix: str) -> None:
        self.env = {**os.environ, **env}
        self.log = Path(tempfile.mkdtemp(prefix=f"hospital-test-{prefix}-")) / f"{prefix}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def spawn(self) -> None:
        with self.log.open("a") as log:
            self.process = spawn(self.command(), group=False, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.spawn()
        try:
            wait_until(self._ready, READY_TIMEOUT, lambda: f"the {self.name} did not come up:\n{self.log.read_text()}")
        except BaseException:
            self.process.kill()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the {self.name} exited:\n{self.log.read_text()}")
        return self.ready()

    def ready(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        stop_process(self.process, timeout=READY_TIMEOUT)  # gunicorn drains, Celery warm-shuts down


class CeleryWorker(_Process):
    """`make run`'s worker command line (config/commands.py) with beat, on the test database, broker and SMTP sink."""

    name = "Celery worker"

    def __init__(self, *, env: dict[str, str]) -> None:
        super().__init__(env=env, prefix="worker")

    def command(self) -> list[str]:
        return commands.suite_worker_command(self.log.parent / "beat-schedule")

    def ready(self) -> bool:
        return " ready." in self.log.read_text()

    def start(self) -> None:
        super().start()
        self.stopping = threading.Event()
        self.supervisor = threading.Thread(target=self._supervise, name="celery-supervisor", daemon=True)
        self.supervisor.start()

    def _supervise(self) -> None:
        """Starts the worker again if it dies, as compose's `restart: unless-stopped` does in production.

        kombu's Redis transport can crash a worker that is closing its connection after the broker went away
        ("'NoneType' object has no attribute 'hostname'"); a new one reconnects, and the outbox sweep sends
        whatever the dead one had not. The restart is written into the log, where a test can see it.
        """
        while not self.stopping.wait(0.5):
            if self.process.poll() is not None:
                with self.log.open("a") as log:
                    log.write(f"--- the worker exited with {self.process.returncode}; starting it again ---\n")
                self.spawn()

    def stop(self) -> None:
        self.stopping.set()
        self.supervisor.join()
        super().stop()


class WebServer(_Process):
    """`manage.py runserver` in its own process (a second web worker), on the test database; its output in `log`."""

    name = "web server"

    def __init__(self, *, env: dict[str, str]) -> None:
        super().__init__(
            env={"DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONUNBUFFERED": "1", **env}, prefix="web"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return commands.runserver_command(f"127.0.0.1:{self.port}", reload=False)

    def ready(self) -> bool:
        try:
            # Any answer will do, however slow: a busy machine may take seconds for the first one.
            requests.get(self.url + "/", headers={"Host": "localhost"}, timeout=READY_TIMEOUT, allow_redirects=False)
            return True
        except requests.ConnectionError:
            return False


class Gunicorn(WebServer):
    """The production web server as docker/compose.yaml runs it (config/gunicorn.py), on loopback only."""

    def command(self) -> list[str]:
        return commands.web_command(self.port)


class OpenIdProvider(_Process):
    """A real OpenID Provider (devtools/idp/server.mjs: panva's oidc-provider on Node.js, `make idp` installs
    it) on its own port, with one registered client per entry of `clients`; ready once its discovery answers.

    `restart(kids=...)` brings it back on the same port with new signing keys: a key rotation.
    """

    name = "OpenID Provider"

    def __init__(self, *, clients: list[dict], kids: tuple[str, ...] = ("k1",)) -> None:
        super().__init__(env={}, prefix="idp")
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.clients = clients
        self.kids = kids
        self.config = self.log.with_name("idp.json")

    def command(self) -> list[str]:
        self.config.write_text(
            json.dumps({"port": self.port, "issuer": self.issuer, "kids": list(self.kids), "clients": self.clients})
        )
        return ["node", str(REPO / "devtools" / "idp" / "server.mjs"), str(self.config)]

    def ready(self) -> bool:
        try:
            answer = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5)
        except requests.RequestException:
            return False
        return answer.status_code == 200 and answer.json().get("issuer") == self.issuer

    def stop(self) -> None:
        stop_process(self.process, timeout=READY_TIMEOUT)
        # Down means down: the port answers nothing before a test counts on it.
        wait_until(lambda: port_is_free("127.0.0.1", self.port), READY_TIMEOUT, "the IdP's port stayed taken")

    def restart(self, *, kids: tuple[str, ...] | None = None) -> None:
        self.stop()
        if kids is not None:
            self.kids = kids
        self.start()
