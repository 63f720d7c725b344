"""A steady keep-alive GET load from a few client threads, recording every outcome."""

from __future__ import annotations

import http.client
import threading
from collections import Counter


class Load:
    def __init__(self, port: int, host: str, clients: int = 4, path: str = "/"):
        self.port, self.host, self.path = port, host, path
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(15)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop_event.is_set():
            try:
                conn.request("GET", self.path, headers={"Host": self.host})
                response = conn.getresponse()
                response.read()
                with self.lock:
                    self.statuses[response.status] += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()
