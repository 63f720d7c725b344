"""Platform events into the hub: backend health, passive ejections, alerts, config changes.

Each event becomes hub publications with an idempotency key derived from the
event itself (routing version, backend + transition time, alert id), so any
number of bridge processes publish each event exactly once into the channel
history, where clients that were away recover it.
"""

from __future__ import annotations

import asyncio
import json
import logging

from redis.exceptions import RedisError

from veloflux_site.realtime import hub
from veloflux_site.storage import keys
from veloflux_site.storage.connection import build_async_client

log = logging.getLogger("veloflux.realtime.bridge")
TOPICS = ("routing", "health", "alerts", "billing")
ADMIN_CHANNEL = "admin:events"


def publications_for(topic: str, event: dict) -> list[tuple[str, dict, str]]:
    """(hub channel, data, idempotency key) for one platform event; [] for events it does not know."""
    kind = event.get("type", "")
    tenant_id = event.get("tenant_id")
    if kind == "routing.changed" and tenant_id:
        key = f"routing:{event['version']}"
        targets = [f"tenant:{tenant_id}:config"]
    elif kind == "backend.health" and tenant_id:
        key = f"health:{event['backend_id']}:{event.get('at')}"
        targets = [f"tenant:{tenant_id}:health"]
    elif kind == "backend.ejection":
        key = f"ejection:{event['backend_id']}:{event.get('at')}:{event.get('ejected')}"
        targets = [f"tenant:{tenant_id}:health"] if tenant_id else []
    elif kind in ("alert.raised", "alert.resolved") and tenant_id:
        key = f"{kind}:{event['alert']['id']}"
        targets = [f"tenant:{tenant_id}:alerts"]
    elif topic == "billing" and tenant_id and event.get("id"):
        key = f"billing:{event['id']}"
        targets = [f"tenant:{tenant_id}:billing"]
    else:
        return []
    return [(channel, event, key) for channel in [*targets, ADMIN_CHANNEL]]


def forward(topic: str, raw: str) -> int:
    try:
        event = json.loads(raw)
    except ValueError:
        log.warning("ignoring a non-JSON event on %s", topic)
        return 0
    if not isinstance(event, dict):
        return 0
    published = 0
    for channel, data, key in publications_for(topic, event):
        if not hub.publish(channel, data, idempotency_key=key).duplicate:
            published += 1
    return published


async def run_bridge(redis_url: str, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    channels = {keys.events_channel(topic): topic for topic in TOPICS}
    while not stop.is_set():
        client = build_async_client(redis_url)
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(*channels)
            log.info("event bridge listening on %s", ", ".join(channels))
            while not stop.is_set():
                message = await pubsub.get_message(timeout=1.0)
                if message and message["type"] == "message":
                    await asyncio.to_thread(forward, channels[message["channel"]], message["data"])
        except (RedisError, OSError) as exc:
            log.warning("event bridge lost Redis (%s); retrying in 1 s", exc)
            await asyncio.sleep(1)
        finally:
            await client.aclose()
