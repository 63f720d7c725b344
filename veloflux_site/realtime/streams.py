"""The VeloFlux streams: /api/ws/backends|metrics|status|billing|health.

Each sends a snapshot at once, then every ``interval`` seconds, and right away
(debounced) when a platform event it cares about arrives or an admin forces an
update. Frames: ``{"type": "<stream>_update", "data": ..., "timestamp": ...}``.
Authentication: JWT (``?token=``), API key (``?api_key=``) or the session cookie;
platform admins see every tenant (or one with ``?tenant_id=``).
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async

from veloflux_site.documents import loads_json
from veloflux_site.realtime import auth, snapshots
from veloflux_site.realtime.broker import Subscriber, get_broker
from veloflux_site.realtime.consumers import BrokerConsumer
from veloflux_site.realtime.outbox import now_iso
from veloflux_site.storage import keys

CONTROL_CHANNEL = keys.events_channel("ws")
UNAUTHORIZED = 4401
DEBOUNCE_SECONDS = 0.1


class StreamConsumer(BrokerConsumer):
    name: str = ""
    interval: float = 5.0
    event_topics: tuple[str, ...] = ()

    async def connect(self):
        self.principal = self.scope.get("principal")
        await self.accept()
        if self.principal is None or not self.principal.is_authenticated:
            await self._send("error", {"code": "not_authenticated",
                                       "message": "Connect with ?token=<access JWT>, ?api_key= or a session."})
            await self.close(code=UNAUTHORIZED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.requested_tenant = (query.get("tenant_id") or [None])[0]
        self.tenant_ids = await sync_to_async(auth.tenant_ids_for, thread_sensitive=False)(
            self.principal, self.requested_tenant)
        self.state: dict | None = None
        self.wake = asyncio.Event()
        self.subscriber = Subscriber(on_lag=lambda channel: self.wake.set(), maxsize=100)
        self.channels = [keys.events_channel(topic) for topic in self.event_topics] + [CONTROL_CHANNEL]
        for channel in self.channels:
            await get_broker().subscribe(channel, self.subscriber)
        self.tasks = [asyncio.create_task(self._events()), asyncio.create_task(self._pusher())]

    async def disconnect(self, code):
        for task in getattr(self, "tasks", []):
            task.cancel()
        for channel in getattr(self, "channels", []):
            await get_broker().unsubscribe(channel, self.subscriber)

    async def receive(self, text_data=None, bytes_data=None):
        # {"type": "refresh"} asks for a snapshot now; anything else is ignored.
        try:
            wants_refresh = loads_json(text_data or "{}").get("type") == "refresh"
        except (ValueError, AttributeError):
            wants_refresh = False
        if wants_refresh:
            self.wake.set()

    async def _send(self, kind: str, data) -> None:
        await self.send(text_data=json.dumps({"type": kind, "data": data, "timestamp": now_iso()},
                                             separators=(",", ":")))

    def build(self) -> dict:
        raise NotImplementedError

    async def _pusher(self) -> None:
        while True:
            data = await sync_to_async(self.build, thread_sensitive=False)()
            await self._send(f"{self.name}_update", data)
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
                await asyncio.sleep(DEBOUNCE_SECONDS)  # coalesce a burst of events into one push
            except TimeoutError:
                pass
            self.wake.clear()

    def _concerns_me(self, message: dict) -> bool:
        tenant_id = message.get("tenant_id")
        return tenant_id is None or tenant_id in self.tenant_ids

    async def _events(self) -> None:
        while True:
            channel, message = await self.subscriber.queue.get()
            if not isinstance(message, dict) or not self._concerns_me(message):
                continue
            if channel == CONTROL_CHANNEL:
                await self._control(message)
            else:
                self.wake.set()

    async def _control(self, message: dict) -> None:
        streams = message.get("streams") or []
        if streams and self.name not in streams:
            return
        action = message.get("action")
        if action == "refresh":
            self.wake.set()
        elif action == "notice":
            await self._send("notice", {"message": message.get("message", "")})
        elif action == "disconnect":
            await self.close(code=4000)


class StatusStream(StreamConsumer):
    """The platform's own status; the app streams live in their apps (settings.REALTIME_STREAMS)."""

    name, interval, event_topics = "status", 10.0, ("routing",)

    def build(self) -> dict:
        return snapshots.status(self.tenant_ids)
