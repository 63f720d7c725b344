"""The real ASGI app under uvicorn, in a subprocess, against the test session's Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


# What the Procfile runs: uvicorn's wsproto protocol plus the hub's raw-frame fan-out.
WS_PROTOCOL = "veloflux_site.realtime.wsserver:RawFrameWSProtocol"


class AsgiServer:
    def __init__(self, redis_url: str, ws: str = WS_PROTOCOL):
        self.ws = ws
        self.port = free_port()
        self.redis_url = redis_url
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> AsgiServer:
        env = {**os.environ, "REDIS_URL": self.redis_url, "VF_LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "veloflux_site.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--loop", "uvloop", "--http", "httptools", "--ws", self.ws,
             "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("uvicorn exited during start")
            try:
                if httpx.get(f"{self.http_url}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("uvicorn did not answer /health within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="session")
def asgi_server(redis_server):
    """The real ASGI app (uvicorn, uvloop, httptools, the Procfile's WebSocket protocol) for the whole session."""
    server = AsgiServer(redis_server.url).start()
    yield server
    server.stop()
