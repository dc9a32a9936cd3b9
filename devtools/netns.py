"""Hosts on one machine: Linux network namespaces on a bridge, one veth pair each, commands run inside them.

    network = Network("hm1234", "10.213.7")      # bridge hm1234 with 10.213.7.1/24: this (root) namespace
    web = network.add_host("web1", 11)           # namespace hm1234-web1, 10.213.7.11 on its eth0
    subprocess.run(web.argv(["ip", "-br", "addr"]))
    web.block("10.213.7.3")                      # packets to that address are dropped, silently
    network.destroy()                            # kills what still runs inside, deletes namespaces and bridge

The root namespace is on the bridge too (the `.1` address), so the process that builds the network reaches
every host directly, and can serve them (a mail sink). Needs root (CAP_NET_ADMIN) and `ip` from iproute2;
`unavailable()` says why not, for a clear skip. Only addresses of this private bridge are used.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

# The /16 that networks take their /24 from: private, and checked against the addresses already in use here.
SUBNET_BASE = "10.213"
IFNAME_MAX = 15  # Linux interface names


class NetnsError(RuntimeError):
    pass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`ip <args>`; NetnsError with its stderr when it fails and `check`."""
    done = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or f'exit code {done.returncode}'}")
    return done


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (not root, no `ip`, no kernel support), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    probe = f"probe-{os.getpid()}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    try:
        veth = ip("link", "add", f"{probe}a", "type", "veth", "peer", "name", f"{probe}b", check=False)
        if veth.returncode != 0:
            return f"veth pairs cannot be made: {veth.stderr.strip()}"
        ip("link", "del", f"{probe}a", check=False)
        bridge = ip("link", "add", f"{probe}br", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"bridges cannot be made: {bridge.stderr.strip()}"
        ip("link", "del", f"{probe}br", check=False)
    finally:
        ip("netns", "del", probe, check=False)
    return None


def free_prefix() -> str:
    """A /24 of SUBNET_BASE that no interface here has an address in, as its first three octets."""
    used = ip("-4", "-o", "addr", "show").stdout
    for third in range(1, 255):
        prefix = f"{SUBNET_BASE}.{third}"
        if f" {prefix}." not in used:
            return prefix
    raise NetnsError(f"every /24 of {SUBNET_BASE}.0.0/16 is in use here")


@dataclass
class Namespace:
    """One host: a network namespace with `address` on its eth0, joined to the network's bridge."""

    name: str
    address: str
    veth: str  # the pair's end in the root namespace, on the bridge

    def argv(self, command: Sequence[str], *, user: int | None = None, group: int | None = None) -> list[str]:
        """command run inside this namespace (`ip netns exec` execs it: the pid is the command's);
        as uid `user` when given (setpriv drops root after entering the namespace)."""
        prefix = ["ip", "netns", "exec", self.name]
        if user is not None:
            gid = user if group is None else group
            prefix += ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups"]
        return [*prefix, *command]

    def run(self, command: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.argv(command), **kwargs)

    def pids(self) -> list[int]:
        """Every process running in this namespace."""
        done = ip("netns", "pids", self.name, check=False)
        return [int(pid) for pid in done.stdout.split()]

    def kill_all(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Signals every process in the namespace (a host losing its power, with SIGKILL) until none is left."""
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                if sig == signal.SIGKILL:
                    raise NetnsError(f"processes {pids} of {self.name} outlived SIGKILL")
                sig = signal.SIGKILL
            time.sleep(0.05)

    def block(self, address: str) -> None:
        """Drops every packet from this host to `address`, silently: a partition, not a refusal."""
        ip("-n", self.name, "route", "add", "blackhole", f"{address}/32")

    def unblock(self, address: str) -> None:
        ip("-n", self.name, "route", "del", "blackhole", f"{address}/32")

    def blocked(self) -> list[str]:
        out = ip("-n", self.name, "route", "show", "type", "blackhole").stdout
        return [line.split()[1].removesuffix("/32") for line in out.splitlines() if line.startswith("blackhole")]


class Network:
    """A bridge in the root namespace (address `<prefix>.1`) and the hosts joined to it."""

    def __init__(self, name: str, prefix: str | None = None) -> None:
        if len(name) + len("-worker") > IFNAME_MAX:
            raise ValueError(f"network name {name!r} is too long for interface names")
        self.name = name
        self.prefix = prefix or free_prefix()
        ipaddress.ip_network(f"{self.prefix}.0/24")  # a valid /24, or ValueError
        self.address = f"{self.prefix}.1"
        self.hosts: dict[str, Namespace] = {}

    def create(self) -> Network:
        self.destroy()  # what an interrupted run of the same name left
        ip("link", "add", self.name, "type", "bridge")
        ip("addr", "add", f"{self.address}/24", "dev", self.name)
        ip("link", "set", self.name, "up")
        return self

    def add_host(self, host: str, octet: int) -> Namespace:
        """Namespace `<network>-<host>` with `<prefix>.<octet>` on eth0, its other end on the bridge."""
        if not 2 <= octet <= 254:
            raise ValueError("octet must be between 2 and 254 (.1 is the root namespace)")
        namespace = Namespace(f"{self.name}-{host}", f"{self.prefix}.{octet}", f"{self.name}-{host}")
        if len(namespace.veth) > IFNAME_MAX:
            raise ValueError(f"host name {host!r} is too long for interface names")
        self.hosts[host] = namespace
        ip("netns", "add", namespace.name)
        ip("link", "add", namespace.veth, "type", "veth", "peer", "name", "eth0", "netns", namespace.name)
        ip("link", "set", namespace.veth, "master", self.name)
        ip("link", "set", namespace.veth, "up")
        ip("-n", namespace.name, "addr", "add", f"{namespace.address}/24", "dev", "eth0")
        ip("-n", namespace.name, "link", "set", "eth0", "up")
        ip("-n", namespace.name, "link", "set", "lo", "up")
        return namespace

    def destroy(self) -> None:
        """Kills what runs in the hosts, deletes them and the bridge; whatever of them exists."""
        names = ip("netns", "list", check=False).stdout.split()
        for name in names:
            if name.startswith(f"{self.name}-"):
                Namespace(name, "", name).kill_all()
                ip("netns", "del", name, check=False)  # its end of each veth pair goes with it, and so the pair
        ip("link", "del", self.name, check=False)
        self.hosts.clear()
