"""Centrifugo's official JavaScript SDK in a Node process (tests/support/node/sdk_driver.js), driven from a test."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "node"


class SdkError(Exception):
    def __init__(self, error: dict):
        super().__init__(error.get("message"))
        self.code = error.get("code")


def require_sdk() -> None:
    if not (NODE_DIR / "node_modules" / "centrifuge").is_dir():
        raise RuntimeError("the centrifuge SDK is not installed: bin/test installs it (npm ci in tests/support/node)")


class SdkClient:
    """One SDK client. ``call`` runs an operation and returns its result; ``event`` waits for an SDK event."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self._ids = itertools.count(1)
        self.events: list[dict] = []
        self._replies: dict[int, asyncio.Future] = {}
        self._arrived = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls) -> SdkClient:
        require_sdk()
        process = await asyncio.create_subprocess_exec(
            "node", str(NODE_DIR / "sdk_driver.js"), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024)
        return cls(process)

    async def _read(self) -> None:
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if "id" in message:
                future = self._replies.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                self.events.append(message)
                self._arrived.set()

    async def call(self, op: str, timeout: float = 10.0, **params: Any) -> Any:
        request_id = next(self._ids)
        future = self._replies[request_id] = asyncio.get_running_loop().create_future()
        self.process.stdin.write((json.dumps({"id": request_id, "op": op, **params}) + "\n").encode())
        await self.process.stdin.drain()
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise SdkError(reply["error"])
        return reply["ok"]

    async def event(self, name: str, timeout: float = 10.0, **match: Any) -> dict:
        """The first not yet taken event ``name`` whose fields equal ``match`` (waits for it)."""
        async def wait() -> dict:
            while True:
                for index, event in enumerate(self.events):
                    if event["event"] == name and all(event.get(k) == v for k, v in match.items()):
                        return self.events.pop(index)
                self._arrived.clear()
                await self._arrived.wait()
        return await asyncio.wait_for(wait(), timeout)

    def seen(self, name: str, **match: Any) -> list[dict]:
        return [e for e in self.events if e["event"] == name and all(e.get(k) == v for k, v in match.items())]

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.stdin.write(b'{"op": "quit"}\n')
            await self.process.stdin.drain()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()
