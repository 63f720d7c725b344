"""The channel hub through a real uvicorn process and real WebSockets."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.aio import run
from tests.support.hub_client import HubClient, HubError, connected
from veloflux_site.realtime import hub


def test_it_refuses_commands_before_connect_when_the_handshake_carried_no_credentials(asgi_server, owner):
    async def scenario():
        client = await HubClient.open(asgi_server.ws_url)
        with pytest.raises(HubError) as error:
            await client.call("subscribe", {"channel": f"tenant:{owner.tenant_id}:news"})
        await client.close()
        return error.value.code

    assert run(scenario()) == 101


def test_it_refuses_connect_without_credentials(asgi_server):
    async def scenario():
        client = await HubClient.open(asgi_server.ws_url)
        with pytest.raises(HubError) as error:
            await client.call("connect", {"token": "not-a-jwt"})
        await client.close()
        return error.value.code

    assert run(scenario()) == 109


def test_it_lets_a_non_browser_client_in_without_an_origin_header(asgi_server, owner):
    async def scenario():
        client = await HubClient.open(asgi_server.ws_url, owner.token, origin=None)
        reply = await client.call("subscribe", {"channel": f"tenant:{owner.tenant_id}:news"})
        await client.close()
        return reply

    assert run(scenario())["channel"] == f"tenant:{owner.tenant_id}:news"


def test_it_refuses_a_handshake_from_another_sites_page(asgi_server, owner):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            await HubClient.open(asgi_server.ws_url, owner.token, origin="https://evil.example")
        return refused.value.response.status_code

    assert run(scenario()) == 403


def test_it_accepts_a_jwt_in_the_connect_command(asgi_server, owner):
    async def scenario():
        client = await HubClient.open(asgi_server.ws_url)
        reply = await client.call("connect", {"token": owner.token})
        await client.close()
        return reply

    assert run(scenario())["tenant_id"] == owner.tenant_id


def test_it_delivers_a_publication_to_every_subscriber(asgi_server, owner, member, viewer):
    channel = f"tenant:{owner.tenant_id}:news"

    async def scenario():
        listeners = [await connected(asgi_server, owner), await connected(asgi_server, viewer)]
        for listener in listeners:
            await listener.call("subscribe", {"channel": channel})
        publisher = await connected(asgi_server, member)
        reply = await publisher.call("publish", {"channel": channel, "data": {"text": "hello"}})
        received = [await listener.next_frame("publication") for listener in listeners]
        for client in [*listeners, publisher]:
            await client.close()
        return reply, received

    reply, received = run(scenario())
    assert reply["offset"] == 1
    assert [r["data"] for r in received] == [{"text": "hello"}, {"text": "hello"}]
    assert all(r["offset"] == 1 and r["channel"] == channel and r["epoch"] for r in received)


def test_it_serves_the_existing_veloflux_client_protocol(asgi_server, owner):
    """Seed 002's client: token in the URL, subscribe at once, payload at frame.data."""
    channel = f"tenant:{owner.tenant_id}:deployments"

    async def scenario():
        client = await HubClient.open(asgi_server.ws_url, owner.token)
        await client.call("subscribe", {"channel": channel})
        hub.publish(channel, {"type": "deployment_start", "data": {"status": "starting"}})
        frame = await client.next_frame("publication")
        await client.close()
        return frame

    frame = run(scenario())
    assert frame["data"]["type"] == "deployment_start"
    assert frame["data"]["data"]["status"] == "starting"
    assert set(frame) >= {"type", "data", "timestamp"}


@pytest.mark.parametrize("channel_for, actor_name, method, code", [
    (lambda a, o, p: f"tenant:{a.tenant_id}:news", "outsider", "subscribe", 103),
    (lambda a, o, p: f"tenant:{a.tenant_id}:news", "viewer", "publish", 103),
    (lambda a, o, p: "admin:events", "owner", "subscribe", 103),
    (lambda a, o, p: f"user:{o.id}", "owner", "subscribe", 103),
    (lambda a, o, p: f"user:{a.id}", "owner", "publish", 103),
    (lambda a, o, p: "nonsense", "owner", "subscribe", 102),
])
def test_it_enforces_channel_permissions(asgi_server, owner, viewer, outsider, platform_admin,
                                         channel_for, actor_name, method, code):
    actors = {"owner": owner, "viewer": viewer, "outsider": outsider}
    channel = channel_for(owner, outsider, platform_admin)

    async def scenario():
        client = await connected(asgi_server, actors[actor_name])
        with pytest.raises(HubError) as error:
            await client.call(method, {"channel": channel, "data": {}})
        await client.close()
        return error.value.code

    assert run(scenario()) == code


