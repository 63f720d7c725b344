"""The Procfile's own web command (a real uvicorn), run as honcho runs it, for tests of how it is started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name!r} process in the Procfile")


class ProcfileWeb:
    """The Procfile's ``web`` line, run by a shell as honcho runs it, on a free port."""

    def __init__(self, redis_url: str, trusted_proxies: str, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "REDIS_URL": redis_url, "VF_WEB_PORT": str(self.port), "VF_LOG_LEVEL": "WARNING",
               "VF_TRUSTED_PROXIES": trusted_proxies,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(extra_env or {})}
        env.pop("FORWARDED_ALLOW_IPS", None)
        self.process = subprocess.Popen(["sh", "-c", procfile_command("web")], cwd=ROOT, env=env,
                                        start_new_session=True)

    def wait_ready(self) -> ProcfileWeb:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the web process exited during start"
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("the web process did not answer /health within 30 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
