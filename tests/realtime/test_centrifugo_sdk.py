"""Centrifugo's official JavaScript SDK (npm ``centrifuge``) against the hub, through a real uvicorn."""

from __future__ import annotations

import pytest

from tests.support.aio import run
from tests.support.hub_client import connected
from tests.support.sdk_client import SdkClient, SdkError
from veloflux_site.realtime import hub


def ws_endpoint(server) -> str:
    return f"{server.ws_url}/connection/websocket"


async def sdk_connected(server, actor, **options) -> SdkClient:
    """An SDK client whose getToken fetches connection tokens for ``actor`` from POST /api/realtime/token."""
    client = await SdkClient.start()
    await client.call("connect", url=ws_endpoint(server), token_url=f"{server.http_url}/api/realtime/token",
                      bearer=actor.token, **options)
    return client


def test_it_connects_subscribes_and_delivers_publications_to_the_sdk(asgi_server, owner, member):
    channel = f"tenant:{owner.tenant_id}:news"

    async def scenario():
        listener = await sdk_connected(asgi_server, owner)
        await listener.call("subscribe", channel=channel)
        publisher = await sdk_connected(asgi_server, member)
        await publisher.call("publish", channel=channel, data={"text": "hello"})
        received = await listener.event("publication", channel=channel)
        for client in (listener, publisher):
            await client.close()
        return received

    received = run(scenario())
    assert received["data"] == {"text": "hello"} and received["offset"] == 1


def test_it_answers_the_sdks_history_presence_and_presence_stats(asgi_server, owner, viewer):
    channel = f"tenant:{owner.tenant_id}:feed"
    for n in range(1, 6):
        hub.publish(channel, {"n": n})

    async def scenario():
        first = await sdk_connected(asgi_server, owner)
        second = await sdk_connected(asgi_server, viewer)
        for client in (first, second):
            await client.call("subscribe", channel=channel)
        latest = await first.call("history", channel=channel, options={"limit": 2})
        newest_first = await first.call("history", channel=channel, options={"limit": 2, "reverse": True})
        since = await first.call("history", channel=channel,
                                 options={"limit": 10, "since": {"offset": 3, "epoch": latest["epoch"]}})
        presence = await first.call("presence", channel=channel)
        stats = await first.call("presence_stats", channel=channel)
        for client in (first, second):
            await client.close()
        return latest, newest_first, since, presence, stats

    latest, newest_first, since, presence, stats = run(scenario())
    assert [p["data"]["n"] for p in latest["publications"]] == [1, 2] and latest["offset"] == 5
    assert [p["data"]["n"] for p in newest_first["publications"]] == [5, 4]
    assert [p["offset"] for p in since["publications"]] == [4, 5]
    assert sorted(info["user"] for info in presence["clients"].values()) == sorted([owner.id, viewer.id])
    assert stats == {"numClients": 2, "numUsers": 2}


def test_it_sends_join_and_leave_to_an_sdk_subscription_that_asked_for_them(asgi_server, owner, viewer):
    channel = f"tenant:{owner.tenant_id}:room"

    async def scenario():
        watcher = await sdk_connected(asgi_server, owner)
        await watcher.call("subscribe", channel=channel, join_leave=True)
        guest = await sdk_connected(asgi_server, viewer)
        await guest.call("subscribe", channel=channel)
        joined = await watcher.event("join", channel=channel)
        await guest.call("unsubscribe", channel=channel)
        left = await watcher.event("leave", channel=channel)
        for client in (watcher, guest):
            await client.close()
        return joined, left

    joined, left = run(scenario())
    assert joined["info"]["user"] == left["info"]["user"] == viewer.id
    assert joined["info"]["client"] == left["info"]["client"]


def test_it_refuses_an_sdk_subscription_to_another_tenants_channel(asgi_server, owner, outsider):
    async def scenario():
        client = await sdk_connected(asgi_server, outsider)
        with pytest.raises(SdkError):
            await client.call("subscribe", channel=f"tenant:{owner.tenant_id}:secret")
        refused = await client.event("unsubscribed", channel=f"tenant:{owner.tenant_id}:secret")
        await client.close()
        return refused

    assert run(scenario())["code"] == 103  # Centrifugo's "permission denied": the SDK does not retry


def test_it_recovers_everything_an_sdk_client_missed_while_forcibly_disconnected(asgi_server, owner, member, api):
    from tests.realtime.conftest import HUB_API_KEY

    channel = f"tenant:{owner.tenant_id}:orders"

    async def scenario():
        client = await sdk_connected(asgi_server, owner)
        await client.call("subscribe", channel=channel)
        for n in range(1, 4):
            hub.publish(channel, {"n": n})
        # The server API drops the connection (3011: reconnect); publications go on meanwhile.
        response = api.post("/api/disconnect", {"user": owner.id, "disconnect": {"code": 3011, "reason": "test"}},
                            HTTP_AUTHORIZATION=f"apikey {HUB_API_KEY}")
        assert response.status_code == 200, response.content
        await client.event("connecting", code=3011)
        for n in range(4, 21):
            hub.publish(channel, {"n": n})
        resubscribed = await client.event("subscribed", channel=channel, was_recovering=True)
        for n in range(21, 24):
            hub.publish(channel, {"n": n})
        received = [await client.event("publication", channel=channel) for _ in range(23)]
        await client.close()
        return resubscribed, received

    resubscribed, received = run(scenario())
    assert resubscribed["recovered"] is True
    assert [p["offset"] for p in received] == list(range(1, 24))
    assert [p["data"]["n"] for p in received] == list(range(1, 24))


def test_it_passes_publications_between_sdk_clients_and_seed_protocol_clients(asgi_server, owner, member):
    channel = f"tenant:{owner.tenant_id}:mixed"

    async def scenario():
        sdk = await sdk_connected(asgi_server, owner)
        await sdk.call("subscribe", channel=channel)
        seed = await connected(asgi_server, member)
        await seed.call("subscribe", {"channel": channel})
        await seed.call("publish", {"channel": channel, "data": {"from": "seed"}})
        await sdk.call("publish", channel=channel, data={"from": "sdk"})
        sdk_got = [await sdk.event("publication", channel=channel) for _ in range(2)]
        seed_got = [await seed.next_frame("publication") for _ in range(2)]
        await sdk.close()
        await seed.close()
        return sdk_got, seed_got

    sdk_got, seed_got = run(scenario())
    assert [p["data"]["from"] for p in sdk_got] == [f["data"]["from"] for f in seed_got] == ["seed", "sdk"]
    assert [p["offset"] for p in sdk_got] == [f["offset"] for f in seed_got] == [1, 2]
