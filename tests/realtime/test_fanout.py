"""The hub's fan-out through the real server (uvicorn with the raw-frame protocol of the Procfile).

Every subscriber gets every publication once, in offset order, after its subscribe reply;
a client too slow to read is told it fell behind and recovers the rest from history.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading

from tenants.channels_auth import PrincipalAuthMiddleware
from tests.support.aio import run
from tests.support.hub_client import HubClient, connected
from tests.support.ws import WebsocketClient
from veloflux_site.realtime import hub
from veloflux_site.realtime.consumers import FELL_BEHIND, MAX_BACKLOG_BYTES, HubConsumer


async def publications(client: HubClient, channel: str, count: int, timeout: float = 10.0) -> list[int]:
    """Offsets of the next ``count`` publications of ``channel`` this client receives."""
    offsets = []
    while len(offsets) < count:
        frame = await client.next_frame("publication", timeout)
        assert frame["channel"] == channel
        offsets.append(frame["offset"])
    return offsets


async def nothing_more(client: HubClient, wait: float = 0.3) -> list[dict]:
    """Frames that still arrive within ``wait`` seconds (expected: none)."""
    extra = list(client.pushes)
    try:
        while True:
            extra.append(json.loads(await asyncio.wait_for(client.ws.recv(), wait)))
    except TimeoutError:
        return extra


class Publisher(threading.Thread):
    """Publishes ``count`` publications (or until stopped) from another thread, as fast as Redis takes them."""

    def __init__(self, channel: str, count: int | None = None, data: dict | None = None):
        super().__init__(daemon=True)
        self.channel, self.count, self.data = channel, count, data or {}
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        while not self.stopped.is_set() and (self.count is None or self.sent < self.count):
            hub.publish(self.channel, {**self.data, "n": self.sent})
            self.sent += 1

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.sent


def test_it_delivers_every_publication_exactly_once_and_in_offset_order_to_every_subscriber(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:firehose"

    async def scenario():
        clients = [await connected(asgi_server, owner) for _ in range(30)]
        for client in clients:
            await client.call("subscribe", {"channel": channel})
        publisher = Publisher(channel, count=400)
        publisher.start()
        received = await asyncio.gather(*(publications(client, channel, 400) for client in clients))
        publisher.join()
        extra = await asyncio.gather(*(nothing_more(client) for client in clients))
        for client in clients:
            await client.close()
        return received, extra

    received, extra = run(scenario(), 60)
    assert all(offsets == list(range(1, 401)) for offsets in received)
    assert extra == [[] for _ in received]


def test_it_sends_the_subscribe_reply_before_any_publication_of_the_channel(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:busy"

    async def scenario():
        publisher = Publisher(channel)
        publisher.start()
        outcomes = []
        try:
            for _ in range(20):
                client = await connected(asgi_server, owner)
                reply = await client.call("subscribe", {"channel": channel})
                early = [frame for frame in client.pushes if frame["type"] == "publication"]
                following = await publications(client, channel, 5)
                outcomes.append((early, following, reply["offset"]))
                await client.close()
        finally:
            publisher.stop()
        return outcomes

    for early, following, offset in run(scenario(), 60):
        assert early == []
        assert following == list(range(offset + 1, offset + 6))



def test_it_keeps_pings_and_the_closing_handshake_intact_between_raw_frames(asgi_server, owner):
    """Raw frames share the wire with frames wsproto writes (pongs, close): neither may corrupt the other."""
    channel = f"tenant:{owner.tenant_id}:mixed"

    async def scenario():
        client = await connected(asgi_server, owner, max_queue=None)  # never stops reading: pongs get through
        await client.call("subscribe", {"channel": channel})
        publisher = Publisher(channel, count=300)
        publisher.start()
        pongs = 0
        for _ in range(10):
            await asyncio.wait_for(await client.ws.ping(), 5)
            pongs += 1
        offsets = await publications(client, channel, 300)
        publisher.join()
        await client.close()
        return pongs, offsets, client.ws.close_code

    pongs, offsets, close_code = run(scenario(), 60)
    assert pongs == 10 and offsets == list(range(1, 301)) and close_code == 1000

def slow_socket(port: int) -> socket.socket:
    """A client socket whose kernel buffer holds almost nothing, so a client that stops reading shows at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def test_it_tells_a_client_that_stops_reading_that_it_fell_behind_and_it_recovers_from_history(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:bulky"
    payload = {"blob": "x" * 32_000}
    count = 400  # 12.8 MB: more than the kernel's socket buffers plus the server's bound hold

    async def scenario():
        slow = await connected(asgi_server, owner, sock=slow_socket(asgi_server.port), max_size=None, max_queue=2)
        position = await slow.call("subscribe", {"channel": channel})
        publisher = Publisher(channel, count=count, data=payload)
        publisher.start()
        await asyncio.to_thread(publisher.join)  # the client reads at most 2 frames meanwhile, then stops
        await asyncio.sleep(0.5)
        seen, notice = [], None
        while notice is None:
            frame = json.loads(await asyncio.wait_for(slow.ws.recv(), 10))
            if frame["type"] == "publication":
                seen.append(frame["offset"])
            elif frame["type"] == "unsubscribe":
                notice = frame["data"]
        after_notice = await nothing_more(slow)
        again = await slow.call("subscribe", {"channel": channel, "recover": True, "offset": notice["offset"],
                                              "epoch": position["epoch"]})
        hub.publish(channel, {"n": "live"})
        live = await publications(slow, channel, 1)
        await slow.close()
        return seen, notice, after_notice, again, live

    seen, notice, after_notice, again, live = run(scenario(), 60)
    assert notice["code"] == FELL_BEHIND and notice["channel"] == channel
    assert 0 < len(seen) < count and seen == list(range(1, len(seen) + 1)) and notice["offset"] == seen[-1]
    assert len(seen) * len(payload["blob"]) > MAX_BACKLOG_BYTES  # the bound, not an accident, decided
    assert after_notice == []
    assert again["recovered"] is True
    assert seen + [p["offset"] for p in again["publications"]] == list(range(1, count + 1))
    assert live == [count + 1]


def test_it_keeps_delivering_to_everyone_else_when_connections_drop_during_the_fan_out(asgi_server, owner):
    channel = f"tenant:{owner.tenant_id}:churn"

    async def scenario():
        clients = [await connected(asgi_server, owner) for _ in range(40)]
        for client in clients:
            await client.call("subscribe", {"channel": channel})
        leaving, staying = clients[::2], clients[1::2]
        publisher = Publisher(channel, count=300)
        publisher.start()
        for client in leaving:  # gone without a closing handshake, while publications are flowing
            await asyncio.sleep(0.002)
            client.ws.transport.abort()
        received = await asyncio.gather(*(publications(client, channel, 300) for client in staying))
        publisher.join()
        newcomer = await connected(asgi_server, owner)
        reply = await newcomer.call("subscribe", {"channel": channel})
        hub.publish(channel, {"n": "after"})
        last = await asyncio.gather(*(publications(client, channel, 1) for client in [*staying, newcomer]))
        for client in [*staying, newcomer]:
            await client.close()
        return received, reply, last

    received, reply, last = run(scenario(), 60)
    assert all(offsets == list(range(1, 301)) for offsets in received)
    assert reply["offset"] == 300
    assert last == [[301]] * 21


def test_it_delivers_the_same_way_through_a_server_without_the_raw_frame_extension(owner):
    """In-process ASGI (like daphne, or any server but ours): frames go through ASGI send, in the same order."""
    channel = f"tenant:{owner.tenant_id}:plain"
    app = PrincipalAuthMiddleware(HubConsumer.as_asgi())

    async def scenario():
        publisher = Publisher(channel)
        publisher.start()
        client = WebsocketClient(app, f"/connection/websocket?token={owner.token}")
        try:
            assert await client.connect()
            await client.send_input({"type": "websocket.receive", "text": json.dumps(
                {"id": 1, "method": "subscribe", "params": {"channel": channel}})})
            frames = [await client.receive_json() for _ in range(51)]
        finally:
            publisher.stop()
        await client.disconnect()
        return frames

    reply, *pushes = run(scenario(), 60)
    assert reply["type"] == "subscribe" and reply["id"] == 1
    first = reply["data"]["offset"] + 1
    assert [frame["offset"] for frame in pushes] == list(range(first, first + 50))
