"""Active probes on asyncio: HTTP (method, path, expected status list) or TCP connect, with a concurrency cap.

``ProbeEngine`` drives each probe with the event loop's reader/writer callbacks on a raw
non-blocking socket: connect, send one ``Connection: close`` request, read until the status
line, close. No task, future, timer or transport per probe, no HTTP client library, no body
read: at thousands of probes per second those objects cost more than the probe itself.
Timeouts are one heap of deadlines that ``expire()`` walks. A probe never raises; it ends
with a ``ProbeResult`` given to its callback.

Before connecting, the address (every answer, for a name) goes through the address policy
(balancer/netpolicy.py); a refused one is never probed and ends with ``POLICY_REFUSED``, the same
result whatever is (or is not) listening there, so a tenant cannot map the platform's internal ports.

``probe`` (one) and ``probe_claims`` (a batch, at most ``concurrency`` at a time) are the
coroutine faces used by ``sweep_once``; the long-running sweeper uses the engine directly.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import ipaddress
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from balancer import netpolicy
from balancer.health.scheduler import Claim

USER_AGENT = "VeloFlux-HealthCheck/1"
POLICY_REFUSED = "not checked: the address is not allowed by the platform"
MAX_STATUS_LINE = 4096
EXPIRY_TICK = 0.01


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    result: str
    latency_ms: float


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":"))
    host, _, port = address.rpartition(":")
    return host, int(port)


@lru_cache(maxsize=65536)
def _endpoint(address: str) -> tuple[int, tuple[str, int]] | None:
    """(family, sockaddr) for an IP-literal address; None for a host name (resolved per probe).
    Raises ValueError (netpolicy.AddressRefused included) for an address that must not be probed."""
    host, port = split_address(address)
    ip = netpolicy.parse_ip(host)
    if ip is None:
        return None
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (str(ip), port)


def _refused(policy: netpolicy.Policy, family: int, sockaddr: tuple) -> bool:
    return netpolicy.refused(policy, ipaddress.ip_address(sockaddr[0].split("%", 1)[0]), sockaddr[1]) is not None


@lru_cache(maxsize=65536)
def _request_head(method: str, path: str, host_header: str) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n").encode("latin-1")


def build_request(method: str, path: str, host_header: str, probe_tag: str = "") -> bytes:
    head = _request_head(method, path, host_header)
    if probe_tag:
        return head + b"X-VeloFlux-Check: " + probe_tag.encode("latin-1") + b"\r\n\r\n"
    return head + b"\r\n"


def judge_status(status: int, check: dict) -> tuple[bool, str]:
    expected = [int(code) for code in (check.get("expected_status") or [200])]
    if status in expected:
        return True, f"http {status}"
    return False, f"http {status}, expected {','.join(map(str, expected))}"


def describe_errno(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "connection refused"
    return os.strerror(code).lower()


class _Probe:
    __slots__ = ("address", "buffer", "callback", "check", "deadline", "done", "is_http", "request", "sock",
                 "started", "timeout")

    def __init__(self, address: str, check: dict, callback: Callable[[ProbeResult], None], request: bytes | None,
                 timeout: float) -> None:
        self.address = address
        self.check = check
        self.callback = callback
        self.request = request
        self.is_http = request is not None
        self.timeout = timeout
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + timeout
        self.buffer = b""
        self.sock: socket.socket | None = None
        self.done = False


class ProbeEngine:
    """Runs probes on one event loop; ``in_flight`` counts the unfinished ones."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.in_flight = 0
        self._deadlines: list[tuple[float, int, _Probe]] = []
        self._sequence = 0
        # Read once per engine, not per probe: the settings it comes from do not change while a process runs.
        self.policy = netpolicy.policy_from_settings()

    def start(self, address: str, check: dict, probe_tag: str, callback: Callable[[ProbeResult], None]) -> None:
        timeout = float(check.get("timeout") or 2.0)
        request = None
        if check.get("type", "http") == "http":
            request = build_request(str(check.get("method") or "GET"), str(check.get("path") or "/"), address,
                                    probe_tag)
        probe = _Probe(address, check, callback, request, timeout)
        self.in_flight += 1
        self._sequence += 1
        heapq.heappush(self._deadlines, (probe.deadline, self._sequence, probe))
        try:
            endpoint = _endpoint(address)
        except netpolicy.AddressRefused:
            self.loop.call_soon(self._finish, probe, False, POLICY_REFUSED)
            return
        except ValueError:
            self.loop.call_soon(self._finish, probe, False, f"bad address {address!r}")
            return
        if endpoint is None:
            self.loop.create_task(self._resolve_and_connect(probe))
        elif _refused(self.policy, *endpoint):
            self.loop.call_soon(self._finish, probe, False, POLICY_REFUSED)
        else:
            self._connect(probe, *endpoint)

    async def _resolve_and_connect(self, probe: _Probe) -> None:
        """Resolve once, judge every answer, connect to a judged one (never resolve again: DNS rebinding)."""
        host, port = split_address(probe.address)
        try:
            addresses = await netpolicy.resolve_checked(self.policy, host, port, self.loop)
        except netpolicy.AddressRefused:
            self._finish(probe, False, POLICY_REFUSED)
            return
        except OSError as exc:
            self._finish(probe, False, f"cannot resolve {host}: {exc}")
            return
        if probe.done:
            return
        ip = addresses[0]
        self._connect(probe, socket.AF_INET6 if ip.version == 6 else socket.AF_INET, (str(ip), port))

    def _connect(self, probe: _Probe, family: int, sockaddr: tuple) -> None:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            self.loop.call_soon(self._finish, probe, False, describe_errno(exc.errno or 0))
            return
        sock.setblocking(False)
        probe.sock = sock
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS):
            self.loop.call_soon(self._finish, probe, False, describe_errno(code))
            return
        if probe.is_http and self._send_early(probe):
            return
        self.loop.add_writer(sock.fileno(), self._on_connected, probe)

    def _send_early(self, probe: _Probe) -> bool:
        """On a near network (loopback, same rack) the handshake is often done when connect returns:
        send at once and wait for the answer, saving a writable wake-up. False: wait for the connect."""
        try:
            sent = probe.sock.send(probe.request)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:  # the connect already failed (refused, unreachable): that is the result
            if exc.errno == errno.ENOTCONN:
                return False
            self.loop.call_soon(self._finish, probe, False, describe_errno(exc.errno or 0))
            return True
        if sent < len(probe.request):
            self.loop.call_soon(self._finish, probe, False, "short write of the request")
            return True
        self.loop.add_reader(probe.sock.fileno(), self._on_readable, probe)
        return True

    def _on_connected(self, probe: _Probe) -> None:
        sock = probe.sock
        self.loop.remove_writer(sock.fileno())
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._finish(probe, False, describe_errno(code))
        elif not probe.is_http:
            self._finish(probe, True, "tcp connect ok")
        else:
            try:
                sock.send(probe.request)
            except OSError as exc:
                self._finish(probe, False, describe_errno(exc.errno or 0))
                return
            self.loop.add_reader(sock.fileno(), self._on_readable, probe)

    def _on_readable(self, probe: _Probe) -> None:
        try:
            data = probe.sock.recv(MAX_STATUS_LINE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish(probe, False, describe_errno(exc.errno or 0))
            return
        if not data:
            self._finish(probe, False, "connection closed before a status line")
            return
        probe.buffer += data
        end = probe.buffer.find(b"\r\n")
        if end < 0:
            if len(probe.buffer) > MAX_STATUS_LINE:
                self._finish(probe, False, "status line too long")
            return
        parts = probe.buffer[:end].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            self._finish(probe, False, "not an HTTP response")
        else:
            self._finish(probe, *judge_status(int(parts[1]), probe.check))

    def _finish(self, probe: _Probe, ok: bool, result: str) -> None:
        if probe.done:
            return
        probe.done = True
        self.in_flight -= 1
        sock = probe.sock
        if sock is not None:
            fd = sock.fileno()
            self.loop.remove_reader(fd)
            self.loop.remove_writer(fd)
            sock.close()
            probe.sock = None
        probe.callback(ProbeResult(ok, result, round((time.perf_counter() - probe.started) * 1000, 3)))

    def expire(self) -> None:
        """Fail every probe past its deadline (call this every few milliseconds)."""
        now = time.monotonic()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            probe = heapq.heappop(deadlines)[2]
            if not probe.done:
                self._finish(probe, False, f"timeout after {probe.timeout:g}s")


async def _wait_with_expiry(engine: ProbeEngine, done: asyncio.Future) -> None:
    while not done.done():
        engine.expire()
        await asyncio.wait({done}, timeout=EXPIRY_TICK)


async def probe(address: str, check: dict, probe_tag: str = "") -> ProbeResult:
    """One check of one backend, bounded by ``check["timeout"]``."""
    loop = asyncio.get_running_loop()
    engine = ProbeEngine(loop)
    done: asyncio.Future = loop.create_future()
    engine.start(address, check, probe_tag, done.set_result)
    await _wait_with_expiry(engine, done)
    return done.result()


async def probe_claims(claims: Iterable[Claim], concurrency: int) -> list[tuple[Claim, ProbeResult]]:
    """Probe every claim, at most ``concurrency`` at a time; results in the claims' order."""
    loop = asyncio.get_running_loop()
    engine = ProbeEngine(loop)
    waiting = deque(enumerate(claims))
    results: list[tuple[Claim, ProbeResult] | None] = [None] * len(waiting)
    done: asyncio.Future = loop.create_future()
    remaining = [len(waiting)]

    def launch() -> None:
        while waiting and engine.in_flight < max(1, concurrency):
            index, claim = waiting.popleft()
            engine.start(claim.target.address, claim.target.check, probe_tag(claim),
                         lambda result, index=index, claim=claim: finished(index, claim, result))

    def finished(index: int, claim: Claim, result: ProbeResult) -> None:
        results[index] = (claim, result)
        remaining[0] -= 1
        if remaining[0] == 0 and not done.done():
            done.set_result(None)
        else:
            launch()

    if not results:
        return []
    launch()
    await _wait_with_expiry(engine, done)
    return [item for item in results if item is not None]


def probe_tag(claim: Claim) -> str:
    """Sent as ``X-VeloFlux-Check``: sweeper, backend and round, so a backend can tell probes apart."""
    return claim.token
