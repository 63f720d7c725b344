"""Active probes on asyncio: HTTP (method, path, expected status list) or TCP connect, with a concurrency cap.

An HTTP probe is a small ``asyncio.Protocol``: connect, send one ``Connection: close``
request, read until the status line, close. No HTTP client library, no body read, no
buffers beyond the first line: at thousands of probes per second that is what keeps a
sweeper under one core. A probe never raises; it returns a ``ProbeResult``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from balancer.health.scheduler import Claim

USER_AGENT = "VeloFlux-HealthCheck/1"
MAX_STATUS_LINE = 4096


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


def build_request(method: str, path: str, host_header: str, probe_tag: str = "") -> bytes:
    tag = f"X-VeloFlux-Check: {probe_tag}\r\n" if probe_tag else ""
    return (f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Accept: */*\r\n{tag}Connection: close\r\n\r\n").encode("latin-1")


class _StatusLineProtocol(asyncio.Protocol):
    """Writes the request on connect; resolves ``done`` with the status code (or an error text)."""

    def __init__(self, request: bytes | None, done: asyncio.Future) -> None:
        self.request = request
        self.done = done
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.request is None:
            self._finish(0)
        else:
            transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n")
        if end < 0:
            if len(self.buffer) > MAX_STATUS_LINE:
                self._finish("status line too long")
            return
        parts = self.buffer[:end].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            self._finish("not an HTTP response")
        else:
            self._finish(int(parts[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result("connection closed before a status line")

    def _finish(self, outcome: int | str) -> None:
        if not self.done.done():
            self.done.set_result(outcome)
        if self.transport is not None:
            self.transport.close()


async def probe(address: str, check: dict, probe_tag: str = "") -> ProbeResult:
    """One check of one backend, bounded by ``check["timeout"]``."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    timeout = float(check.get("timeout") or 2.0)
    is_http = check.get("type", "http") == "http"
    transport = None
    try:
        host, port = split_address(address)
        request = None
        if is_http:
            request = build_request(str(check.get("method") or "GET"), str(check.get("path") or "/"),
                                    address, probe_tag)
        done: asyncio.Future = loop.create_future()
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(lambda: _StatusLineProtocol(request, done), host, port)
            outcome = await done
    except TimeoutError:
        outcome = f"timeout after {timeout:g}s"
    except (OSError, ValueError) as exc:
        outcome = _describe_error(exc)
    finally:
        if transport is not None:
            transport.close()
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    if isinstance(outcome, str):
        return ProbeResult(False, outcome, latency_ms)
    if not is_http:
        return ProbeResult(True, "tcp connect ok", latency_ms)
    expected = [int(code) for code in (check.get("expected_status") or [200])]
    if outcome in expected:
        return ProbeResult(True, f"http {outcome}", latency_ms)
    return ProbeResult(False, f"http {outcome}, expected {','.join(map(str, expected))}", latency_ms)


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or exc.__class__.__name__


async def probe_claims(claims: Iterable[Claim], concurrency: int) -> list[tuple[Claim, ProbeResult]]:
    """Probe every claim, at most ``concurrency`` at a time; results in the claims' order."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def guarded(claim: Claim) -> tuple[Claim, ProbeResult]:
        async with gate:
            return claim, await probe(claim.target.address, claim.target.check, probe_tag(claim))

    return list(await asyncio.gather(*(guarded(claim) for claim in claims)))


def probe_tag(claim: Claim) -> str:
    """Sent as ``X-VeloFlux-Check``: backend, round and sweeper, so a backend can tell probes apart."""
    return claim.token
