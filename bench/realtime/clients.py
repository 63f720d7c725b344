"""Python variant of the bench client (``--client python``; clients.js is the default, cheaper one).

N WebSocket connections to the hub, measuring publish→receive latency.

Run by bench/realtime/run.py (one process per CPU share); speaks JSON lines on stdin/stdout:
  in:  {"cmd": "subscribe", "channels": [...one per connection...]} | {"cmd": "report"} | {"cmd": "quit"}
  out: {"ready": n} | {"subscribed": n} | {"received": n, "fell_behind": n, "latencies_ms": [...sample...]}
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import uvloop
from websockets.asyncio.client import connect

SAMPLE_LIMIT = 200_000


class Pool:
    def __init__(self) -> None:
        self.connections: list = []
        self.current: list[str | None] = []
        self.received = 0
        self.acked = 0
        self.fell_behind = 0
        self.latencies: list[float] = []
        self.readers: list[asyncio.Task] = []

    async def open(self, url: str, count: int) -> None:
        for start in range(0, count, 200):
            batch = await asyncio.gather(*[connect(url, origin="http://127.0.0.1", max_queue=None,
                                                   ping_interval=None) for _ in range(min(200, count - start))])
            self.connections.extend(batch)
        self.current = [None] * len(self.connections)
        self.readers = [asyncio.create_task(self.read(ws)) for ws in self.connections]

    async def read(self, ws) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "subscribe":
                self.acked += 1
            elif frame.get("type") == "unsubscribe" and frame["data"].get("code") == 3001:
                self.fell_behind += 1  # told it fell behind: a real client would recover from history
            elif frame.get("type") == "publication":
                self.received += 1
                latency = (time.time() - frame["data"]["sent_at"]) * 1000
                if len(self.latencies) < SAMPLE_LIMIT:
                    self.latencies.append(latency)
                elif random.random() < 0.1:
                    self.latencies[random.randrange(SAMPLE_LIMIT)] = latency

    async def subscribe(self, channels: list[str]) -> int:
        async def one(index: int, ws, channel: str) -> None:
            old = self.current[index]
            if old:
                await ws.send(json.dumps({"id": 1, "method": "unsubscribe", "params": {"channel": old}}))
            await ws.send(json.dumps({"id": 2, "method": "subscribe", "params": {"channel": channel}}))
            self.current[index] = channel

        self.acked = 0
        await asyncio.gather(*[one(i, ws, ch) for i, (ws, ch) in enumerate(zip(self.connections, channels,
                                                                               strict=True))])
        deadline = time.monotonic() + 120
        while self.acked < len(channels) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # counting starts only once every subscription is live
        self.received, self.fell_behind, self.latencies = 0, 0, []
        return self.acked


async def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    pool = Pool()
    await pool.open(url, count)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    say({"ready": len(pool.connections)})
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "subscribe":
            say({"subscribed": await pool.subscribe(command["channels"])})
        elif command["cmd"] == "report":
            say({"received": pool.received, "fell_behind": pool.fell_behind, "latencies_ms": pool.latencies})
        elif command["cmd"] == "quit":
            break
    for ws in pool.connections:
        await ws.close()


if __name__ == "__main__":
    uvloop.run(main())
