"""Pings for this process's Centrifugo-protocol connections: ONE task, not one timer per connection.

Every ``REALTIME_PING_INTERVAL`` seconds each connection gets ``{}`` (the protocol's ping) and
answers ``{}``. A connection silent for two intervals (plus slack) is closed with 3012 "no pong";
one whose connection token expired without a ``refresh`` with 3005 "expired" (the SDK reconnects
with a new token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.conf import settings

from veloflux_site.realtime import centrifugo as cf

log = logging.getLogger("veloflux.realtime")


class PingRegistry:
    def __init__(self) -> None:
        self.sessions: set = set()
        self.task: asyncio.Task | None = None

    def add(self, session) -> None:
        self.sessions.add(session)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._ping_forever(), name="hub-pings")

    def discard(self, session) -> None:
        self.sessions.discard(session)

    async def _ping_forever(self) -> None:
        interval = float(settings.REALTIME_PING_INTERVAL)
        while self.sessions:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session in list(self.sessions):
                code = session.overdue(now, interval)
                if code is None:
                    session.hub.out.push(cf.PING)
                    continue
                self.sessions.discard(session)
                reason = "no pong" if code == cf.DISCONNECT_NO_PONG else "expired"
                with contextlib.suppress(Exception):  # one broken connection must not stop the pings
                    await session.hub.close_with(code, reason)


_registries: dict[int, PingRegistry] = {}


def ping_registry() -> PingRegistry:
    loop_id = id(asyncio.get_running_loop())
    registry = _registries.get(loop_id)
    if registry is None:
        registry = _registries[loop_id] = PingRegistry()
    return registry
