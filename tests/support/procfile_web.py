"""The Procfile's own web command (a real uvicorn), run as honcho runs it, for tests of how it is started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.processes import ROOT, wait_for_health
from tests.support.redis_server import free_port


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
        wait_for_health(self.url, self.process, "the web process")
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
