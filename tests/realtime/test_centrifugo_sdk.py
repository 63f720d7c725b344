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
