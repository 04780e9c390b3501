"""Hosts on a private network for one test session: Linux network namespaces on a bridge.

Each host is a network namespace joined to one bridge by a veth pair, with its own addresses
from 198.18.0.0/15 (RFC 2544, reserved for tests) and no route anywhere else; each process
starts with `ip netns exec <ns> unshare --uts` under the host's own hostname, so Celery node
names and lease holders differ per host as on separate machines. The test process talks to
the hosts from the bridge's own address.

Faults, as a real network shows them:
- `cut(host, ip)`: a silent drop. The host's neighbour entry for `ip` points at a MAC that
  does not exist, so its packets to `ip` vanish (no reset, no ICMP): connects and reads hang
  until a timeout. `heal(host, ip)` deletes the entry.
- `throttle(host, rate)`: a token bucket (`tc ... tbf`) on both directions of the host's link.
- `power_off(host)`: SIGKILL of every process of the host and its link removed at once;
  `power_on(host)` plugs it in again and restarts its processes.

Everything (processes, namespaces, links, bridge) is removed at the end even when a test fails
or the run is interrupted: the session fixture's finaliser, `atexit` and SIGTERM/SIGHUP
handlers all call `Network.teardown`, which is idempotent; names carry the pid
(`v2m<pid>...`) so two runs never collide, and a run removes what a SIGKILLed run left behind.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from devtools.processes import Processes

GHOST_MAC = "02:00:00:00:00:01"  # locally administered, never given to any interface
TEST_RANGE = ipaddress.ip_network("198.18.0.0/15")
_PREFIX = "v2m"


def unavailable_reason() -> str | None:
    """Why this machine cannot build the network (None when it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian: iproute2, util-linux)"
    probe = f"{_PREFIX}probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip args...`; raise with its stderr when check and it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _tc(*args: str, check: bool = True) -> None:
    done = subprocess.run(["tc", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"tc {' '.join(args)}: {done.stderr.strip()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> list[str]:
    """Delete the namespaces and bridges of earlier runs whose process is gone (a SIGKILLed
    pytest cannot clean up), killing what still runs inside them. Names removed."""
    removed = []
    own = re.compile(rf"^{_PREFIX}(\d+)")
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        found = own.match(name)
        if found and not _pid_alive(int(found.group(1))):
            _kill_namespace(name)
            removed.append(name)
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():  # bridge, veths
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        found = own.match(name)
        if found and not _pid_alive(int(found.group(1))):
            ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _kill_namespace(ns: str) -> None:
    pids = ip("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    ip("netns", "del", ns, check=False)


def _free_subnet(seed: int) -> ipaddress.IPv4Network:
    """A /24 of the test range that no route of this machine uses yet, chosen from the pid so
    that concurrent runs pick different ones."""
    used = set()
    for line in ip("-4", "route", "show", check=False).stdout.splitlines():
        target = line.split()[0]
        if target != "default":
            used.add(ipaddress.ip_network(target, strict=False))
    subnets = list(TEST_RANGE.subnets(new_prefix=24))
    for i in range(len(subnets)):
        candidate = subnets[(seed + i) % len(subnets)]
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise RuntimeError("no free /24 left in 198.18.0.0/15")


@dataclass
class Host:
    """One machine: a namespace, its link to the bridge, its addresses and its processes."""

    network: "Network"
    name: str  # short: the hostname its processes see
    ns: str
    link: str  # the bridge side of the veth pair
    addresses: list[str]
    processes: Processes
    powered: bool = True
    cuts: set[str] = field(default_factory=set)

    @property
    def address(self) -> str:
        return self.addresses[0]

    def start(self, name: str, argv: list[str] | None = None) -> subprocess.Popen:
        """Start a process on this host (in its namespace, under its hostname)."""
        if argv is not None:
            argv = self.wrap(argv)
        return self.processes.start(name, argv)

    def wrap(self, argv: list[str]) -> list[str]:
        # unshare without --fork execs: the pid Popen sees is the program's own.
        return [
            "ip",
            "netns",
            "exec",
            self.ns,
            "unshare",
            "--uts",
            "sh",
            "-c",
            'hostname "$0" && exec "$@"',
            self.name,
            *argv,
        ]

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a short command on this host to its end."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv], capture_output=True, text=True, timeout=timeout
        )


class Network:
    """A bridge and the hosts on it; `teardown` removes all of it."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None):
        self.run_name = f"{_PREFIX}{os.getpid()}"
        self.log_dir = log_dir
        self.env = env or {}
        self.subnet = _free_subnet(os.getpid())
        hosts = self.subnet.hosts()
        self._addresses = (str(a) for a in hosts)
        self.bridge = f"{self.run_name}br"
        self.gateway = next(self._addresses)  # the test process's address, on the bridge
        self.hosts: dict[str, Host] = {}
        self._lock = threading.Lock()
        self._torn_down = False
        _register(self)
        remove_leftovers()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, name: str, addresses: int = 1) -> Host:
        """A new namespace on the bridge with `addresses` addresses of its own."""
        ns = f"{self.run_name}{name}"
        host = Host(
            network=self,
            name=name,
            ns=ns,
            link=ns,
            addresses=[next(self._addresses) for _ in range(addresses)],
            processes=Processes(env=self.env, log_dir=self.log_dir),
        )
        if len(host.link) > 15:
            raise ValueError(f"interface name {host.link!r} is over 15 characters")
        self.hosts[name] = host
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
        self._plug(host)
        return host

    def _plug(self, host: Host) -> None:
        ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
        ip("link", "set", host.link, "master", self.bridge, "up")
        for address in host.addresses:
            ip("-n", host.ns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", host.ns, "link", "set", "eth0", "up")
        host.powered = True

    # -- faults -------------------------------------------------------------------------

    def cut(self, host: Host, peer: str) -> None:
        """Silently drop every packet `host` sends to `peer` (an address on the bridge, or the
        test process's own `gateway`)."""
        ip("-n", host.ns, "neigh", "replace", peer, "lladdr", GHOST_MAC, "nud", "permanent",
           "dev", "eth0")  # fmt: skip
        host.cuts.add(peer)

    def heal(self, host: Host, peer: str | None = None) -> None:
        """Undo `cut` for one peer, or for all of them."""
        for address in [peer] if peer else list(host.cuts):
            ip("-n", host.ns, "neigh", "del", address, "dev", "eth0", check=False)
            host.cuts.discard(address)

    def throttle(self, host: Host, rate: str = "1mbit") -> None:
        """A token bucket of `rate` on the host's link, both ways."""
        for args in (["-n", host.ns], []):
            dev = "eth0" if args else host.link
            _tc(*args, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate,
                "burst", "32kbit", "latency", "400ms")  # fmt: skip

    def unthrottle(self, host: Host) -> None:
        _tc("-n", host.ns, "qdisc", "del", "dev", "eth0", "root", check=False)
        _tc("qdisc", "del", "dev", host.link, "root", check=False)

    def power_off(self, host: Host) -> None:
        """Every process of the host SIGKILLed and its link removed, at once."""
        names = list(host.processes.running)
        for name in names:
            host.processes.send(name, signal.SIGKILL)
        ip("link", "del", host.link, check=False)
        host.powered = False
        for name in names:
            process = host.processes.running.get(name)
            if process is not None:
                process.wait()

    def power_on(self, host: Host) -> None:
        """Plug the host in again and start the processes it ran, with their commands."""
        if not host.powered:
            self._plug(host)
        host.cuts.clear()
        for name in list(host.processes.running):
            host.processes.running.pop(name)
            host.processes.start(name)

    # -- the end ------------------------------------------------------------------------

    def teardown(self) -> None:
        """Stop every process, delete every namespace, link and the bridge. Idempotent."""
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
        for host in self.hosts.values():
            try:
                host.processes.stop_all(timeout=10)
            finally:
                _kill_namespace(host.ns)  # anything that escaped its session
                ip("link", "del", host.link, check=False)
        ip("link", "del", self.bridge, check=False)
        _unregister(self)

    def leftovers(self) -> list[str]:
        """Names of this run's namespaces and links that still exist (empty after teardown)."""
        names = [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line]
        links = ip("-o", "link", "show").stdout
        found = [n for n in names if n.startswith(self.run_name)]
        found += sorted(set(re.findall(rf"\b({self.run_name}\w*)", links)))
        return found


# -- teardown on every path: the fixture's finaliser, interpreter exit, SIGTERM/SIGHUP ------

_networks: list[Network] = []
_previous: dict[int, object] = {}


def _teardown_all() -> None:
    for network in list(_networks):
        network.teardown()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _teardown_all()
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)
    else:
        raise SystemExit(128 + signum)


def _register(network: Network) -> None:
    if not _networks and not _previous:
        atexit.register(_teardown_all)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if threading.current_thread() is threading.main_thread():
                _previous[signum] = signal.signal(signum, _on_signal)
    _networks.append(network)


def _unregister(network: Network) -> None:
    if network in _networks:
        _networks.remove(network)
