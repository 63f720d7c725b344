"""Helpers for health tests: routing fragments written straight into Redis (as the contract
says the control plane does) and real little HTTP backends that go up and down."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.redis_server import free_port
from veloflux_site.storage import keys


def health_check(**overrides) -> dict:
    check = {"type": "http", "method": "GET", "path": "/health", "interval": 1.0, "timeout": 1.0,
             "expected_status": [200], "rise": 2, "fall": 2}
    check.update(overrides)
    return check


def backend(backend_id: str, address: str, **check) -> dict:
    return {"id": backend_id, "address": address, "weight": 100, "enabled": True, "state": "active",
            "region": None, "health_check": health_check(**check)}


def put_fragment(client, tenant_id: str, pools: dict[str, list[dict]]) -> int:
    """Write one tenant's fragment and bump the version in one MULTI, then publish, like the control plane."""
    fragment = {"tenant_id": tenant_id, "active": True, "config_version": 1,
                "routes": [{"id": f"rt_{name}", "host": f"{name}.example.test", "path_prefix": "/", "pool": name,
                            "max_body_bytes": None} for name in pools],
                "pools": {name: {"name": name, "algorithm": "round_robin", "sticky_sessions": False,
                                 "backends": backends} for name, backends in pools.items()}}
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.routing_table(), tenant_id, json.dumps(fragment))
    pipe.incr(keys.routing_version())
    _, version = pipe.execute()
    client.publish(keys.events_channel("routing"),
                   json.dumps({"type": "routing.changed", "version": version, "tenant_id": tenant_id}))
    return version


def delete_fragment(client, tenant_id: str) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.hdel(keys.routing_table(), tenant_id)
    pipe.incr(keys.routing_version())
    pipe.execute()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class Backend:
    """A real HTTP backend on its own port: ``status`` is what /health answers; ``stop()`` closes the
    listener (connection refused), ``start()`` opens it again on the same port. Probes are recorded."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.port = free_port()
        self.status = status
        self.delay = delay
        self.checks: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Backend:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.checks.append(self.headers.get("X-VeloFlux-Check", ""))
                if owner.delay:
                    time.sleep(owner.delay)
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
