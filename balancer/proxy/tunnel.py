"""Upgrade requests (WebSocket and others): forward the handshake, then pipe bytes both ways."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from balancer.netpolicy import AddressRefused
from balancer.proxy import router
from balancer.proxy.codec import clock
from balancer.proxy.errors import TENANT_CONNECTIONS_FULL, error_response
from balancer.proxy.upstream import Counted, TenantConnectionsFull

if TYPE_CHECKING:
    from balancer.proxy.exchange import Exchange
    from balancer.proxy.protocol import ClientProtocol

log = logging.getLogger("veloflux.proxy")
MAX_HANDSHAKE = 65536
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


class TunnelUpstream(Counted, asyncio.Protocol):
    def __init__(self, client: ClientProtocol):
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.switched = False
        self.status = 0
        self.remaining = -1  # body bytes left of a refused upgrade's response (-1: until close)

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.take_slot()

    def data_received(self, data: bytes) -> None:
        if self.status:
            self.client.transport.write(data)
            if self.remaining >= 0:
                self._count(len(data))
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > MAX_HANDSHAKE:
                self.close()
            return
        try:
            self.status = int(self.head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            self.close()
            return
        self.switched = self.status == 101
        self.client.transport.write(self.head)
        body = len(self.head) - end - 4
        if not self.switched:  # the backend refused the upgrade: relay its answer, then close both sides
            match = _CONTENT_LENGTH.search(self.head[:end])
            if match:
                self.remaining = int(match.group(1))
                self._count(body)
        self.head = b""
        if self.switched:
            self.client.transport.resume_reading()

    def _count(self, received: int) -> None:
        self.remaining -= received
        if self.remaining <= 0:
            self.close()

    def pause_writing(self) -> None:
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        self.client.transport.resume_reading()

    def connection_lost(self, exc) -> None:
        self.give_slot_back()
        if not self.client.closed:
            if not self.status:
                self.client.transport.write(error_response(502, "tunnel", close=True))
            self.client.transport.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def start_tunnel(client: ClientProtocol, ex: Exchange, rest: bytes) -> None:
    app = client.app
    now = clock()
    route = ex.route
    if route is None or route.pool is None or not route.active:
        ex.respond_error(404 if route is None else 503, close=True)
        return
    backend = router.choose(route.pool, client.peer_ip, now)
    if backend is None:
        ex.respond_error(503, close=True)
        return
    try:
        await app.upstreams.wait_for_room(route.tenant_id, None)
        upstream = await app.upstreams.open(route.tenant_id, backend.host, backend.port,
                                            lambda: TunnelUpstream(client))
    except TenantConnectionsFull:
        ex.respond_error(503, close=True, message=TENANT_CONNECTIONS_FULL)
        return
    except AddressRefused as exc:
        log.warning("backend %s (%s) refused for a tunnel: %s", backend.id, backend.address, exc)
        ex.respond_error(508 if exc.loop else 502, close=True)
        return
    except (TimeoutError, OSError) as exc:
        ex.respond_error(504 if isinstance(exc, asyncio.TimeoutError) else 502, close=True)
        return
    if client.closed:
        upstream.close()
        return
    client.tunnel = upstream
    upstream.transport.write(ex.req.upstream + rest)  # the codec wrote Connection: Upgrade and Upgrade
    app.metrics.record(route, backend, 101, 0, 0, clock() - now, False)
