"""The worker's admin endpoint: ``GET /status`` (JSON) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from balancer.proxy.codec import clock
from balancer.proxy.metrics import BUCKETS_MS, FIELDS, N_FIELDS, add_all
from balancer.proxy.tiny_http import TinyHttpProtocol

if TYPE_CHECKING:
    from balancer.proxy.app import ProxyApp


def status(app: ProxyApp) -> dict:
    now = clock()
    snapshot = app.snapshot
    return {
        "node": app.node_id, "worker": app.worker, "pid": os.getpid(),
        "routing_version": snapshot.version, "tenants": snapshot.tenants, "reloads": app.reloads,
        "redis_ok": app.redis_ok, "redis_error": app.redis_error or None,
        "serving_stale_snapshot": not app.redis_ok,
        "last_load_age_s": round(time.time() - app.loaded_at, 3) if app.loaded_at else None,
        "client_connections": len(app.connections), "upstream_idle_connections": app.upstreams.idle_count(),
        "metrics_flushes": app.metrics.flushes, "metrics_flush_errors": app.metrics.flush_errors,
        "backends": {
            backend_id: {"inflight": st.inflight, "ewma_ms": round(st.ewma, 3), "down": st.down,
                         "consecutive_failures": st.fails, "ejected": st.ejected_until > now,
                         "ejected_for_s": round(max(0.0, st.ejected_until - now), 3)}
            for backend_id, st in app.registry.states.items()},
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(app: ProxyApp) -> str:
    series: dict[tuple, list] = {}
    for source in (app.metrics.totals, app.metrics.unacknowledged()):
        add_all(series, source)
    rows = [(f'tenant="{_label(tenant)}",route="{_label(route)}",pool="{_label(pool)}",backend="{_label(backend)}"',
             entry) for (tenant, route, pool, backend), entry in sorted(series.items())]
    lines = []
    for i, name in enumerate(FIELDS):
        metric = f"veloflux_proxy_{name}_total"
        lines.append(f"# TYPE {metric} counter")
        for labels, entry in rows:
            lines.append(f"{metric}{{{labels}}} {entry[i]}")
    lines.append("# TYPE veloflux_proxy_latency_ms histogram")
    for labels, entry in rows:
        cumulative = 0
        for b, bound in enumerate((*BUCKETS_MS, "+Inf")):
            cumulative += entry[N_FIELDS + b]
            lines.append(f'veloflux_proxy_latency_ms_bucket{{{labels},le="{bound}"}} {cumulative}')
        lines.append(f"veloflux_proxy_latency_ms_sum{{{labels}}} {entry[8]:.3f}")
        lines.append(f"veloflux_proxy_latency_ms_count{{{labels}}} {entry[0]}")
    lines.append("# TYPE veloflux_proxy_client_connections gauge")
    lines.append(f"veloflux_proxy_client_connections {len(app.connections)}")
    lines.append("# TYPE veloflux_proxy_routing_version gauge")
    lines.append(f"veloflux_proxy_routing_version {app.snapshot.version}")
    lines.append("# TYPE veloflux_proxy_redis_up gauge")
    lines.append(f"veloflux_proxy_redis_up {int(app.redis_ok)}")
    return "\n".join(lines) + "\n"


class AdminProtocol(TinyHttpProtocol):
    def __init__(self, app: ProxyApp):
        super().__init__()
        self.app = app

    def answer(self, url: bytes) -> tuple[bytes, bytes, bytes]:
        path = url.split(b"?", 1)[0]
        if path == b"/status":
            return b"200 OK", b"Content-Type: application/json\r\n", json.dumps(status(self.app)).encode()
        if path == b"/metrics":
            return b"200 OK", b"Content-Type: text/plain; version=0.0.4\r\n", prometheus(self.app).encode()
        return b"404 Not Found", b"Content-Type: application/json\r\n", b'{"error": "not found"}'
