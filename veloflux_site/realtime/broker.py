"""One Redis pub/sub connection per process, fanned out to local subscribers.

Channels are raw Redis pub/sub channel names (hub channels travel on
``keys.hub_pubsub(name)``; platform events on ``keys.events_channel(topic)``).

Delivery guarantee: a subscriber receives every publication of a channel in
offset order, or is told it fell behind (more than a bound waits for its client,
or the pub/sub connection broke and publications may have passed unseen) — then it
re-subscribes with recovery and gets what it missed from the channel history.
Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from veloflux_site.storage.connection import build_async_client

log = logging.getLogger("veloflux.realtime")


class Listener(Protocol):
    """What the broker fans out to. ``deliver`` runs inside the broker's read loop, once per
    local listener of a message: it must not block (the hub writes the frame there and then)."""

    def deliver(self, channel: str, message: dict) -> None: ...

    def on_lag(self, channel: str) -> None: ...


class Subscriber:
    """A listener with a bounded queue, read by its own task, and a lag callback."""

    def __init__(self, on_lag: Callable[[str], None], maxsize: int = 1000):
        self.queue: asyncio.Queue[tuple[str, dict]] = asyncio.Queue(maxsize=maxsize)
        self.on_lag = on_lag

    def deliver(self, channel: str, message: dict) -> None:
        try:
            self.queue.put_nowait((channel, message))
        except asyncio.QueueFull:
            self.on_lag(channel)


class Broker:
    def __init__(self, client_factory: Callable[[], aioredis.Redis]):
        self._client_factory = client_factory
        self._client: aioredis.Redis | None = None
        self._pubsub = None
        self._subscribers: dict[str, set[Listener]] = {}
        self._reader: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._confirmations: dict[str, asyncio.Event] = {}

    async def _ensure_pubsub(self):
        if self._pubsub is None:
            self._client = self._client_factory()
            self._pubsub = self._client.pubsub()
        return self._pubsub

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever(), name="hub-broker")

    async def subscribe(self, channel: str, subscriber: Listener) -> None:
        """Returns once Redis confirmed the subscription: nothing published after this is missed."""
        async with self._lock:
            members = self._subscribers.get(channel)
            if members is None:
                confirmed = self._confirmations[channel] = asyncio.Event()
                pubsub = await self._ensure_pubsub()
                await pubsub.subscribe(channel)
                members = self._subscribers[channel] = set()
                self._ensure_reader()
            else:
                confirmed = self._confirmations.get(channel)
            members.add(subscriber)
        if confirmed is not None:
            await asyncio.wait_for(confirmed.wait(), timeout=5)

    async def unsubscribe(self, channel: str, subscriber: Listener) -> None:
        async with self._lock:
            members = self._subscribers.get(channel)
            if not members:
                return
            members.discard(subscriber)
            if not members:
                del self._subscribers[channel]
                self._confirmations.pop(channel, None)
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError):
                        await self._pubsub.unsubscribe(channel)

    def _dispatch(self, raw: dict) -> None:
        channel = raw["channel"]
        if raw["type"] == "subscribe":
            confirmed = self._confirmations.pop(channel, None)
            if confirmed is not None:
                confirmed.set()
            return
        if raw["type"] != "message":
            return
        members = self._subscribers.get(channel)
        if not members:
            return
        message = json.loads(raw["data"])
        for subscriber in list(members):
            try:
                subscriber.deliver(channel, message)
            except Exception:  # one broken connection must not cost the others their delivery
                log.exception("delivery to one subscriber of %s failed; it is told to recover", channel)
                with contextlib.suppress(Exception):
                    subscriber.on_lag(channel)

    async def _read_forever(self) -> None:
        while True:
            try:
                pubsub = self._pubsub
                if pubsub is None or pubsub.connection is None:
                    await asyncio.sleep(0.05)
                    continue
                raw = await pubsub.get_message(timeout=1.0)
                if raw:
                    self._dispatch(raw)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("hub pub/sub connection lost (%s); subscribers will recover from history", exc)
                await self._reconnect()

    async def _reconnect(self) -> None:
        async with self._lock:
            channels = list(self._subscribers)
            # Publications may have passed while we were away: every subscriber must recover.
            for channel in channels:
                for subscriber in list(self._subscribers.get(channel, ())):
                    subscriber.on_lag(channel)
            try:
                if self._pubsub is not None:
                    await self._pubsub.aclose()
            except (RedisError, OSError):
                pass
            self._pubsub = None
        await asyncio.sleep(0.5)
        async with self._lock:
            try:
                pubsub = await self._ensure_pubsub()
                if self._subscribers:
                    await pubsub.subscribe(*self._subscribers)
            except (RedisError, OSError) as exc:
                log.warning("hub pub/sub reconnect failed: %s", exc)
                self._pubsub = None


_brokers: dict[int, Broker] = {}


def get_broker() -> Broker:
    """The broker of the running event loop (one per loop: ASGI servers run one per process)."""
    loop = asyncio.get_running_loop()
    broker = _brokers.get(id(loop))
    if broker is None:
        broker = _brokers[id(loop)] = Broker(lambda: build_async_client(settings.REDIS_URL))
    return broker
