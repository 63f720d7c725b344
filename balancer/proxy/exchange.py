"""One request/response exchange: forwards a client request to a backend and streams the answer back.

Bodies stream both ways with back-pressure (a paused client pauses the upstream socket and
vice versa); a request that failed to connect, or an idempotent one that got no response byte,
is retried once on another backend.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from balancer.netpolicy import AddressRefused
from balancer.proxy import router
from balancer.proxy.codec import ExchangeCore, clock, use_exchange_class
from balancer.proxy.errors import TENANT_CONNECTIONS_FULL, error_response
from balancer.proxy.upstream import TenantConnectionsFull

if TYPE_CHECKING:
    from balancer.proxy.config import Backend, Pool, Route
    from balancer.proxy.protocol import ClientProtocol
    from balancer.proxy.upstream import UpstreamConn

log = logging.getLogger("veloflux.proxy")

RETAIN_LIMIT = 65536  # request bodies up to this size are kept for a retry


class Exchange(ExchangeCore):
    """One request and its response. Its fields are compiled (``ExchangeCore``, csrc/cores.c: client, app, req,
    request_id, route, backend, conn, early_status, body_in, body_done, attempts, holding, deadline, started,
    status, resp_started, resp_done, resp_chunked, resp_bytes, set_cookie, until_close, body_buf, retained,
    close_after); ``Exchange(client, req)`` fills them. The compiled fast path runs the common exchange and
    calls these methods for everything else."""

    __slots__ = ()
    # the compiled fields' types (annotations only: the fields live in ExchangeCore)
    client: ClientProtocol
    route: Route | None
    backend: Backend | None
    conn: UpstreamConn | None
    body_buf: list[bytes] | tuple
    retained: list[bytes] | tuple | None

    def expect_body(self) -> None:
        self.body_buf = []
        if self.retained is not None:
            self.retained = []

    # --- dispatch -----------------------------------------------------------
    def start(self) -> None:
        """Called when this exchange reaches the head of the connection's pipeline."""
        now = self.started = clock()
        if self.early_status:
            self.respond_error(self.early_status, close=True)
            return
        route = self.route
        if route is None:
            self.respond_error(404)
            return
        pool = route.pool
        if pool is None or not route.active:
            self.respond_error(503)
            return
        if pool.sticky or pool.needs_client_ip:
            backend = self._choose_for_session(pool, now)
        else:
            backend = router.choose(pool, "", now)
        if backend is None:
            self.respond_error(503)
            return
        self.dispatch(backend, now)

    def _choose_for_session(self, pool: Pool, now: float) -> Backend | None:
        backend = None
        client_ip = self.client_ip() if pool.needs_client_ip else ""
        if pool.sticky:
            backend = self.app.sticky.backend_from(pool, self.req.cookie, now)
        if backend is None:
            backend = router.choose(pool, client_ip, now)
            if backend is not None and pool.sticky:
                self.set_cookie = self.app.sticky.set_cookie_header(pool, backend)
        return backend

    def client_ip(self) -> str:
        """The peer, or the nearest address a trusted proxy in front of us reported."""
        peer = self.client.peer_ip
        xff = self.req.xff
        if xff and self.client.trusted:
            return xff.rsplit(b",", 1)[-1].strip().decode("latin-1")
        return peer

    def dispatch(self, backend: Backend, now: float = 0.0) -> None:
        self.backend = backend
        self.attempts += 1
        self.holding = True
        backend.st.inflight += 1
        stack = self.app.upstreams.idle.get(backend.key)
        while stack:  # the most recently used idle connection to this backend
            conn = stack.pop()
            if not conn.closed:
                self.attach(conn, now)
                return
        self.app.loop.create_task(self._connect(backend))

    async def _connect(self, backend: Backend) -> None:
        try:
            conn = await self.client.app.upstreams.connect(backend, self.route.tenant_id)
        except (TimeoutError, OSError, AddressRefused, TenantConnectionsFull) as exc:
            if self.client.closed or self.resp_done:
                self._drop()
                return
            if isinstance(exc, TenantConnectionsFull):  # this tenant's bound, not the backend's fault
                self._drop()
                self.respond_error(503, message=TENANT_CONNECTIONS_FULL)
                return
            if isinstance(exc, AddressRefused):
                self._refused(backend, exc)
                return
            self.failed(backend, timeout=isinstance(exc, asyncio.TimeoutError), reason="connect")
            return
        if self.client.closed or self.resp_done:
            self._drop()
            self.client.app.upstreams.release(conn)
            return
        self.attach(conn)

    def _refused(self, backend: Backend, exc: AddressRefused) -> None:
        """The address policy refused the backend's address (now: DNS may have changed since validation).
        Nothing was sent; a backend that is one of this proxy's own listeners is a loop (508)."""
        log.warning("backend %s (%s) of tenant %s refused: %s", backend.id, backend.address, self.route.tenant_id,
                    exc)
        if exc.loop:
            self._drop()
            self.respond_error(508)
            return
        self.failed(backend, timeout=False, reason="connect")

    def attach(self, conn: UpstreamConn, now: float = 0.0) -> None:
        self.conn = conn
        conn.exchange = self
        conn.uses += 1
        client = self.client
        head = self.req.upstream
        if self.body_buf:
            head = b"".join((head, *self.body_buf))
            self.body_buf = []
        if self.body_done:
            if self.req.chunked:
                head += b"0\r\n\r\n"
            self.deadline = (now or clock()) + self.app.upstream_timeout
        elif self.req.expect_continue and self.body_in == 0:
            client.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.transport.write(head)
        if client.write_paused:
            conn.paused = True
            conn.transport.pause_reading()
        if client.read_paused or client.reads_held or not self.body_done:
            client.resume_reading_if_possible()

    # --- request body (from the client's framer) -----------------------------
    def on_request_body(self, out: bytes, decoded: int) -> None:
        """``out``: body bytes framed for the backend; ``decoded``: payload bytes received so far."""
        self.body_in = decoded
        route = self.route
        if route is not None and route.max_body is not None and decoded > route.max_body:
            self.early_status = 413
            if self.client.active is self and not self.resp_started:
                self.abandon_upstream()
                self._drop()
                self.respond_error(413, close=True)
            return
        if self.retained is not None:
            self.retained.append(out)
            if decoded > RETAIN_LIMIT:
                self.retained = None
        conn = self.conn
        if conn is not None and not conn.closed:
            conn.transport.write(out)
        elif not self.resp_done:
            self.body_buf.append(out)

    def on_request_end(self) -> None:
        self.body_done = True
        conn = self.conn
        if conn is not None and not conn.closed and not self.resp_done:
            if self.req.chunked:
                conn.transport.write(b"0\r\n\r\n")
            self.deadline = clock() + self.app.upstream_timeout

    # --- response (the upstream connection parses it) ------------------------
    def on_response_end(self, conn: UpstreamConn, keep_alive: bool) -> None:
        self.conn = None
        now = clock()
        if keep_alive and self.body_done and not conn.closed:
            self.app.upstreams.release(conn, now)
        else:
            conn.close()
            if not self.body_done:
                self.close_after = True  # the rest of the request body would be read as the next request
        self.finish(self.status >= 500, now)

    # --- failures -----------------------------------------------------------
    def upstream_lost(self, conn: UpstreamConn, invalid: bool = False) -> None:
        """The upstream connection closed (or sent garbage) before the response was complete."""
        self.conn = None
        if self.resp_done:
            return
        if self.resp_started:
            if not invalid and self.until_close:  # a close-delimited body ended normally
                if self.resp_chunked:
                    self.client.transport.write(b"0\r\n\r\n")
                if not self.body_done:
                    self.close_after = True
                self.finish(failed=self.status >= 500)
                return
            self.resp_done = True
            self._drop()
            self.client.abort()
            return
        self.failed(self.backend, timeout=False, reason="invalid response" if invalid else "reset",
                    got_bytes=conn.got_bytes, reused=conn.uses > 1)

    def failed(self, backend: Backend, timeout: bool, reason: str, got_bytes: bool = False,
               reused: bool = False) -> None:
        app = self.client.app
        now = clock()
        self._drop()
        backend.st.observe(now, (now - self.started) * 1000, True)  # failed
        self._count_failure(backend, now, reason)
        if self._may_retry(got_bytes, reason):
            retry = router.choose(self.route.pool, self.client_ip(), now, exclude=backend)
            if retry is None and reused:
                retry = backend if backend.st.usable(now) else None
            if retry is not None:
                if reason != "connect":  # the body went out with the failed attempt: replay the kept copy
                    self.body_buf = list(self.retained or ())
                self.conn = None
                self.dispatch(retry)
                return
        app.metrics.record(self.route, backend, 504 if timeout else 502, self.body_in, 0, now - self.started, True)
        self.respond_error(504 if timeout else 502, counted=True)

    def _count_failure(self, backend: Backend, now: float, reason: str) -> None:
        """Passive outlier detection: may eject the backend, never the last usable one of its pools."""
        app = self.app
        peers = router.usable_peers(app.snapshot.pools_of_backend.get(backend.id, []), backend, now)
        app.registry.failure(backend.st, now, peers, reason)

    def _may_retry(self, got_bytes: bool, reason: str) -> bool:
        if self.attempts >= 2 or self.client.closed or got_bytes:
            return False
        if reason == "connect":
            return True  # nothing reached the backend (the body is still buffered)
        return self.retained is not None and self.body_done

    def timed_out(self) -> None:
        """The sweeper saw no upstream progress before the deadline."""
        if self.resp_done:
            return
        self.abandon_upstream()
        if self.resp_started:
            self.resp_done = True
            self._drop()
            self.client.abort()
            return
        self.failed(self.backend, timeout=True, reason="timeout", got_bytes=True)

    def _drop(self) -> None:
        if self.holding:
            self.holding = False
            self.backend.st.inflight -= 1

    def client_gone(self) -> None:
        """The client connection closed: stop the exchange (a connect in flight sees resp_done)."""
        if self.resp_done:
            return
        self.resp_done = True
        if self.conn is not None:
            self.abandon_upstream()
            self._drop()

    def abandon_upstream(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.exchange = None
            conn.close()

    # --- endings ------------------------------------------------------------
    def finish(self, failed: bool, now: float = 0.0) -> None:
        self.resp_done = True
        app = self.app
        now = now or clock()
        backend = self.backend
        st = backend.st
        if self.holding:
            self.holding = False
            st.inflight -= 1
        elapsed = now - self.started
        st.observe(now, elapsed * 1000.0, failed)
        if failed:
            self._count_failure(backend, now, f"http {self.status}")
        elif st.fails:
            st.fails = 0
        app.metrics.record(self.route, backend, self.status, self.body_in, self.resp_bytes, elapsed, failed)
        if app.access_log is not None:
            app.access_log(self, elapsed)
        self.client.exchange_done(self, self.close_after, now)

    def respond_error(self, status: int, close: bool = False, counted: bool = False,
                      message: str | None = None) -> None:
        """Answer with the proxy's own error page (before any upstream response byte was sent)."""
        self.resp_done = True
        self.status = status
        client = self.client
        if not counted and self.route is not None:
            client.app.metrics.record(self.route, None, status, self.body_in, 0, 0.0, False)
        close = close or self.close_after or not self.body_done
        client.transport.write(error_response(status, self.request_id, self.req.accept, close=close, message=message))
        client.exchange_done(self, close)


use_exchange_class(Exchange)