def test_it_lets_each_namespace_be_used_by_its_rightful_users(asgi_server, owner, platform_admin):
    async def scenario():
        own = await connected(asgi_server, owner)
        await own.call("subscribe", {"channel": f"user:{owner.id}"})
        admin = await connected(asgi_server, platform_admin)
        await admin.call("subscribe", {"channel": "admin:events"})
        await admin.call("publish", {"channel": f"user:{owner.id}", "data": {"notice": 1}})
        await admin.call("publish", {"channel": "admin:events", "data": {"notice": 2}})
        got = await own.next_push("publication"), await admin.next_push("publication")
        await own.close()
        await admin.close()
        return got

    assert run(scenario()) == ({"notice": 1}, {"notice": 2})


def test_it_recovers_exactly_what_a_client_missed(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:feed"

    async def first_visit():
        client = await connected(asgi_server, owner)
        hub.publish(channel, {"n": 0})
        position = await client.call("subscribe", {"channel": channel})
        await client.close()
        return position

    position = run(first_visit())
    for n in range(1, 4):
        hub.publish(channel, {"n": n})

    async def second_visit():
        client = await connected(asgi_server, owner)
        result = await client.call("subscribe", {"channel": channel, "recover": True,
                                                 "offset": position["offset"], "epoch": position["epoch"]})
        hub.publish(channel, {"n": 4})
        live = await client.next_frame("publication")
        await client.close()
        return result, live

    result, live = run(second_visit())
    assert result["recovered"] is True
    assert [p["data"]["n"] for p in result["publications"]] == [1, 2, 3]
    assert live["offset"] == 5 and live["data"] == {"n": 4}


def test_it_says_recovery_failed_when_the_epoch_changed(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:feed"
    hub.publish(channel, {"n": 1})

    async def scenario():
        client = await connected(asgi_server, owner)
        result = await client.call("subscribe", {"channel": channel, "recover": True, "offset": 0,
                                                 "epoch": "not-the-epoch"})
        await client.close()
        return result

    result = run(scenario())
    assert result["recovered"] is False and result["publications"] == []


def test_it_publishes_once_per_idempotency_key(asgi_server, member):
    channel = f"tenant:{member.tenant_id}:orders"

    async def scenario():
        client = await connected(asgi_server, member)
        first = await client.call("publish", {"channel": channel, "data": {"a": 1}, "idempotency_key": "k-1"})
        again = await client.call("publish", {"channel": channel, "data": {"a": 1}, "idempotency_key": "k-1"})
        await client.close()
        return first, again

    first, again = run(scenario())
    assert (first["offset"], first["duplicate"]) == (1, False)
    assert (again["offset"], again["duplicate"]) == (1, True)
    assert len(hub.history(channel)) == 1


def test_it_tracks_presence_with_join_and_leave(asgi_server, owner, viewer):
    channel = f"tenant:{owner.tenant_id}:room"

    async def scenario():
        watcher = await connected(asgi_server, owner)
        await watcher.call("subscribe", {"channel": channel, "join_leave": True})
        guest = await connected(asgi_server, viewer)
        await guest.call("subscribe", {"channel": channel})
        joined = await watcher.next_push("join")
        stats = await watcher.call("presence_stats", {"channel": channel})
        await guest.close()
        left = await watcher.next_push("leave")
        after = await watcher.call("presence", {"channel": channel})
        await watcher.close()
        return joined, stats, left, after

    joined, stats, left, after = run(scenario())
    assert joined["info"]["user"] == viewer.id
    assert stats["num_clients"] == 2 and stats["num_users"] == 2
    assert left["info"]["user"] == viewer.id
    assert [c["user"] for c in after["clients"].values()] == [owner.id]


def test_it_returns_history_in_offset_order(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:log"
    for n in range(5):
        hub.publish(channel, {"n": n})

    async def scenario():
        client = await connected(asgi_server, owner)
        reply = await client.call("history", {"channel": channel, "since_offset": 2})
        await client.close()
        return reply

    reply = run(scenario())
    assert [p["offset"] for p in reply["publications"]] == [3, 4, 5]
    assert reply["offset"] == 5
