"""A TCP link to a real Redis that loses exchanges the way a network does, for retry and idempotency tests.

Everything is relayed both ways except the client's writes that contain ``trigger`` (a command name):
- ``drop_reply``: the command reaches Redis, which runs it; its reply is thrown away and the client's
  connection closed, so the client cannot know whether the command ran;
- ``swallow``: the command never reaches Redis and no reply comes; the connection stays open until the
  client gives up.
Runs on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib


class LossyLink:
    def __init__(self, redis_port: int, trigger: bytes, mode: str = "drop_reply"):
        if mode not in ("drop_reply", "swallow"):
            raise ValueError(f"unknown mode {mode!r}")
        self.redis_port = redis_port
        self.trigger = trigger
        self.mode = mode
        self.lost = 0  # exchanges lost so far
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> LossyLink:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def close(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.redis_port)
        replies = asyncio.create_task(self._copy(redis_r, client_w))
        try:
            while data := await client_r.read(65536):
                if self.trigger in data:
                    self.lost += 1
                    replies.cancel()
                    if self.mode == "swallow":
                        await asyncio.Event().wait()  # until the client disconnects and close() cancels us
                    redis_w.write(data)
                    await redis_r.read(65536)  # Redis has run it and answered; the answer goes nowhere
                    return
                redis_w.write(data)
                await redis_w.drain()
        finally:
            replies.cancel()
            for writer in (client_w, redis_w):
                with contextlib.suppress(OSError):
                    writer.close()

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
