"""Centrifugo's server HTTP API (compatibility mode) through the ``cent`` client, against a real uvicorn;
and the hub tokens the SDKs use."""

from __future__ import annotations

import asyncio

import pytest
from cent import (
    BroadcastRequest,
    Client,
    DisconnectRequest,
    HistoryRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
)
from cent.exceptions import CentApiResponseError, CentUnauthorizedError
from websockets.exceptions import ConnectionClosed

from tenants import accounts
from tenants.store import TenantStore
from tests.realtime.conftest import HUB_API_KEY
from tests.support.aio import run
from tests.support.assertions import assert_error
from tests.support.centrifugo_client import CentrifugoClient
from tests.support.hub_client import connected
from veloflux_site.realtime import hub, tokens


def cent_client(server, key: str = HUB_API_KEY) -> Client:
    return Client(f"{server.http_url}/api", key)


def test_it_publishes_and_broadcasts_for_cent_reaching_subscribers(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:cent"
    other = f"tenant:{owner.tenant_id}:cent2"

    async def scenario():
        listener = await connected(asgi_server, owner)
        await listener.call("subscribe", {"channel": channel})
        published = await asyncio.to_thread(cent_client(asgi_server).publish, PublishRequest(channel=channel,
                                                                                              data={"n": 1}))
        frame = await listener.next_frame("publication")
        broadcast = await asyncio.to_thread(cent_client(asgi_server).broadcast,
                                            BroadcastRequest(channels=[channel, other, "nope"], data={"n": 2}))
        await listener.close()
        return published, frame, broadcast

    published, frame, broadcast = run(scenario())
    assert published.offset == 1 and published.epoch == frame["epoch"] and frame["data"] == {"n": 1}
    assert [r.result.offset for r in broadcast.responses[:2]] == [2, 1]
    assert broadcast.responses[2].error.code == 102  # unknown channel, the others still published


def test_it_publishes_once_per_idempotency_key_for_cent(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:idem"
    request = PublishRequest(channel=channel, data={"v": 1}, idempotency_key="k-1")
    first = cent_client(asgi_server).publish(request)
    again = cent_client(asgi_server).publish(request)
    assert first.offset == again.offset == 1
    assert len(hub.history(channel)) == 1


def test_it_answers_cents_history_presence_and_presence_stats(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:state"
    for n in range(1, 4):
        hub.publish(channel, {"n": n})

    async def scenario():
        present = await connected(asgi_server, owner)
        await present.call("subscribe", {"channel": channel})
        client = cent_client(asgi_server)
        history = await asyncio.to_thread(client.history, HistoryRequest(channel=channel, limit=10))
        presence = await asyncio.to_thread(client.presence, PresenceRequest(channel=channel))
        stats = await asyncio.to_thread(client.presence_stats, PresenceStatsRequest(channel=channel))
        await present.close()
        return history, presence, stats

    history, presence, stats = run(scenario())
    assert [p.data["n"] for p in history.publications] == [1, 2, 3] and history.offset == 3
    assert [info.user for info in presence.presence.values()] == [owner.id]
    assert (stats.num_clients, stats.num_users) == (1, 1)


def test_it_disconnects_a_users_connections_for_cent(asgi_server, owner):
    async def scenario():
        client = await CentrifugoClient.open(asgi_server.ws_url)
        await client.call("connect", {"token": owner.token})
        await asyncio.to_thread(cent_client(asgi_server).disconnect, DisconnectRequest(user=owner.id))
        try:
            while True:
                await client._next(5)
        except ConnectionClosed as closed:
            return closed.rcvd.code

    assert run(scenario()) == 3503  # "force disconnect": the SDK does not reconnect


def test_it_refuses_cent_with_a_wrong_key_or_a_tenants_api_key(asgi_server, owner):
    tenant = TenantStore().get(owner.tenant_id)
    _, tenant_key = accounts.create_api_key(tenant, "ci", "owner", None, accounts.Actor("t", "t"))
    request = PublishRequest(channel=f"tenant:{owner.tenant_id}:x", data=1)
    for key in ("wrong", tenant_key, ""):
        with pytest.raises(CentUnauthorizedError):
            cent_client(asgi_server, key).publish(request)
    assert hub.history(f"tenant:{owner.tenant_id}:x") == []


def test_it_answers_an_unknown_channel_as_centrifugo_does(asgi_server):
    with pytest.raises(CentApiResponseError) as error:
        cent_client(asgi_server).publish(PublishRequest(channel="no such channel", data=1))
    assert error.value.code == 102


def test_it_accepts_the_authorization_apikey_header_and_refuses_a_malformed_body(api, owner):
    channel = f"tenant:{owner.tenant_id}:hdr"
    ok = api.post("/api/publish", {"channel": channel, "data": 1}, HTTP_AUTHORIZATION=f"apikey {HUB_API_KEY}")
    bad = api.post("/api/publish", {"data": 1}, HTTP_AUTHORIZATION=f"apikey {HUB_API_KEY}")
    assert ok.status_code == 200 and ok.json()["result"]["offset"] == 1
    assert_error(bad, 400, "validation_error")


def test_it_turns_the_compatibility_mode_off_without_a_key(api, owner, settings):
    settings.REALTIME_API_KEY = ""
    response = api.post("/api/publish", {"channel": f"tenant:{owner.tenant_id}:x", "data": 1},
                        HTTP_AUTHORIZATION="apikey ")
    assert_error(response, 401, "not_authenticated")


# --- tokens -------------------------------------------------------------------
def test_it_issues_connection_tokens_to_users_only(api, owner):
    tenant = TenantStore().get(owner.tenant_id)
    _, key = accounts.create_api_key(tenant, "ci", "owner", None, accounts.Actor("t", "t"))
    issued = api.as_(owner).post("/api/realtime/token", {"ttl": 60, "info": {"name": "Ann"}})
    claims = tokens.verify(issued.json()["token"], tokens.CONNECTION)
    assert issued.status_code == 200 and claims["sub"] == owner.id and claims["info"] == {"name": "Ann"}
    assert 0 < claims["exp"] - claims["iat"] <= 60
    assert_error(api.post("/api/realtime/token", {}, HTTP_X_API_KEY=key), 403, "permission_denied")
    assert api.post("/api/realtime/token", {}).status_code == 401


def test_it_issues_subscription_tokens_only_for_channels_the_user_may_read(api, owner, outsider):
    own = api.as_(owner).post("/api/realtime/subscription-token", {"channel": f"tenant:{owner.tenant_id}:a"})
    foreign = api.as_(outsider).post("/api/realtime/subscription-token", {"channel": f"tenant:{owner.tenant_id}:a"})
    foreign_conn = api.as_(outsider).post("/api/realtime/token", {"channels": [f"tenant:{owner.tenant_id}:a"]})
    assert own.status_code == 200 and tokens.verify(own.json()["token"], tokens.SUBSCRIPTION)["channel"].endswith(":a")
    assert_error(foreign, 404, "not_found")
    assert_error(foreign_conn, 404, "not_found")


def test_it_caps_a_tokens_lifetime_at_the_platforms_setting(api, owner, settings):
    settings.REALTIME_TOKEN_TTL = 30
    issued = api.as_(owner).post("/api/realtime/token", {"ttl": 3600}).json()
    claims = tokens.verify(issued["token"], tokens.CONNECTION)
    assert claims["exp"] - claims["iat"] == 30


def test_it_never_accepts_a_hub_token_as_an_api_access_token(api, owner):
    hub_token = api.as_(owner).post("/api/realtime/token", {}).json()["token"]
    response = api.get("/api/realtime/history", {"channel": f"tenant:{owner.tenant_id}:a"},
                       HTTP_AUTHORIZATION=f"Bearer {hub_token}")
    assert response.status_code == 401
