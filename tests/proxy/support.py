"""Proxy test helpers: a real ``runproxy`` subprocess, routing fragments written straight into Redis
(as the data-plane contract says the control plane does), and small HTTP clients over real sockets."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from tests.proxy.backends import free_port
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

ROOT = Path(__file__).resolve().parents[2]
_versions = itertools.count(int(time.time()) % 1_000_000 * 1000)


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _free_ports(count: int) -> int:
    """A port p such that p .. p + count - 1 are free (worker i's admin endpoint is admin-port + i)."""
    while True:
        port = free_port()
        try:
            for offset in range(1, count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + offset))
            return port
        except OSError:
            continue


class ProxyProcess:
    def __init__(self, redis_url: str, *extra: str, workers: int = 1, env: dict[str, str] | None = None):
        self.port = free_port()
        self.admin_port = _free_ports(workers)
        self.redis_url = redis_url
        self.workers = workers
        self.extra = extra
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = Path(f"/tmp/vf-proxy-test-{self.port}.log")

    def start(self) -> ProxyProcess:
        env = {**os.environ, "REDIS_URL": self.redis_url, "PYTHONUNBUFFERED": "1", **self.env}
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runproxy", "--host", "127.0.0.1", "--port", str(self.port),
             "--admin-port", str(self.admin_port), "--workers", str(self.workers), *self.extra],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"proxy exited: {self.log_path.read_text()[-2000:]}")
            try:
                self.status()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("proxy did not start")

    def status(self, worker: int = 0) -> dict:
        url = f"http://127.0.0.1:{self.admin_port + worker}/status"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=2) as response:
            return response.read().decode()

    def rss_kb(self) -> int:
        pids = [self.process.pid, *self.children()]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def wait_version(self, version: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.status(w)["routing_version"] == version for w in range(self.workers)):
                return
            time.sleep(0.01)
        raise AssertionError(f"proxy did not load routing version {version}: {self.status()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
                self.log.close()
                raise AssertionError("the proxy did not stop on SIGTERM within 15 s") from None
        self.log.close()


def backend(b, weight: int = 100, state: str = "active", enabled: bool = True, backend_id: str | None = None) -> dict:
    return {"id": backend_id or getattr(b, "backend_id", None) or uid("be"), "address": b.address,
            "weight": weight, "enabled": enabled, "state": state, "region": None,
            "health_check": {"type": "http", "method": "GET", "path": "/", "interval": 5.0, "timeout": 2.0,
                             "expected_status": [200], "rise": 2, "fall": 3}}


def fragment(tenant_id: str, routes: list[dict], pools: dict[str, dict], active: bool = True) -> dict:
    return {"tenant_id": tenant_id, "active": active, "config_version": 1, "routes": routes, "pools": pools}


def route(host: str, pool: str, prefix: str = "/", max_body: int | None = None) -> dict:
    return {"id": uid("rt"), "host": host, "path_prefix": prefix, "pool": pool, "max_body_bytes": max_body}


def pool(name: str, backends: list[dict], algorithm: str = "round_robin", sticky: bool = False) -> dict:
    return {"name": name, "algorithm": algorithm, "sticky_sessions": sticky, "backends": backends}


def publish(tenant_id: str, frag: dict, proxy: ProxyProcess | None = None, event: bool = True) -> int:
    """Write one tenant fragment and bump the version atomically (as the control plane does), then wake proxies."""
    client = get_redis()
    version = next(_versions)
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.routing_table(), tenant_id, json.dumps(frag))
    pipe.set(keys.routing_version(), version)
    pipe.execute()
    if event:
        client.publish(keys.events_channel("routing"),
                       json.dumps({"type": "routing.changed", "version": version, "tenant_id": tenant_id}))
    if proxy is not None:
        proxy.wait_version(version)
    return version


def simple_site(proxy: ProxyProcess, backends: list, algorithm: str = "round_robin", host: str | None = None,
                sticky: bool = False, weights: list[int] | None = None, states: list[str] | None = None,
                max_body: int | None = None) -> tuple[str, str, list[dict]]:
    """One tenant, one host, one pool over ``backends``; returns (tenant, host, backend dicts)."""
    tenant = uid("tn")
    host = host or f"{uid('site')}.test"
    specs = [backend(b, weight=(weights or [100] * len(backends))[i], state=(states or ["active"] * len(backends))[i])
             for i, b in enumerate(backends)]
    publish(tenant, fragment(tenant, [route(host, "web", max_body=max_body)],
                             {"web": pool("web", specs, algorithm, sticky)}), proxy)
    return tenant, host, specs


def get(proxy: ProxyProcess, host: str, path: str = "/", headers: dict | None = None, method: str = "GET",
        body: bytes | None = None, source: str | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def raw(proxy: ProxyProcess, data: bytes, timeout: float = 5.0, read_until_close: bool = True) -> bytes:
    """Send raw bytes and read everything until the proxy closes the connection (or the timeout)."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
        return b"".join(chunks)


def backend_name(body: bytes) -> str:
    return json.loads(body)["backend"]


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read one Content-Length-framed response from a raw socket: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return head, body
