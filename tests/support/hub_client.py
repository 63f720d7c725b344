"""A minimal hub client over a real WebSocket (the `websockets` library)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class HubError(Exception):
    def __init__(self, data: dict):
        super().__init__(data.get("message"))
        self.code = data.get("code")


class HubClient:
    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self._ids = itertools.count(1)
        self.pushes: list[dict] = []

    @classmethod
    async def open(cls, base_url: str, token: str | None = None, **options: Any) -> HubClient:
        """``options`` go to websockets' ``connect`` (e.g. ``max_size``, ``max_queue``, ``sock``, ``origin``:
        a browser's page origin by default, ``None`` for none, as a non-browser client)."""
        url = f"{base_url}/connection/websocket" + (f"?token={token}" if token else "")
        options.setdefault("origin", "http://127.0.0.1")
        return cls(await connect(url, **options))

    async def call(self, method: str, params: dict | None = None, timeout: float = 5.0) -> dict:
        request_id = next(self._ids)
        await self.ws.send(json.dumps({"id": request_id, "method": method, "params": params or {}}))
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if frame.get("id") == request_id:
                if frame["type"] == "error":
                    raise HubError(frame["data"])
                return frame["data"]
            self.pushes.append(frame)

    async def next_frame(self, kind: str, timeout: float = 5.0) -> dict:
        """The next whole frame of this type (pushes that came first are kept)."""
        for index, frame in enumerate(self.pushes):
            if frame["type"] == kind:
                return self.pushes.pop(index)
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if frame["type"] == kind:
                return frame
            self.pushes.append(frame)

    async def next_push(self, kind: str, timeout: float = 5.0) -> dict:
        return (await self.next_frame(kind, timeout))["data"]

    async def close(self) -> None:
        await self.ws.close()


async def connected(server, actor, **options: Any) -> HubClient:
    """A hub client of ``actor`` (its JWT in the URL) past the ``connect`` command."""
    client = await HubClient.open(server.ws_url, actor.token, **options)
    await client.call("connect")
    return client
