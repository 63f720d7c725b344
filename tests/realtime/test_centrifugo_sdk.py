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


def test_it_makes_the_sdk_fetch_a_new_token_when_its_token_expired(asgi_server, owner):
    from veloflux_site.realtime import tokens

    expired = tokens.issue_connection(owner.id, owner.tenant_id, 0, ttl=-5).token
    channel = f"tenant:{owner.tenant_id}:news"

    async def scenario():
        client = await sdk_connected(asgi_server, owner, token=expired)  # refused with 109, getToken, connected
        await client.call("subscribe", channel=channel)
        hub.publish(channel, {"after": "refresh"})
        received = await client.event("publication", channel=channel)
        fetched = client.seen("get_token", kind="connection")
        errors = client.seen("error")
        await client.close()
        return received, fetched, errors

    received, fetched, errors = run(scenario())
    assert received["data"] == {"after": "refresh"}
    assert len(fetched) == 1
    assert errors[0]["error"]["code"] == 109  # "token expired": the code that makes the SDK refresh by itself


def test_it_keeps_an_sdk_connection_whose_short_token_the_sdk_refreshes(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:live"

    async def scenario():
        # Tokens of 2 s: the connect reply says expires/ttl, the SDK calls getToken and sends `refresh`.
        client = await sdk_connected(asgi_server, owner, token_body={"ttl": 2})
        await client.call("subscribe", channel=channel)
        await client.event("get_token", kind="connection")  # the first token
        await client.event("get_token", kind="connection", timeout=6)  # the refresh
        await client.event("get_token", kind="connection", timeout=6)  # and again: the refreshed token is honoured
        hub.publish(channel, {"still": "here"})
        received = await client.event("publication", channel=channel)
        disconnects = client.seen("disconnected") + [e for e in client.seen("connecting") if e["code"] != 0]
        await client.close()
        return received, disconnects

    received, disconnects = run(scenario())
    assert received["data"] == {"still": "here"}
    assert disconnects == []


def test_it_subscribes_the_sdk_with_a_subscription_token_from_the_api(asgi_server, owner):
    channel = f"user:{owner.id}"

    async def scenario():
        client = await sdk_connected(asgi_server, owner)
        await client.call("subscribe", channel=channel, bearer=owner.token,
                          token_url=f"{asgi_server.http_url}/api/realtime/subscription-token")
        hub.publish(channel, {"for": "me"})
        received = await client.event("publication", channel=channel)
        fetched = client.seen("get_token", kind="subscription")
        await client.close()
        return received, fetched

    received, fetched = run(scenario())
    assert received["data"] == {"for": "me"} and len(fetched) == 1


def test_it_subscribes_the_channels_of_a_connection_token_at_connect(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:server-side"

    async def scenario():
        client = await sdk_connected(asgi_server, owner, token_body={"channels": [channel]})
        await client.event("server_subscribed", channel=channel)
        hub.publish(channel, {"pushed": True})
        received = await client.event("server_publication", channel=channel)
        await client.close()
        return received

    assert run(scenario())["data"] == {"pushed": True}
