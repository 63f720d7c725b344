"""A hub connection's outgoing frames, in one order, through one of two paths.

- :class:`RawOutbox` (uvicorn with ``RawFrameWSProtocol``): each frame is written to the
  connection's transport at once, inside the caller's loop step. A publication's frame is
  built once per process and the same bytes go to every local subscriber.
- :class:`QueuedOutbox` (any other ASGI server, the in-process test communicator): frames
  queue for one writer task per connection that sends them through ASGI.

Either way every frame of a connection (replies, publications, notices) goes through its
outbox, so the client sees them in the order they were pushed. ``backlog()`` is what the
client has not taken yet, in bytes; the hub's fell-behind rule is applied to it.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from veloflux_site.realtime.wsserver import EXTENSION, RawWebSocket, text_frame

HIGH_WATER_BYTES = 64 * 1024  # a reply waits (backpressure on a client's commands) while the backlog is above this


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(kind: str, data, request_id=None, **extra) -> str:
    frame = {"type": kind, "data": data, "timestamp": now_iso(), **extra}
    if request_id is not None:
        frame["id"] = request_id
    return json.dumps(frame, separators=(",", ":"))


def publication_frame(channel: str, message: dict) -> tuple[str, bytes]:
    """A publication's text and WebSocket frame, built once per process however many subscribers get it
    (the broker hands every local subscriber the same message dict)."""
    cached = message.get("_frame")
    if cached is None:
        text = json.dumps({"type": "publication", "data": message["data"], "timestamp": now_iso(), "channel": channel,
                           "offset": message["offset"], "epoch": message["epoch"]}, separators=(",", ":"))
        cached = message["_frame"] = (text, text_frame(text.encode()))
    return cached


class Outbox(Protocol):
    def push(self, text: str, frame: bytes | None = None) -> None: ...

    def backlog(self) -> int: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class RawOutbox:
    __slots__ = ("_raw",)

    def __init__(self, raw: RawWebSocket):
        self._raw = raw

    def push(self, text: str, frame: bytes | None = None) -> None:
        # False (closed) needs no handling: the connection's disconnect is on its way.
        self._raw.write_frame(frame if frame is not None else text_frame(text.encode()))

    def backlog(self) -> int:
        return self._raw.buffered()

    async def drain(self) -> None:
        await self._raw.drain()

    def close(self) -> None:
        pass


class QueuedOutbox:
    def __init__(self, send: Callable[..., Awaitable[None]]):
        self._send = send
        self._frames: deque[str] = deque()
        self._bytes = 0  # json.dumps escapes non-ASCII, so characters are bytes
        self._waiting = asyncio.Event()
        self._roomy = asyncio.Event()
        self._roomy.set()
        self._writer = asyncio.create_task(self._write_forever())

    def push(self, text: str, frame: bytes | None = None) -> None:
        self._frames.append(text)
        self._bytes += len(text)
        if self._bytes > HIGH_WATER_BYTES:
            self._roomy.clear()
        self._waiting.set()

    def backlog(self) -> int:
        return self._bytes

    async def drain(self) -> None:
        await self._roomy.wait()

    def close(self) -> None:
        self._writer.cancel()
        self._roomy.set()

    async def _write_forever(self) -> None:
        try:
            while True:
                await self._waiting.wait()
                self._waiting.clear()
                while self._frames:
                    text = self._frames[0]
                    await self._send(text_data=text)
                    self._frames.popleft()
                    self._bytes -= len(text)
                    if self._bytes <= HIGH_WATER_BYTES:
                        self._roomy.set()
        except OSError:  # the client went away (uvicorn's ClientDisconnected); disconnect() follows
            self._roomy.set()


def outbox_for(scope: dict, send: Callable[..., Awaitable[None]]) -> Outbox:
    raw = (scope.get("extensions") or {}).get(EXTENSION)
    return RawOutbox(raw) if raw is not None else QueuedOutbox(send)
