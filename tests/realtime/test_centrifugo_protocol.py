"""Centrifugo's client protocol frame by frame (a bare WebSocket client), through a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from websockets.exceptions import ConnectionClosed

from tests.realtime.conftest import HUB_API_KEY
from tests.realtime.test_fanout import Publisher, slow_socket
from tests.support.aio import run
from tests.support.asgi_server import AsgiServer
from tests.support.centrifugo_client import CentrifugoClient, ReplyError
from tests.support.hub_client import connected
from veloflux_site.realtime import hub, tokens
from veloflux_site.realtime.consumers import MAX_BACKLOG_BYTES


async def closed_with(client: CentrifugoClient, timeout: float = 5.0) -> int:
    """The close code the server ends the connection with (frames before it are kept)."""
    try:
        while True:
            client.frames.append(await client._next(timeout))
    except ConnectionClosed as closed:
        return closed.rcvd.code


async def cf_connected(server, actor) -> CentrifugoClient:
    client = await CentrifugoClient.open(server.ws_url)
    await client.call("connect", {"token": actor.token})
    return client


def test_it_answers_commands_batched_in_one_frame_each_with_its_id(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:batch"

    async def scenario():
        client = await CentrifugoClient.open(asgi_server.ws_url)
        await client.send({"id": 1, "connect": {"token": owner.token, "name": "test"}},
                          {"id": 2, "subscribe": {"channel": channel}},
                          {"id": 3, "presence_stats": {"channel": channel}})
        connect = await client.reply(1, "connect")
        subscribe = await client.reply(2, "subscribe")
        stats = await client.reply(3, "presence_stats")
        await client.close()
        return connect, subscribe, stats

    connect, subscribe, stats = run(scenario())
    assert connect["client"] and connect["ping"] == 25 and connect["pong"] is True
    assert subscribe["recoverable"] is True and subscribe["offset"] == 0 and subscribe["epoch"]
    assert stats == {"num_clients": 1, "num_users": 1}


def test_it_closes_a_connection_presenting_an_invalid_token_with_3500(asgi_server):
    async def scenario():
        client = await CentrifugoClient.open(asgi_server.ws_url)
        await client.send({"id": 1, "connect": {"token": "not-a-jwt"}})
        return await closed_with(client)

    assert run(scenario()) == 3500  # "invalid token": the SDK does not reconnect


def test_it_closes_a_connection_that_sends_a_command_before_connect_with_3501(asgi_server, owner):
    async def scenario():
        client = await CentrifugoClient.open(asgi_server.ws_url)
        await client.send({"id": 1, "subscribe": {"channel": f"tenant:{owner.tenant_id}:x"}})
        return await closed_with(client)

    assert run(scenario()) == 3501


def test_it_answers_an_expired_connection_token_with_error_109(asgi_server, owner):
    expired = tokens.issue_connection(owner.id, owner.tenant_id, 0, ttl=-5).token

    async def scenario():
        client = await CentrifugoClient.open(asgi_server.ws_url)
        with pytest.raises(ReplyError) as error:
            await client.call("connect", {"token": expired})
        await client.close()
        return error.value.code

    assert run(scenario()) == 109


def test_it_refuses_subscription_tokens_for_another_channel_or_expired(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:private"
    other = tokens.issue_subscription(owner.id, owner.tenant_id, f"tenant:{owner.tenant_id}:other", 60).token
    expired = tokens.issue_subscription(owner.id, owner.tenant_id, channel, -5).token

    async def scenario():
        client = await cf_connected(asgi_server, owner)
        codes = []
        for token in (other, expired):
            with pytest.raises(ReplyError) as error:
                await client.call("subscribe", {"channel": channel, "token": token})
            codes.append(error.value.code)
        await client.close()
        return codes

    assert run(scenario()) == [103, 109]


def test_it_refuses_another_tenants_channel_whatever_the_command(asgi_server, owner, outsider):
    channel = f"tenant:{owner.tenant_id}:secret"

    async def scenario():
        client = await cf_connected(asgi_server, outsider)
        codes = []
        for method, params in (("subscribe", {}), ("publish", {"data": 1}), ("history", {"limit": 5}),
                               ("presence", {}), ("presence_stats", {})):
            with pytest.raises(ReplyError) as error:
                await client.call(method, {"channel": channel, **params})
            codes.append(error.value.code)
        await client.close()
        return codes

    assert run(scenario()) == [103] * 5
    assert hub.history(channel) == []


def test_it_tells_a_centrifugo_client_that_stops_reading_to_resubscribe_and_recovers_it(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:bulky"
    payload = {"blob": "x" * 32_000}
    count = 400

    async def scenario():
        slow = await CentrifugoClient.open(asgi_server.ws_url, sock=slow_socket(asgi_server.port), max_size=None,
                                           max_queue=2)
        await slow.call("connect", {"token": owner.token})
        position = await slow.call("subscribe", {"channel": channel})
        publisher = Publisher(channel, count=count, data=payload)
        publisher.start()
        await asyncio.to_thread(publisher.join)
        await asyncio.sleep(0.5)
        seen = []
        while True:
            frame = await slow._next(10)
            push = frame.get("push", {})
            if "pub" in push:
                seen.append(push["pub"]["offset"])
            elif "unsubscribe" in push:
                notice = push
                break
        again = await slow.call("subscribe", {"channel": channel, "recover": True, "offset": seen[-1],
                                              "epoch": position["epoch"]})
        await slow.close()
        return seen, notice, again

    seen, notice, again = run(scenario(), 60)
    assert notice == {"channel": channel, "unsubscribe": {"code": 2500, "reason": "insufficient state"}}
    assert len(seen) * len(payload["blob"]) > MAX_BACKLOG_BYTES and seen == list(range(1, len(seen) + 1))
    assert again["recovered"] is True and again["was_recovering"] is True
    assert seen + [p["offset"] for p in again["publications"]] == list(range(1, count + 1))


def test_it_carries_the_server_apis_unsubscribe_to_both_kinds_of_client(asgi_server, owner, api):
    channel = f"tenant:{owner.tenant_id}:ops"

    async def scenario():
        cf_client = await cf_connected(asgi_server, owner)
        await cf_client.call("subscribe", {"channel": channel})
        seed = await connected(asgi_server, owner)
        await seed.call("subscribe", {"channel": channel})
        response = await asyncio.to_thread(api.post, "/api/unsubscribe", {"user": owner.id, "channel": channel},
                                           HTTP_X_API_KEY=HUB_API_KEY)
        cf_notice = await cf_client.push("unsubscribe")
        seed_notice = await seed.next_push("unsubscribe")
        hub.publish(channel, {"after": "unsubscribe"})
        await asyncio.sleep(0.3)
        leftovers = [f for f in cf_client.frames if "pub" in f.get("push", {})]
        await cf_client.close()
        await seed.close()
        return response, cf_notice, seed_notice, leftovers

    response, cf_notice, seed_notice, leftovers = run(scenario())
    assert response.status_code == 200 and response.json() == {"result": {}}
    assert cf_notice == {"channel": channel, "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}
    assert seed_notice["channel"] == channel and seed_notice["code"] == 2000
    assert leftovers == []


@pytest.fixture
def quick_ping_server(redis_server):
    """A web process pinging every second, closing an expired connection one second after its token's exp."""
    saved = {k: os.environ.get(k) for k in ("VF_REALTIME_PING_INTERVAL", "VF_REALTIME_EXPIRED_GRACE")}
    os.environ.update(VF_REALTIME_PING_INTERVAL="1s", VF_REALTIME_EXPIRED_GRACE="1s")
    try:
        server = AsgiServer(redis_server.url).start()
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    yield server
    server.stop()


