"""The broker's delivery guarantee: delivered, or told it fell behind — never a silent drop."""

from __future__ import annotations

import asyncio

from django.conf import settings

from tests.support.aio import run
from veloflux_site.realtime import hub
from veloflux_site.realtime.broker import Broker, Subscriber
from veloflux_site.storage import keys
from veloflux_site.storage.connection import build_async_client, get_redis


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def test_it_delivers_every_publication_in_order():
    async def scenario():
        broker = Broker(lambda: build_async_client(settings.REDIS_URL))
        subscriber = Subscriber(on_lag=lambda channel: None)
        await broker.subscribe(keys.hub_pubsub("admin:ordered"), subscriber)
        for n in range(50):
            hub.publish("admin:ordered", {"n": n})
        await wait_until(lambda: subscriber.queue.qsize() == 50)
        return [subscriber.queue.get_nowait()[1]["offset"] for _ in range(50)]

    assert run(scenario(), 20) == list(range(1, 51))


def test_it_tells_a_subscriber_whose_queue_overflows_that_it_fell_behind():
    lagged: list[str] = []

    async def scenario():
        broker = Broker(lambda: build_async_client(settings.REDIS_URL))
        subscriber = Subscriber(on_lag=lagged.append, maxsize=2)
        await broker.subscribe(keys.hub_pubsub("admin:slow"), subscriber)
        for n in range(5):
            hub.publish("admin:slow", {"n": n})
        await wait_until(lambda: len(lagged) == 3)
        return subscriber.queue.qsize()

    assert run(scenario(), 20) == 2
    assert lagged == [keys.hub_pubsub("admin:slow")] * 3


def test_it_tells_every_subscriber_to_recover_when_the_pubsub_connection_drops():
    lagged: list[str] = []

    async def scenario():
        broker = Broker(lambda: build_async_client(settings.REDIS_URL))
        await broker.subscribe(keys.hub_pubsub("admin:a"), Subscriber(on_lag=lagged.append))
        await broker.subscribe(keys.hub_pubsub("admin:b"), Subscriber(on_lag=lagged.append))
        get_redis().client_kill_filter(_type="pubsub")
        await wait_until(lambda: sorted(lagged) == [keys.hub_pubsub("admin:a"), keys.hub_pubsub("admin:b")])
        # ...and it subscribes again by itself: new publications arrive.
        receiver = Subscriber(on_lag=lagged.append)
        await broker.subscribe(keys.hub_pubsub("admin:a"), receiver)
        await wait_until(lambda: get_redis().pubsub_numsub("vf:hub:pub:admin:a")[0][1] == 1)
        hub.publish("admin:a", {"after": True})
        await wait_until(lambda: receiver.queue.qsize() == 1)
        return receiver.queue.get_nowait()[1]["data"]

    assert run(scenario(), 20) == {"after": True}
