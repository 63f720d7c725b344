"""Pooled keep-alive connections to backends, one idle stack per backend address per worker."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from httptools import HttpParserError, HttpResponseParser

if TYPE_CHECKING:
    from balancer.proxy.config import Backend
    from balancer.proxy.exchange import Exchange

log = logging.getLogger("veloflux.proxy")


class UpstreamConn(asyncio.Protocol):
    """One TCP connection to a backend, carrying one exchange at a time."""

    def __init__(self, pool: UpstreamPool, key: tuple[str, int]):
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.parser = HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.closed = False
        self.idle_since = 0.0
        self.uses = 0
        self.got_bytes = False  # any response byte for the current exchange
        self.interim = False  # parsing a 1xx interim response (dropped)
        self.head_parser = False

    # --- lifecycle ----------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.pool.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.upstream_lost(self)

    def eof_received(self):
        self.closed = True  # never hand this connection out again; connection_lost follows
        return False  # close our side too

    def begin(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.headers = []
        self.reason = b""
        self.got_bytes = False
        self.interim = False
        self.uses += 1
        if exchange.method == b"HEAD":
            # llhttp would wait for the body a HEAD response advertises: this parser stops after the head.
            self.parser = HttpResponseParser(_HeadOnly(self))
            self.head_parser = True
        elif self.head_parser:
            self.parser = HttpResponseParser(self)
            self.head_parser = False

    def close(self) -> None:
        self.closed = True
        self.exchange = None
        if self.transport is not None:
            self.transport.close()

    # --- flow control -------------------------------------------------------
    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.resume_reading_if_possible()

    # --- response parsing ---------------------------------------------------
    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # a response nobody asked for: the connection is unusable
            self.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
            if exchange.out:
                exchange.flush()
        except HttpParserError as exc:
            if self.exchange is exchange:
                log.info("invalid response from %s:%s: %s", *self.key, exc)
                self.exchange = None
                self.closed = True
                self.transport.abort()
                exchange.upstream_lost(self, invalid=True)

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.interim = True
            self.headers = []
            self.reason = b""
            return
        exchange = self.exchange
        exchange.on_response_head(self, status)
        if self.head_parser and self.exchange is exchange:
            exchange.on_response_end(self, keep_alive=self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self.exchange.on_response_body(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        exchange = self.exchange
        if exchange is not None:
            exchange.on_response_end(self, keep_alive=self.parser.should_keep_alive())


class _HeadOnly:
    """Parser callbacks for a HEAD response: everything after the head is ignored."""

    def __init__(self, conn: UpstreamConn):
        self.conn = conn
        self.done = False

    def on_status(self, reason: bytes) -> None:
        self.conn.on_status(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.done:
            self.conn.on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self.done:
            self.conn.on_headers_complete()
            self.done = not self.conn.interim

    def on_message_complete(self) -> None:
        self.conn.interim = False


class UpstreamPool:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_idle: int, idle_timeout: float, connect_timeout: float):
        self.loop = loop
        self.idle: dict[tuple[str, int], list[UpstreamConn]] = {}
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout

    def take(self, backend: Backend) -> UpstreamConn | None:
        stack = self.idle.get((backend.host, backend.port))
        while stack:
            conn = stack.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self, backend: Backend) -> UpstreamConn:
        key = (backend.host, backend.port)
        _, conn = await asyncio.wait_for(
            self.loop.create_connection(lambda: UpstreamConn(self, key), backend.host, backend.port),
            self.connect_timeout)
        return conn

    def release(self, conn: UpstreamConn) -> None:
        conn.exchange = None
        stack = self.idle.setdefault(conn.key, [])
        if conn.closed or len(stack) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = self.loop.time()
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
