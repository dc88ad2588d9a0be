"""Separate "hosts" on one machine for multi-host tests: network namespaces joined to the root
namespace by veth pairs, and a TCP forwarder in the root namespace that is the only way from a
host to PostgreSQL, Redis and the fake upstream (which all listen on 127.0.0.1 only).

    topo = Topology(["api", "w1", "w2"])   # needs root; raises NetnsUnavailable otherwise
    topo.up()
    fwd = Forwarder(topo.service_ip); fwd.start()
    pg_port = fwd.add(5432)                # <service_ip>:pg_port -> 127.0.0.1:5432
    topo.exec_argv("w1") + [sys.executable, ...]
    topo.cut("w1"); fwd.cut(topo.hosts["w1"].ns_ip)   # w1 loses the network
    fwd.stop(); topo.down()

Every host reaches the same service address (a /32 on a veth pair of our own in the root
namespace, routed through the host's own veth), so all hosts share one configuration (the
same database URL, broker URL and backbone ``base_url``), as real hosts behind one service
name would. Traffic only flows between the namespaces and veth addresses made here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
from collections import Counter, defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any


class NetnsUnavailable(RuntimeError):
    """Namespaces or veth pairs cannot be made here (not root, no `ip`, kernel refuses)."""


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass(frozen=True)
class Host:
    name: str
    ns: str
    veth_root: str
    veth_ns: str
    root_ip: str
    ns_ip: str


def _free_octet(start: int) -> int:
    """A third octet n such that nothing on this machine uses 10.213.n.0/24."""
    used = _ip("-o", "addr").stdout + _ip("route").stdout
    for i in range(250):
        n = (start + i) % 250 + 1
        if f"10.213.{n}." not in used:
            return n
    raise NetnsUnavailable("no free 10.213.n.0/24 subnet")


class Topology:
    """One namespace per host, each with a veth pair to the root namespace on its own /30."""

    def __init__(self, names: list[str], tag: str | None = None) -> None:
        if os.geteuid() != 0:
            raise NetnsUnavailable("needs root (ip netns add, veth pairs)")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("the `ip` command (iproute2) is not installed")
        assert len(names) <= 60
        self.tag = tag or str(os.getpid())
        n = _free_octet(os.getpid())
        self.subnet = f"10.213.{n}"
        self.service_ip = f"{self.subnet}.254"
        self.svc_links = (f"nmt{self.tag}s0", f"nmt{self.tag}s1")
        self.hosts: dict[str, Host] = {}
        for i, name in enumerate(names):
            base = 4 * i
            self.hosts[name] = Host(
                name=name,
                ns=f"nmt-{self.tag}-{name}",
                veth_root=f"nmt{self.tag}h{i}a",
                veth_ns=f"nmt{self.tag}h{i}b",
                root_ip=f"{self.subnet}.{base + 1}",
                ns_ip=f"{self.subnet}.{base + 2}",
            )
        for link in (*self.svc_links, *(h.veth_root for h in self.hosts.values())):
            assert len(link) <= 15, link

    def up(self) -> None:
        """Create everything; on any failure undo what was made and raise NetnsUnavailable
        (the kernel or the sandbox refuses) or RuntimeError."""
        try:
            first = next(iter(self.hosts.values()))
            probe = _ip("netns", "add", first.ns, check=False)
            if probe.returncode != 0:
                raise NetnsUnavailable(f"`ip netns add` failed: {probe.stderr.strip()}")
            probe = _ip(
                "link", "add", self.svc_links[0], "type", "veth", "peer", "name",
                self.svc_links[1], check=False,
            )  # fmt: skip
            if probe.returncode != 0:
                raise NetnsUnavailable(f"`ip link add type veth` failed: {probe.stderr.strip()}")
            _ip("addr", "add", f"{self.service_ip}/32", "dev", self.svc_links[0])
            _ip("link", "set", self.svc_links[0], "up")
            _ip("link", "set", self.svc_links[1], "up")
            for h in self.hosts.values():
                if h is not first:
                    _ip("netns", "add", h.ns)
                _ip("link", "set", "lo", "up", ns=h.ns)
                _ip("link", "add", h.veth_root, "type", "veth", "peer", "name", h.veth_ns)
                _ip("link", "set", h.veth_ns, "netns", h.ns)
                _ip("addr", "add", f"{h.root_ip}/30", "dev", h.veth_root)
                _ip("link", "set", h.veth_root, "up")
                _ip("addr", "add", f"{h.ns_ip}/30", "dev", h.veth_ns, ns=h.ns)
                _ip("link", "set", h.veth_ns, "up", ns=h.ns)
                _ip("route", "add", f"{self.service_ip}/32", "via", h.root_ip, ns=h.ns)
        except BaseException:
            self.down()
            raise

    def exec_argv(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[host].ns]

    def cut(self, host: str) -> None:
        """Take the host's link down: its packets go nowhere, as if its cable were pulled."""
        _ip("link", "set", self.hosts[host].veth_root, "down")

    def down(self) -> None:
        """Remove every namespace and link of this topology (idempotent, never raises)."""
        for h in self.hosts.values():
            _ip("link", "del", h.veth_root, check=False)
            _ip("netns", "del", h.ns, check=False)
        _ip("link", "del", self.svc_links[0], check=False)

    def leftovers(self) -> list[str]:
        netns = _ip("netns", "list", check=False).stdout
        links = _ip("-o", "link", check=False).stdout
        out = [h.ns for h in self.hosts.values() if h.ns in netns]
        out += [name for name in (self.svc_links[0],) if f" {name}" in links]
        out += [h.veth_root for h in self.hosts.values() if f" {h.veth_root}@" in links]
        return out


class Forwarder:
    """Plain TCP forwarding from ``listen_ip:<port>`` to ``127.0.0.1:<target>``, in a thread
    with its own event loop. Connections are tracked by the client's address; ``cut(ip)``
    aborts that client's connections and refuses its new ones (what the servers see when a
    host vanishes: their side of its connections closes, e.g. by TCP keepalive)."""

    def __init__(self, listen_ip: str) -> None:
        self.listen_ip = listen_ip
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fwd")
        self.servers: list[asyncio.Server] = []
        self.accepted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.blocked: set[str] = set()
        self._conns: defaultdict[str, set[asyncio.StreamWriter]] = defaultdict(set)

    def start(self) -> None:
        self.thread.start()

    def _call(self, coro: Coroutine[Any, Any, int]) -> int:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def add(self, target_port: int) -> int:
        """Listen on a free port of ``listen_ip`` forwarding to 127.0.0.1:target_port."""
        return self._call(self._add(target_port))

    async def _add(self, target_port: int) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._handle(reader, writer, target_port)

        server = await asyncio.start_server(handle, self.listen_ip, 0)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int
    ) -> None:
        peer = str(writer.get_extra_info("peername")[0])
        if peer in self.blocked:
            self.refused[peer] += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted[peer] += 1
        conns = self._conns[peer]
        conns.update((writer, up_writer))
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in pipes:
                t.cancel()
            for w in (writer, up_writer):
                conns.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    def cut(self, peer: str) -> int:
        """Refuse ``peer`` from now on and abort its open connections; returns how many."""
        return self._call(self._cut(peer))

    async def _cut(self, peer: str) -> int:
        self.blocked.add(peer)
        conns = list(self._conns.pop(peer, set()))
        for w in conns:
            w.transport.abort()
        return len(conns) // 2

    def stop(self) -> None:
        if not self.thread.is_alive():
            return

        async def _close() -> None:
            for s in self.servers:
                s.close()
            for conns in self._conns.values():
                for w in list(conns):
                    w.transport.abort()
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
