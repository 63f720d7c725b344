"""This process's hub presence: one task refreshes every live subscription in Redis (not one per connection)."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from redis.exceptions import RedisError

from veloflux_site.realtime import hub

log = logging.getLogger("veloflux.realtime")

PRESENCE_REFRESH_SECONDS = 25


class PresenceRegistry:
    """This process's live subscriptions, refreshed in Redis by ONE task (not one per connection)."""

    CHUNK = 500  # clients per Redis round trip: keeps each step short for the event loop

    def __init__(self) -> None:
        self.entries: dict[str, set[str]] = {}  # channel -> this process's client ids on it
        self.task: asyncio.Task | None = None

    def add(self, channel: str, client_id: str) -> None:
        self.entries.setdefault(channel, set()).add(client_id)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._refresh_forever(), name="hub-presence")

    def discard(self, channel: str, client_id: str) -> None:
        members = self.entries.get(channel)
        if members is not None:
            members.discard(client_id)
            if not members:
                del self.entries[channel]

    def chunks(self) -> list[dict[str, list[str]]]:
        out: list[dict[str, list[str]]] = [{}]
        size = 0
        for channel, members in list(self.entries.items()):
            for client_id in list(members):
                if size == self.CHUNK:
                    out.append({})
                    size = 0
                out[-1].setdefault(channel, []).append(client_id)
                size += 1
        return out

    async def _refresh_forever(self) -> None:
        while self.entries:
            await asyncio.sleep(PRESENCE_REFRESH_SECONDS)
            try:
                for chunk in self.chunks():
                    if chunk:
                        await sync_to_async(hub.presence_refresh, thread_sensitive=False)(chunk)
            except RedisError as exc:  # keep refreshing: entries expire only if Redis stays away
                log.warning("hub presence refresh failed: %s", exc)


_registries: dict[int, PresenceRegistry] = {}


def presence_registry() -> PresenceRegistry:
    loop_id = id(asyncio.get_running_loop())
    registry = _registries.get(loop_id)
    if registry is None:
        registry = _registries[loop_id] = PresenceRegistry()
    return registry
