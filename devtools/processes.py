"""Children in process groups: spawned from the repository, stopped politely, then with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devtools import REPO

# Between the polite signal and SIGKILL: a laptop's `make run` (gunicorn drains, Celery warm-shuts down).
STOP_TIMEOUT = 10.0


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    stop_signal: int | None = None  # None: the caller's first signal (SIGINT on Ctrl-C, SIGTERM else)
    group: bool = True  # leads a process group of its own: signals go to the whole group

    def signal(self, sig: int) -> None:
        try:
            if self.group:
                os.killpg(self.proc.pid, sig)
            elif self.proc.poll() is None:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def alive(self) -> bool:
        """Whether anything of it runs: the group's members (gunicorn's workers too), or the process."""
        if not self.group:
            return self.proc.poll() is None
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True


def spawn(argv: Sequence[str], *, group: bool = True, **kwargs) -> subprocess.Popen:
    """Starts argv in the repository; `group`: as the leader of a new process group (and session).

    A child outside our group is safe from the terminal's Ctrl-C, so only its owner stops it, in order;
    the test suite keeps its children in pytest's group, so that `make test`'s supervisor, stopping
    pytest's group, stops them too.
    """
    return subprocess.Popen(list(argv), cwd=kwargs.pop("cwd", REPO), start_new_session=group, **kwargs)


def stop_children(
    children: Sequence[Child],
    first_signal: int = signal.SIGTERM,
    *,
    timeout: float = STOP_TIMEOUT,
    say: Callable[[str], None] | None = None,
) -> None:
    """Signals each child (its group), waits up to `timeout` seconds for them all, then SIGKILLs what is left."""
    running = [child.name for child in children if child.proc.poll() is None]
    if running and say:
        say("stopping " + ", ".join(running))
    for child in children:
        child.signal(child.stop_signal or first_signal)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if say:
                say(f"{child.name} did not stop in time, killing it")
    while any(child.alive() for child in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in children:
        child.signal(signal.SIGKILL)
    for child in children:
        child.proc.wait()


def stop_process(proc: subprocess.Popen | None, *, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM one process (and its group if it leads one), up to `timeout` seconds, then SIGKILL."""
    if proc is not None:
        leads_group = proc.poll() is None and _pgid(proc.pid) == proc.pid
        stop_children([Child(str(proc.args), proc, group=leads_group)], signal.SIGTERM, timeout=timeout)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


class StepFailed(Exception):
    """A step of a stack failed; `returncode` is what the command should exit with."""

    def __init__(self, message: str, returncode: int = 1):
        super().__init__(message)
        self.returncode = returncode


class ProcessGroup:
    """The children one owner started, stopped together: the application processes first, then the services.

    Services (Redis, the mail sink) are what the application processes (web server, worker, beat, pytest,
    one-shot steps) talk to, so they go last.
    """

    def __init__(self, say: Callable[[str], None] | None = None):
        self.children: list[Child] = []
        self.services: list[Child] = []
        self.say = say

    def spawn(
        self, name: str, argv: Sequence[str], *, service: bool = False, stop_signal: int | None = None, **kwargs
    ) -> subprocess.Popen:
        proc = spawn(argv, **kwargs)
        (self.services if service else self.children).append(Child(name, proc, stop_signal))
        return proc

    def forget(self, proc: subprocess.Popen) -> Child | None:
        """Drops a child that has already ended from those to stop."""
        child = next((c for c in self.children + self.services if c.proc is proc), None)
        if child is not None:
            (self.children if child in self.children else self.services).remove(child)
        return child

    def stop_child(self, proc: subprocess.Popen) -> None:
        """Stops one child (SIGTERM, then SIGKILL) and forgets it."""
        child = self.forget(proc)
        if child is not None:
            stop_children([child], signal.SIGTERM, say=self.say)

    def run_step(self, name: str, argv: Sequence[str], **kwargs) -> None:
        """Runs a child to completion; raises StepFailed if it fails."""
        if self.say:
            self.say(f"running {name}")
        proc = self.spawn(name, argv, **kwargs)
        returncode = proc.wait()
        self.forget(proc)
        if returncode != 0:
            raise StepFailed(f"{name} failed (exit code {returncode})", returncode)

    def wait_any(self) -> tuple[str, int]:
        """Blocks until any child or service exits; returns its name and exit code."""
        while True:
            for child in self.children + self.services:
                returncode = child.proc.poll()
                if returncode is not None:
                    return child.name, returncode
            time.sleep(0.2)

    def stop_all(self, first_signal: int = signal.SIGTERM) -> None:
        stop_children(list(reversed(self.children)), first_signal, say=self.say)  # web server, beat, worker
        self.children.clear()
        stop_children(self.services, first_signal, say=self.say)  # Redis, mail sink
        self.services.clear()
