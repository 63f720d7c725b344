"""A bare Centrifugo-protocol (JSON) client over a real WebSocket, to check the frames themselves."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class ReplyError(Exception):
    def __init__(self, error: dict):
        super().__init__(error.get("message"))
        self.code = error.get("code")
        self.temporary = error.get("temporary", False)


class CentrifugoClient:
    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self._ids = itertools.count(1)
        self.frames: list[dict] = []  # pushes and pings not taken yet

    @classmethod
    async def open(cls, base_url: str, **options: Any) -> CentrifugoClient:
        return cls(await connect(f"{base_url}/connection/websocket", **options))

    async def send(self, *commands: dict) -> None:
        """Commands in one frame, newline-separated, as the SDKs batch them."""
        await self.ws.send("\n".join(json.dumps(c) for c in commands))

    async def _next(self, timeout: float) -> dict:
        if not hasattr(self, "_pending"):
            self._pending: list[dict] = []
        while not self._pending:
            text = await asyncio.wait_for(self.ws.recv(), timeout)
            self._pending.extend(json.loads(line) for line in text.strip().split("\n"))
        return self._pending.pop(0)

    async def call(self, method: str, params: dict | None = None, timeout: float = 5.0) -> dict:
        request_id = next(self._ids)
        await self.send({"id": request_id, method: params or {}})
        return await self.reply(request_id, method, timeout)

    async def reply(self, request_id: int, method: str, timeout: float = 5.0) -> dict:
        while True:
            frame = await self._next(timeout)
            if frame.get("id") == request_id:
                if "error" in frame:
                    raise ReplyError(frame["error"])
                return frame[method]
            self.frames.append(frame)

    async def push(self, kind: str, timeout: float = 5.0) -> dict:
        """The next push of this kind (``pub``, ``join``, ``unsubscribe``...), with its channel."""
        for index, frame in enumerate(self.frames):
            if kind in frame.get("push", {}):
                return self.frames.pop(index)["push"]
        while True:
            frame = await self._next(timeout)
            if kind in frame.get("push", {}):
                return frame["push"]
            self.frames.append(frame)

    async def close(self) -> None:
        await self.ws.close()
