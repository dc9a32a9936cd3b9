"""devtools itself, with real processes: Redis comes back, a group's stop leaves nothing behind, waits say why,
network namespaces reach each other until one is cut off (devtools.multihost's own test is test_multihost)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from config import commands as command_lines
from devtools import commands, netns, redis
from devtools.netns import ip
from devtools.processes import Child, ProcessGroup, StepFailed, stop_children
from devtools.waits import TimedOut, port_answers, wait_until
from tests.processes import READY_TIMEOUT, RedisBroker

# A parent that ignores SIGTERM, with a child that ignores it too and would outlive it: prints the child's pid.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
IGNORE = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", IGNORE])
print(child.pid, flush=True)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (reaped by whoever adopted it, sooner or later)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_redis_stops_and_restarts_on_the_same_socket():
    server = RedisBroker()
    server.start()
    try:
        assert redis.answers(server.socket)
        server.stop()
        assert server.process.poll() is not None and not redis.answers(server.socket)
        server.start()  # the recovery after an outage: same socket, same URL
        assert redis.answers(server.socket)
        assert server.url == f"redis+socket://{server.socket}"
    finally:
        server.stop()


def test_stopping_a_group_kills_the_children_that_ignore_sigterm():
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True, start_new_session=True)
    grandchild = int(proc.stdout.readline())
    stop_children([Child("stubborn", proc)], signal.SIGTERM, timeout=1)  # then SIGKILL for the whole group
    assert proc.returncode == -signal.SIGKILL
    wait_until(lambda: gone(grandchild), READY_TIMEOUT, f"the grandchild {grandchild} outlived its group")


def test_a_polite_child_stops_with_the_polite_signal_and_a_failed_step_says_so():
    group = ProcessGroup()
    sleeper = group.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
    with pytest.raises(StepFailed, match=r"false failed \(exit code 3\)") as failed:
        group.run_step("false", [sys.executable, "-c", "raise SystemExit(3)"])
    assert failed.value.returncode == 3
    group.stop_all()
    assert sleeper.returncode == -signal.SIGTERM
    assert not group.children and not group.services


def test_wait_until_says_what_never_came():
    with pytest.raises(TimedOut, match=r"^gave up after 0 s: the thing never came$"):
        wait_until(lambda: False, 0, "the thing never came")
    asked = []
    wait_until(lambda: True, 0, lambda: asked.append(1) or "unused")
    assert not asked  # a message is made only on failure
    with pytest.raises(TimedOut, match="late: 3"):
        wait_until(lambda: False, 0, lambda: f"late: {1 + 2}")


def test_the_suite_worker_is_make_runs_worker_with_beat():
    worker = commands.suite_worker_command(Path("/tmp/schedule"))
    assert worker[0] == sys.executable
    assert worker[-3:] == ["--beat", "--schedule", "/tmp/schedule"]
    make_run = commands.celery_commands(Path("/tmp/schedule"))["celery worker"]
    differing = [(a, b) for a, b in zip(worker, make_run, strict=False) if a != b]
    assert differing == [("test-worker@%h", "worker@%h")]
    assert make_run[1:] == list(command_lines.CELERY_WORKER)


def test_network_namespaces_are_hosts_that_reach_each_other_until_cut_off():
    if reason := netns.unavailable():
        pytest.skip(f"network namespaces cannot be made here: {reason}")
    network = netns.Network(f"dt{os.getpid() % 100000}").create()
    try:
        server, client = network.add_host("srv", 2), network.add_host("cli", 3)
        listener = subprocess.Popen(
            server.argv([sys.executable, "-m", "http.server", "--bind", server.address, "8080"])
        )
        wait_until(lambda: port_answers(server.address, 8080), READY_TIMEOUT, "the server never listened")
        probe = [sys.executable, "-c", f"import socket; socket.create_connection(({server.address!r}, 8080), 2)"]
        assert client.run(probe).returncode == 0
        client.block(server.address)
        assert client.blocked() == [server.address]
        assert client.run(probe, capture_output=True).returncode != 0  # dropped: the connect times out
        assert port_answers(server.address, 8080)  # only that host is cut off
        client.unblock(server.address)
        assert client.run(probe).returncode == 0
        assert listener.pid in server.pids()
        server.kill_all()
        assert listener.wait() == -signal.SIGKILL and not server.pids()
    finally:
        network.destroy()
    assert not [name for name in ip("netns", "list").stdout.split() if name.startswith(f"{network.name}-")]
    assert ip("link", "show", network.name, check=False).returncode != 0  # the bridge is gone too


def test_multihost_web_hosts_run_make_runs_gunicorn_on_their_own_address():
    assert commands.web_command(8000, host="10.213.1.11")[-2:] == ["--bind", "10.213.1.11:8000"]
    assert commands.web_command(8000)[-2:] == ["--bind", "127.0.0.1:8000"]
    assert commands.web_command(8000)[1:-2] == list(command_lines.WEB)
