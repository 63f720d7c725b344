"""GET /api/status, /api/metrics, /api/analytics: read from the keys the proxies and the health
checker write (docs/data-plane-contract.md). An empty store reads as zeros, never as made-up numbers."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from balancer.store import load_snapshot, read_health
from tenants.monitoring import TRAFFIC_FIELDS, traffic
from tenants.store import TenantStore
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

PROXY_ONLINE_SECONDS = 10
BACKEND_EXTRA_FIELDS = ("errors",)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(raw: str | None) -> float:
    try:
        return float(raw or 0)
    except ValueError:
        return 0.0


def _counters(raw: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = _number(raw.get(name))
        out[name] = value if name == "latency_ms_sum" else int(value)
    requests = out.get("requests", 0)
    out["avg_latency_ms"] = round(out.get("latency_ms_sum", 0) / requests, 3) if requests else None
    return out


def proxies_online(client=None) -> list[dict[str, Any]]:
    client = client or get_redis()
    cutoff = time.time() - PROXY_ONLINE_SECONDS
    nodes = client.zrangebyscore(keys.heartbeat("proxy"), cutoff, "+inf", withscores=True)
    return [{"node": node, "last_seen": datetime.fromtimestamp(score, UTC).isoformat().replace("+00:00", "Z")}
            for node, score in nodes]


def status(tenant_id: str) -> dict[str, Any]:
    client = get_redis()
    snapshot = load_snapshot(tenant_id, client)
    tenant = TenantStore(client).get(tenant_id)
    health = read_health(list(snapshot.backends), client)
    backends = list(snapshot.backends.values())
    down = [b for b in backends if health.get(b.id) is False]
    serving = [b for b in backends if b.enabled and b.state != "disabled" and health.get(b.id) is not False]
    pools_without_backend = sorted(name for name in snapshot.pools
                                   if not any(b.pool == name for b in serving))
    problems = bool(down) or bool(pools_without_backend and snapshot.routes)
    return {
        "status": "degraded" if problems else "ok",
        "tenant_id": tenant_id,
        "active": tenant.active,
        "config_version": snapshot.config_version,
        "routing_version": snapshot.routing_version,
        "pools": len(snapshot.pools),
        "routes": len(snapshot.routes),
        "backends": {
            "total": len(backends),
            "healthy": sum(1 for b in backends if health.get(b.id) is True),
            "unhealthy": len(down),
            "unknown": sum(1 for b in backends if health.get(b.id) is None),
            "enabled": sum(1 for b in backends if b.enabled),
            "active": sum(1 for b in backends if b.state == "active"),
            "draining": sum(1 for b in backends if b.state == "draining"),
            "disabled": sum(1 for b in backends if b.state == "disabled" or not b.enabled),
        },
        "pools_without_serving_backend": pools_without_backend,
        "proxies": proxies_online(client),
        "timestamp": _now_iso(),
    }


def metrics(tenant_id: str) -> dict[str, Any]:
    client = get_redis()
    snapshot = load_snapshot(tenant_id, client)
    backends = sorted(snapshot.backends.values(), key=lambda b: (b.pool, b.address))
    health = read_health([b.id for b in backends], client)
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.tenant_metrics_total(tenant_id))
    for backend in backends:
        pipe.hgetall(keys.backend_metrics(tenant_id, backend.id))
    total_raw, *per_backend = pipe.execute()
    rows = []
    for backend, raw in zip(backends, per_backend, strict=True):
        histogram = {name: int(_number(value)) for name, value in sorted(raw.items()) if name.startswith("le_")}
        rows.append({"id": backend.id, "address": backend.address, "pool": backend.pool,
                     "healthy": health.get(backend.id),
                     **_counters(raw, (*TRAFFIC_FIELDS, *BACKEND_EXTRA_FIELDS)), "latency_histogram": histogram})
    return {"tenant_id": tenant_id, "totals": _counters(total_raw, TRAFFIC_FIELDS), "backends": rows,
            "timestamp": _now_iso()}


def analytics(tenant_id: str, minutes: int) -> dict[str, Any]:
    """Aggregates over the last ``minutes`` per-minute buckets the proxies flush."""
    window = traffic(tenant_id, minutes)
    series = window["per_minute"]
    totals = {name: sum(point[name] for point in series) for name in TRAFFIC_FIELDS}
    requests = totals["requests"]
    errors = totals["responses_5xx"]
    busiest = max(series, key=lambda point: point["requests"]) if series else None
    return {
        "tenant_id": tenant_id,
        "window_minutes": minutes,
        "totals": totals,
        "requests_per_second": round(requests / (minutes * 60), 4),
        "error_rate": round(errors / requests, 6) if requests else 0.0,
        "client_error_rate": round(totals["responses_4xx"] / requests, 6) if requests else 0.0,
        "avg_latency_ms": round(totals["latency_ms_sum"] / requests, 3) if requests else None,
        "peak_minute": busiest["minute"] if busiest and busiest["requests"] else None,
        "series": series,
        "all_time": window["totals"],
        "timestamp": _now_iso(),
    }
