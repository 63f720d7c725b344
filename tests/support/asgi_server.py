"""The real ASGI app under uvicorn, in a subprocess, against the test session's Redis."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, wait_for_health
from tests.support.redis_server import free_port

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
        wait_for_health(self.http_url, self.process, "uvicorn")
        return self

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
