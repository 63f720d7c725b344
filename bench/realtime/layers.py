"""Fan-out through channels-redis's two layers, side by side, without WebSockets.

N consumers (each a channel of the layer, as Channels gives every consumer) join one
group; group_send at a fixed rate; count what arrives and how late. This is the
measurement behind the hub's design choice (README, "Realtime delivery").

    .venv/bin/python bench/realtime/layers.py [--consumers 5000] [--rate 2] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.redis_server import RedisServer  # noqa: E402


async def measure(layer, consumers: int, rate: float, seconds: float) -> dict:
    names = [await layer.new_channel() for _ in range(consumers)]
    for name in names:
        await layer.group_add("fanout", name)
    received = 0
    latencies: list[float] = []

    async def consume(name: str) -> None:
        nonlocal received
        while True:
            message = await layer.receive(name)
            received += 1
            latencies.append((time.time() - message["sent_at"]) * 1000)

    tasks = [asyncio.create_task(consume(name)) for name in names]
    await asyncio.sleep(1)
    sent, started = 0, time.time()
    while time.time() - started < seconds:
        await layer.group_send("fanout", {"type": "bench.message", "sent_at": time.time()})
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate - time.time()))
    last, quiet_since = -1, time.time()
    while time.time() - quiet_since < 2 and received < sent * consumers:
        await asyncio.sleep(0.2)
        if received != last:
            last, quiet_since = received, time.time()
    for task in tasks:
        task.cancel()
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]) if latencies else (lambda q: 0)
    return {"expected": sent * consumers, "received": received, "p50": pick(0.5), "p99": pick(0.99)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--consumers", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=2)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    server = RedisServer().start()
    try:
        rows = []
        for label, factory in (("RedisChannelLayer (lists)", RedisChannelLayer),
                               ("RedisPubSubChannelLayer", RedisPubSubChannelLayer)):
            layer = factory(hosts=[server.url])
            started = time.process_time()
            result = await measure(layer, args.consumers, args.rate, args.seconds)
            result["cpu"] = time.process_time() - started
            rows.append((label, result))
            await layer.flush()
    finally:
        server.cleanup()
    print(f"\n{args.consumers} consumers in one group, {args.rate} group_send/s for {args.seconds:.0f} s")
    print(f"{'layer':28} {'expected':>9} {'received':>9} {'ratio':>7} {'p50 ms':>8} {'p99 ms':>8} {'cpu s':>6}")
    for label, r in rows:
        print(f"{label:28} {r['expected']:>9} {r['received']:>9} {r['received'] / r['expected']:>7.4f} "
              f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['cpu']:>6.1f}")


if __name__ == "__main__":
    uvloop.run(main())
