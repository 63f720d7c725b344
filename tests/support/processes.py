"""What the tests that run the app as a real process (uvicorn, the Procfile's web line) share."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def wait_for_health(url: str, process: subprocess.Popen, what: str, seconds: float = 30) -> None:
    """Until ``url``/health answers 200; fails if ``process`` exits first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited during start"
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not answer /health within {seconds:g} s")
