"""Client side: one ``ClientProtocol`` per accepted connection, parsing requests with the compiled codec.

Requests are answered strictly in order (pipelining); the exchange at the head of the queue is
the only one that talks to a backend. Limits: request head size (431), body size per route
(413), head read timeout (408, enforced by the worker's sweeper), keep-alive idle timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from balancer.proxy.codec import (
    CHUNKED,
    LENGTH,
    ClientCore,
    Framer,
    HeadError,
    Request,
    clock,
    new_request_id,
    parse_request,
)
from balancer.proxy.errors import error_response
from balancer.proxy.exchange import Exchange

if TYPE_CHECKING:
    from balancer.proxy.app import ProxyApp

log = logging.getLogger("veloflux.proxy")

MAX_PIPELINE = 32
MAX_BUFFERED_BODY = 262144


class ClientProtocol(ClientCore, asyncio.Protocol):
    """The hot fields are compiled (``ClientCore``, csrc/cores.c) and so is ``data_received``: it runs a whole
    request without a body on a pooled connection in C, and calls ``_data_received`` for everything else."""

    def __init__(self, app: ProxyApp, scheme: bytes = b"http"):
        self.app = app
        self.scheme = scheme
        self.max_head = app.settings.max_header_bytes
        self.transport: asyncio.Transport | None = None
        self.peer_ip = ""
        self.peer = b""
        self.trusted = False
        self.queue: deque[Exchange] = deque()
        self.active: Exchange | None = None
        self.reading: Exchange | None = None  # the exchange whose request body is being read
        self.body: Framer | None = None  # that body's framing
        self.buffer = b""  # the start of a request head that is not complete yet
        self.head_deadline = 0.0
        self.in_head = False  # some bytes of a request head arrived, not all of them
        self.idle_since = 0.0
        self.closed = False
        self.closing = False
        self.write_paused = False
        self.read_paused = False
        self.reads_held = False  # reading paused by a backend connection that cannot take more request body
        self.tunnel = None

    # --- connection ---------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else "unknown"
        self.peer = self.peer_ip.encode()
        self.trusted = self.app.settings.trusts(self.peer_ip)  # a trusted proxy: keep its X-Forwarded-*
        now = clock()
        self.idle_since = now
        self.head_deadline = now + self.app.settings.header_timeout
        self.app.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.app.connections.discard(self)
        if self.active is not None:
            self.active.client_gone()
        if self.tunnel is not None:
            self.tunnel.close()

    def pause_writing(self) -> None:
        self.write_paused = True
        active = self.active
        if active is not None and active.conn is not None:
            active.conn.paused = True
            active.conn.transport.pause_reading()
        if self.tunnel is not None:
            self.tunnel.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        active = self.active
        if active is not None and active.conn is not None and not active.conn.closed:
            active.conn.paused = False
            active.conn.transport.resume_reading()
        if self.tunnel is not None:
            self.tunnel.transport.resume_reading()

    def resume_reading_if_possible(self) -> None:
        self.reads_held = False
        if self.read_paused and len(self.queue) < MAX_PIPELINE and not self.closing:
            self.read_paused = False
            self.transport.resume_reading()
        elif not self.read_paused and not self.closing and not self.closed:
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closing = True
        self.transport.abort()

    # --- parsing ------------------------------------------------------------
    def _data_received(self, data: bytes, req: Request | None = None) -> None:
        """Everything the compiled data_received does not do itself; ``req``: the first request of ``data``
        when it already parsed it (the connection was idle and nothing was buffered)."""
        if self.tunnel is not None:
            self.tunnel.transport.write(data)
            return
        if self.closing:
            return
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        try:
            pos = 0 if self.body is None else self._body(data, 0)
            end = len(data)
            while pos < end and not self.closing:
                if req is None:
                    req = parse_request(data, pos, self.max_head, self.peer, self.scheme, self.trusted)
                if req is None:
                    self.buffer = data[pos:] if pos else data
                    if not self.in_head:
                        self.in_head = True
                        if not self.head_deadline:
                            self.head_deadline = clock() + self.app.settings.header_timeout
                    return
                pos = req.end
                if req.upgrade is not None:
                    self._upgrade(req, data[pos:])
                    return
                self._request(req)
                req = None
                if self.body is not None:
                    pos = self._body(data, pos)
        except HeadError as exc:
            status, why = exc.args
            self._reject(status, why)

    def _request(self, req: Request) -> None:
        self.head_deadline = 0.0
        self.in_head = False
        ex = Exchange(self, req)
        route = ex.route = self.app.snapshot.lookup(req.host, req.path)
        length = req.content_length
        if req.chunked:
            self.body = Framer(CHUNKED, 0, True)  # re-encoded canonically towards the backend
            self.reading = ex
            ex.expect_body()
        elif length > 0:
            self.body = Framer(LENGTH, length)
            self.reading = ex
            ex.expect_body()
            if route is not None and route.max_body is not None and length > route.max_body:
                ex.early_status = 413
        else:
            ex.body_done = True
        if self.active is None and not self.queue:
            self.active = ex
            ex.start()
            return
        self.queue.append(ex)
        if self.active is None:
            self._next()
        elif len(self.queue) >= MAX_PIPELINE and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def _body(self, data: bytes, pos: int) -> int:
        """Forward the request body bytes in data[pos:]; returns where the next request starts."""
        framer = self.body
        out = framer.feed(data, pos)
        ex = self.reading
        if out:
            ex.on_request_body(out, framer.decoded)
        if framer.done:
            self.body = self.reading = None
            if not ex.body_done:
                ex.on_request_end()
            return framer.end
        if (ex.conn is None and not ex.resp_done and len(ex.body_buf) > 1 and not self.read_paused
                and sum(map(len, ex.body_buf)) > MAX_BUFFERED_BODY):
            self.read_paused = True
            self.transport.pause_reading()
        return len(data)

    # --- pipeline -----------------------------------------------------------
    def _next(self) -> None:
        while self.queue and self.active is None and not self.closing:
            ex = self.queue.popleft()
            self.active = ex
            ex.start()

    def exchange_done(self, ex: Exchange, close: bool, now: float = 0.0) -> None:
        if self.active is ex:
            self.active = None
        if close or self.closed:
            self.closing = True
            self.queue.clear()
            if self.transport is not None:
                self.transport.close()
            return
        self.idle_since = now or clock()
        if self.read_paused and len(self.queue) < MAX_PIPELINE:
            self.read_paused = False
            self.transport.resume_reading()
        if self.queue:
            self._next()

    def _reject(self, status: int, why: str = "") -> None:
        """A request the proxy will not forward: answer (after earlier pipelined ones) and close."""
        if why:
            log.debug("rejecting request from %s: %s", self.peer_ip, why)
        self.closing = True
        self.head_deadline = 0.0
        active = self.active
        if active is not None and self.reading is active and not active.resp_started and not active.resp_done:
            active.abandon_upstream()  # its own body was malformed: the backend never gets the rest
            active._drop()
            active.resp_done = True
            self.active = None
        if self.active is None:
            self.transport.write(error_response(status, new_request_id(), close=True))
            self.transport.close()
        elif self.reading is self.active:
            self.abort()  # the response already started: cut it
        else:
            self.queue.clear()  # the active exchange finishes, then the connection closes
            self.active.close_after = True

    # --- sweeper hooks ------------------------------------------------------
    def check_timeouts(self, now: float) -> None:
        if self.tunnel is not None or self.closed:
            return
        active = self.active
        if active is not None:
            if active.deadline and now > active.deadline and not active.resp_done:
                active.timed_out()
            return
        if self.head_deadline and now > self.head_deadline:
            if self.in_head:
                self._reject(408)  # a request started but its head is too slow (slowloris)
            else:  # a new connection that never sent a byte: close quietly, like an idle keep-alive one
                self.closing = True
                self.transport.close()
        elif not self.queue and not self.head_deadline and now - self.idle_since > self.app.settings.idle_timeout:
            self.closing = True
            self.transport.close()

    # --- upgrade ------------------------------------------------------------
    def _upgrade(self, req: Request, rest: bytes) -> None:
        from balancer.proxy.tunnel import start_tunnel

        self.head_deadline = 0.0
        self.in_head = False
        if self.active is not None or self.queue:
            self._reject(400, "upgrade after pipelined requests")
            return
        ex = Exchange(self, req)
        ex.route = self.app.snapshot.lookup(req.host, req.path)
        self.active = ex
        self.transport.pause_reading()
        self.app.loop.create_task(start_tunnel(self, ex, rest))
