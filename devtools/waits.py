"""Readiness waits: poll a predicate until it holds, with a limit that means "it never came"."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


class TimedOut(AssertionError):
    """A wait's limit passed. An AssertionError, so that pytest reports it as a failed expectation."""


def wait_until(
    predicate: Callable[[], object], timeout: float, message: str | Callable[[], str], interval: float = 0.1
) -> None:
    """Polls `predicate()` until it is true; after `timeout` seconds raises TimedOut with `message`.

    `message` may be a callable, called only on failure (e.g. to read a log then). Only for waits on an
    event that comes sooner or later: the limit says "it never came", not "too slow". The predicate may
    raise to end the wait early (a process it waits on has exited).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimedOut(f"gave up after {timeout:.0f} s: {message() if callable(message) else message}")
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_answers(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
