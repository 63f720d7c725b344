"""Pooled keep-alive connections to backends, one idle stack per backend address per worker.

Every new connection goes through ``UpstreamPool.open``: the backend's address is resolved once and every answer
checked against the address policy (balancer/netpolicy.py) before connecting to a checked address, so a name
that now resolves to the platform (DNS rebinding) is refused; and each tenant may have at most
``max_per_tenant`` connections open or opening in this worker, so one tenant cannot exhaust it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from balancer import netpolicy
from balancer.proxy.codec import (
    CLOSE_CLIENT,
    EOF,
    Framer,
    HeadError,
    UpstreamCore,
    UpstreamPoolCore,
    clock,
    parse_response,
)

if TYPE_CHECKING:
    from balancer.proxy.config import Backend
    from balancer.proxy.exchange import Exchange

log = logging.getLogger("veloflux.proxy")
P = TypeVar("P", bound=asyncio.BaseProtocol)
ROOM_POLL = 0.005  # seconds between looks for room when a tenant is at its connection bound


class TenantConnectionsFull(Exception):
    """The tenant already has as many upstream connections as a worker allows."""


class Counted:
    """Mixed into the protocols ``UpstreamPool.open`` creates: the connection holds one of its tenant's slots
    from ``connection_made`` until ``connection_lost``."""

    slot_pool: UpstreamPool | None = None
    slot_pool_pending: UpstreamPool | None = None
    tenant = ""

    def take_slot(self) -> None:
        self.slot_pool = self.slot_pool_pending

    def give_slot_back(self) -> None:
        pool, self.slot_pool = self.slot_pool, None
        if pool is not None:
            pool.release_slot(self.tenant)


class UpstreamConn(UpstreamCore, Counted, asyncio.Protocol):
    """One TCP connection to a backend, carrying one exchange at a time. The hot fields are compiled
    (``UpstreamCore``, csrc/cores.c) and so is ``data_received``: a response whose head (and body, if any) came
    in one read and that did not fail is finished in C; everything else goes to ``_data_received``."""

    def __init__(self, pool: UpstreamPool, key: tuple[str, int]):
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.buffer = b""  # the start of a response head that is not complete yet
        self.body: Framer | None = None  # the body of the current response, after its head
        self.keep_alive = False
        self.paused = False  # reading paused because the client reads slowly
        self.closed = False
        self.idle_since = 0.0
        self.uses = 0
        self.got_bytes = False  # any response byte for the current exchange

    # --- lifecycle ----------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.take_slot()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.give_slot_back()
        self.pool.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            body = self.body
            if body is not None:
                exchange.resp_bytes = body.decoded
            exchange.upstream_lost(self)

    def eof_received(self):
        self.closed = True  # never hand this connection out again; connection_lost follows
        return False  # close our side too

    def close(self) -> None:
        self.closed = True
        self.exchange = None
        if self.transport is not None:
            self.transport.close()

    # --- flow control -------------------------------------------------------
    def pause_writing(self) -> None:
        if self.exchange is not None:
            client = self.exchange.client
            client.reads_held = True
            client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.resume_reading_if_possible()

    # --- response -----------------------------------------------------------
    def _data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:  # a response nobody asked for: the connection is unusable
            self.close()
            return
        self.got_bytes = True
        client = ex.client
        try:
            body = self.body
            if body is None:
                if self.buffer:
                    data = self.buffer + data
                    self.buffer = b""
                req = ex.req
                flags = req.flags | CLOSE_CLIENT if (ex.close_after or client.closing) else req.flags
                result = parse_response(data, 0, flags, req, ex.set_cookie)
                if result is None:
                    self.buffer = data
                    return
                end, ex.status, out, body, self.keep_alive, close, ex.resp_bytes = result
                ex.resp_started = True
                if close:
                    ex.close_after = True
                client.transport.write(out)
                if body is None:
                    self.got_bytes = False  # for the next exchange
                    ex.on_response_end(self, self.keep_alive and end == len(data))
                    return
                self.body = body
                if body.mode == EOF:
                    ex.until_close = True
                    ex.resp_chunked = not req.http10
            else:
                out = body.feed(data)
                if out:
                    client.transport.write(out)
                if body.done:
                    ex.resp_bytes = body.decoded
                    self.body = None
                    self.got_bytes = False
                    ex.on_response_end(self, self.keep_alive and body.end == len(data))
                    return
            ex.deadline = clock() + ex.app.upstream_timeout  # progress
        except HeadError as exc:
            if self.exchange is ex:
                log.info("invalid response from %s:%s: %s", *self.key, exc.args[1])
                self.exchange = None
                self.closed = True
                self.transport.abort()
                ex.upstream_lost(self, invalid=True)


class UpstreamPool(UpstreamPoolCore):
    """``idle`` and ``max_idle`` are compiled fields (``UpstreamPoolCore``, csrc/pools.c): the hot path takes and
    returns pooled connections in C."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_idle: int, idle_timeout: float, connect_timeout: float,
                 policy: netpolicy.Policy | None = None, max_per_tenant: int = 256):
        self.loop = loop
        self.idle: dict[tuple[str, int], list[UpstreamConn]] = {}
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.policy = policy or netpolicy.Policy()
        self.max_per_tenant = max_per_tenant
        self.per_tenant: dict[str, int] = {}  # connections open or opening, by tenant

    async def connect(self, backend: Backend, tenant: str) -> UpstreamConn:
        key = backend.key
        idle = await self.wait_for_room(tenant, key)
        if idle is not None:
            return idle
        return await self.open(tenant, backend.host, backend.port, lambda: UpstreamConn(self, key))

    async def wait_for_room(self, tenant: str, key: tuple[str, int] | None) -> UpstreamConn | None:
        """At the tenant's bound, wait (up to the connect timeout) until a connection to ``key`` goes idle (it is
        returned) or one of the tenant's connections closes or goes idle (room is made). A burst past the bound
        is served as connections come back, like HAProxy's server maxconn queue; the hot path returns pooled
        connections in C without telling anyone, hence a short poll, paid only by a tenant at its bound."""
        deadline = self.loop.time() + self.connect_timeout
        while self.per_tenant.get(tenant, 0) >= self.max_per_tenant:
            stack = self.idle.get(key) if key is not None else None
            while stack:
                conn = stack.pop()
                if not conn.closed:
                    return conn
            if self._close_idle_of(tenant) or self.loop.time() >= deadline:
                break
            await asyncio.sleep(ROOM_POLL)
        return None

    async def open(self, tenant: str, host: str, port: int, factory: Callable[[], P]) -> P:
        """A new connection for ``tenant`` to host:port, checked by the address policy (one resolution: the
        connection goes to a checked address). Raises TenantConnectionsFull, netpolicy.AddressRefused,
        TimeoutError or OSError."""
        if self.per_tenant.get(tenant, 0) >= self.max_per_tenant and not self._close_idle_of(tenant):
            raise TenantConnectionsFull(tenant)
        self.per_tenant[tenant] = self.per_tenant.get(tenant, 0) + 1  # held while resolving and connecting
        made: list = []

        def counted() -> P:
            protocol = factory()
            protocol.tenant, protocol.slot_pool_pending = tenant, self
            made.append(protocol)
            return protocol

        try:
            async with asyncio.timeout(self.connect_timeout):
                addresses = await netpolicy.resolve_checked(self.policy, host, port, self.loop)
                _, protocol = await self.loop.create_connection(counted, str(addresses[0]), port)
        except BaseException:
            if not made or made[0].slot_pool is None:  # the connection never took the slot over
                self.release_slot(tenant)
            raise
        return protocol

    def _close_idle_of(self, tenant: str) -> bool:
        """At the bound, an idle connection of the tenant (to another of its backends, say) makes room."""
        for stack in self.idle.values():
            for conn in stack:
                if conn.tenant == tenant and conn.slot_pool is self:
                    stack.remove(conn)
                    conn.give_slot_back()  # now, not when the close completes
                    conn.close()
                    return True
        return False

    def release_slot(self, tenant: str) -> None:
        left = self.per_tenant.get(tenant, 0) - 1
        if left > 0:
            self.per_tenant[tenant] = left
        else:
            self.per_tenant.pop(tenant, None)

    def release(self, conn: UpstreamConn, now: float = 0.0) -> None:
        conn.exchange = None
        stack = self.idle.get(conn.key)
        if stack is None:
            stack = self.idle[conn.key] = []
        if conn.closed or len(stack) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now or clock()
        if conn.paused:  # a slow client paused it
            conn.paused = False
            conn.transport.resume_reading()
        stack.append(conn)

    def forget(self, conn: UpstreamConn) -> None:
        stack = self.idle.get(conn.key)
        if stack and conn in stack:
            stack.remove(conn)

    def sweep(self, now: float) -> None:
        """Close connections idle for longer than the idle timeout (backends close them soon anyway)."""
        limit = now - self.idle_timeout
        for stack in self.idle.values():
            while stack and stack[0].idle_since < limit:
                stack.pop(0).close()

    def close_all(self) -> None:
        for stack in self.idle.values():
            for conn in stack:
                conn.close()
        self.idle.clear()

    def idle_count(self) -> int:
        return sum(len(stack) for stack in self.idle.values())