def test_it_pings_and_closes_a_client_that_never_answers_with_3012(quick_ping_server, owner):
    async def scenario():
        client = await cf_connected(quick_ping_server, owner)
        code = await closed_with(client, timeout=10)
        return code, client.frames

    code, frames = run(scenario(), 30)
    assert {} in frames  # the protocol's ping
    assert code == 3012  # "no pong": the SDK reconnects


def test_it_keeps_a_client_that_answers_pings(quick_ping_server, owner):
    async def scenario():
        client = await cf_connected(quick_ping_server, owner)
        pings = 0
        while pings < 4:
            frame = await client._next(5)
            if frame == {}:
                pings += 1
                await client.ws.send("{}")
        stats = await client.call("presence_stats", {"channel": f"tenant:{owner.tenant_id}:x"})
        await client.close()
        return stats

    assert run(scenario(), 30) == {"num_clients": 0, "num_users": 0}


def test_it_closes_a_connection_whose_token_expired_unrefreshed_with_3005(quick_ping_server, owner):
    short = tokens.issue_connection(owner.id, owner.tenant_id, 0, ttl=1).token

    async def scenario():
        client = await CentrifugoClient.open(quick_ping_server.ws_url)
        reply = await client.call("connect", {"token": short})

        async def answer_pings():
            while True:
                if await client._next(10) == {}:
                    await client.ws.send("{}")

        try:
            await asyncio.wait_for(answer_pings(), 10)
        except ConnectionClosed as closed:
            return reply, closed.rcvd.code

    reply, code = run(scenario(), 30)
    assert reply["expires"] is True and reply["ttl"] == 1
    assert code == 3005  # "expired": the SDK reconnects and fetches a new token


def test_it_still_speaks_the_seed_protocol_on_the_same_endpoint(asgi_server, owner):
    async def scenario():
        client = await connected(asgi_server, owner)
        reply = await client.call("subscribe", {"channel": f"tenant:{owner.tenant_id}:seed"})
        await client.close()
        return reply

    assert json.loads(json.dumps(run(scenario())))["channel"] == f"tenant:{owner.tenant_id}:seed"


def test_it_closes_a_centrifugo_connection_that_sends_a_deeply_nested_frame_as_a_bad_request(asgi_server, owner):
    # 30,000 levels fit in one 64 KiB frame; json.loads would die of RecursionError (the consumer crashing
    # with 1011), the bounded reader refuses it as a bad request, as Centrifugo does with a frame it cannot decode.
    async def scenario():
        client = await cf_connected(asgi_server, owner)
        await client.ws.send('{"id": 2, "publish": ' + "[" * 30_000 + "]" * 30_000 + "}")
        return await closed_with(client)

    assert run(scenario()) == 3501
