"""Platform events reach hub channels exactly once, however many bridges run."""

from __future__ import annotations

import asyncio
import json

from django.conf import settings

from veloflux_site.realtime import hub
from veloflux_site.realtime.bridge import forward, publications_for, run_bridge
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def test_it_routes_each_event_kind_to_its_tenant_channel_and_the_admin_feed():
    routing = publications_for("routing", {"type": "routing.changed", "version": 7, "tenant_id": "tn_1"})
    alert = publications_for("alerts", {"type": "alert.raised", "tenant_id": "tn_1", "alert": {"id": "al_9"}})
    health = publications_for("health", {"type": "backend.health", "backend_id": "be_1", "tenant_id": "tn_1",
                                         "state": "down", "at": 12.5})
    assert [(c, k) for c, _, k in routing] == [("tenant:tn_1:config", "routing:7"), ("admin:events", "routing:7")]
    assert [c for c, _, _ in alert] == ["tenant:tn_1:alerts", "admin:events"]
    assert [k for _, _, k in health] == ["health:be_1:12.5", "health:be_1:12.5"]
    assert publications_for("health", {"type": "something.else"}) == []


def test_it_publishes_an_event_once_even_when_forwarded_twice():
    raw = json.dumps({"type": "routing.changed", "version": 3, "tenant_id": "tn_2"})
    assert forward("routing", raw) == 2
    assert forward("routing", raw) == 0
    assert [p["data"]["version"] for p in hub.history("tenant:tn_2:config")] == [3]


def test_it_ignores_garbage_events():
    assert forward("routing", "not json") == 0
    assert forward("routing", "[1, 2]") == 0


def test_it_bridges_live_events_from_redis_pubsub():
    async def scenario():
        stop = asyncio.Event()
        task = asyncio.create_task(run_bridge(settings.REDIS_URL, stop))
        event = {"type": "alert.raised", "tenant_id": "tn_3", "alert": {"id": "al_1", "severity": "critical"}}
        for _ in range(200):  # until the bridge's subscription is live
            if get_redis().publish(keys.events_channel("alerts"), json.dumps(event)):
                break
            await asyncio.sleep(0.02)
        for _ in range(200):
            if hub.history("tenant:tn_3:alerts"):
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert [p["data"]["alert"]["id"] for p in hub.history("tenant:tn_3:alerts")] == ["al_1"]
