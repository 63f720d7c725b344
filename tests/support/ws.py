"""Drive an ASGI WebSocket app in-process, like channels.testing.WebsocketCommunicator.

channels.testing cannot be imported here: its package imports the live-server test case,
which needs daphne (we serve with uvicorn). asgiref's ApplicationCommunicator is what
WebsocketCommunicator is built on, so this is the same thing, minus daphne.
"""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

from asgiref.testing import ApplicationCommunicator


class WebsocketClient(ApplicationCommunicator):
    def __init__(self, application, path: str, headers: list[tuple[bytes, bytes]] | None = None):
        parts = urlsplit(path)
        super().__init__(application, {
            "type": "websocket",
            "path": unquote(parts.path),
            "raw_path": parts.path.encode("latin-1"),
            "query_string": parts.query.encode("latin-1"),
            "headers": headers or [],
            "subprotocols": [],
        })

    async def connect(self, timeout: float = 5) -> bool:
        await self.send_input({"type": "websocket.connect"})
        answer = await self.receive_output(timeout)
        return answer["type"] == "websocket.accept"

    async def receive_json(self, timeout: float = 5):
        message = await self.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def disconnect(self, code: int = 1000, timeout: float = 5) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)
