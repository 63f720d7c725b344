"""Real subprocesses for the health tests (sweepers, celery worker and beat), bounded in time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def process_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, "VF_ENV": "test",
                "DJANGO_SETTINGS_MODULE": "veloflux_site.settings", "PYTHONUNBUFFERED": "1", **extra})
    return env


class Process:
    """A child process whose output goes to a file; ``kill`` and ``stop`` act on this child only."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


def sweeper(redis_url: str, log: Path, worker_id: str, duration: float = 30, **extra: str) -> Process:
    return Process([sys.executable, "manage.py", "runhealthchecks", "--worker-id", worker_id,
                    "--duration", str(duration)], process_env(redis_url, **extra), log)


def celery(redis_url: str, log: Path, *args: str, **extra: str) -> Process:
    return Process([sys.executable, "-m", "celery", "-A", "veloflux_site", *args, "-l", "info"],
                   process_env(redis_url, **extra), log)
