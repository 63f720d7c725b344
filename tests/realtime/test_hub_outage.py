"""The hub while Redis is away: a command gets an error reply and changes nothing; the connection lives on.

Driven in-process (the app pointed at a redis-server of the test's own, which it stops and restarts),
so the session's shared server is never touched.
"""

from __future__ import annotations

import json

from tenants.channels_auth import PrincipalAuthMiddleware
from tests.support.actors import make_tenant
from tests.support.aio import run
from tests.support.ws import WebsocketClient
from veloflux_site.realtime import hub
from veloflux_site.realtime.broker import get_broker
from veloflux_site.realtime.consumers import UNAVAILABLE, HubConsumer
from veloflux_site.storage import keys

APP = PrincipalAuthMiddleware(HubConsumer.as_asgi())




async def command(client: WebsocketClient, request_id: int, method: str, params: dict) -> dict:
    """The reply to this command (pushes in between, such as a fell-behind notice, are skipped)."""
    await client.send_input({"type": "websocket.receive", "text": json.dumps(
        {"id": request_id, "method": method, "params": params})})
    while True:
        frame = await client.receive_json(timeout=15)
        if frame.get("id") == request_id:
            return frame


def test_it_answers_unavailable_and_keeps_nothing_when_redis_is_down_during_a_subscribe(own_redis):
    tenant_id, owner = make_tenant("Outage Co", "owner@outage.test")
    first, second = f"tenant:{tenant_id}:first", f"tenant:{tenant_id}:second"

    async def scenario():
        client = WebsocketClient(APP, f"/connection/websocket?token={owner.token}")
        assert await client.connect()
        assert (await command(client, 1, "subscribe", {"channel": first}))["type"] == "subscribe"
        own_redis.stop()
        refused = await command(client, 2, "subscribe", {"channel": second})
        # The failed subscribe left no listener behind in the broker.
        listening = set(get_broker()._subscribers)
        own_redis.start()
        retried = await command(client, 3, "subscribe", {"channel": second})
        await client.disconnect()
        return refused, listening, retried, set(get_broker()._subscribers)

    refused, listening, retried, after = run(scenario(), 60)
    assert refused["type"] == "error" and refused["id"] == 2
    assert refused["data"]["code"] == UNAVAILABLE and "Redis" in refused["data"]["message"]
    assert keys.hub_pubsub(second) not in listening
    assert retried["type"] == "subscribe" and retried["data"]["channel"] == second
    assert after == set()  # the disconnect released every subscription
    assert hub.presence(second) == {}  # and left presence
