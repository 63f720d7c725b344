"""Pings for this process's Centrifugo-protocol connections: ONE task, not one timer per connection.

Every ``REALTIME_PING_INTERVAL`` seconds each connection gets ``{}`` (the protocol's ping) and
answers ``{}``. A connection silent for 1.5 intervals is closed with 3012 "no pong"; one whose
connection token expired without a ``refresh`` with 3005 "expired" (the SDK reconnects with a new
token).

The connections are spread over slots, one slot pinged per tick of ``TICK_SECONDS``: every answer
is a frame the server must read (~0.25 ms each through uvicorn and Channels), and 5,000 answers at
once stalled the process's fan-out for about a second (bench/realtime); in slots of a tenth of a
second the answers come 20 at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time

from django.conf import settings

from veloflux_site.realtime import centrifugo as cf

log = logging.getLogger("veloflux.realtime")

TICK_SECONDS = 0.1


class PingRegistry:
    def __init__(self) -> None:
        self.interval = float(settings.REALTIME_PING_INTERVAL)
        self.slots: list[set] = [set() for _ in range(max(1, round(self.interval / TICK_SECONDS)))]
        self.slot_of: dict = {}
        self._next_slot = itertools.cycle(range(len(self.slots)))
        self.task: asyncio.Task | None = None

    def add(self, session) -> None:
        if session in self.slot_of:
            return
        slot = next(self._next_slot)
        self.slot_of[session] = slot
        self.slots[slot].add(session)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._ping_forever(), name="hub-pings")

    def discard(self, session) -> None:
        slot = self.slot_of.pop(session, None)
        if slot is not None:
            self.slots[slot].discard(session)

    async def _ping_forever(self) -> None:
        count = len(self.slots)
        for tick in itertools.count():
            if not self.slot_of:
                return
            await asyncio.sleep(self.interval / count)
            await self._ping_slot(tick % count, self.interval)

    async def _ping_slot(self, slot: int, interval: float) -> None:
        now = time.monotonic()
        for session in list(self.slots[slot]):
            code = session.overdue(now, interval)
            if code is None:
                session.hub.out.push(cf.PING)
                continue
            self.discard(session)
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
