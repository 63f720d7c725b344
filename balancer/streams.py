"""The balancer's streams (/api/ws/backends, /metrics, /health) and what they send: read from the
routing table, the health overlay and the proxies' metrics. Every number is measured somewhere;
an empty platform reads as zeros and empty lists. Registered in settings.REALTIME_STREAMS."""

from __future__ import annotations

import json
import time

from tenants import monitoring
from veloflux_site.realtime.snapshots import alive
from veloflux_site.realtime.streams import StreamConsumer
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

TRAFFIC_FIELDS = monitoring.TRAFFIC_FIELDS


def _fragments(tenant_ids: list[str]) -> dict[str, dict]:
    if not tenant_ids:
        return {}
    raw = get_redis().hmget(keys.routing_table(), tenant_ids)
    return {tid: json.loads(value) for tid, value in zip(tenant_ids, raw, strict=True) if value}


def backends(tenant_ids: list[str]) -> dict:
    fragments = _fragments(tenant_ids)
    rows = []
    for tenant_id, fragment in fragments.items():
        for pool in fragment.get("pools", {}).values():
            for backend in pool.get("backends", []):
                rows.append({"tenant_id": tenant_id, "pool": pool["name"], "id": backend["id"],
                             "address": backend["address"], "weight": backend.get("weight"),
                             "enabled": backend.get("enabled"), "state": backend.get("state")})
    client = get_redis()
    health = client.hmget(keys.routing_health(), [row["id"] for row in rows]) if rows else []
    pipe = client.pipeline(transaction=False)
    for row in rows:
        pipe.hmget(keys.health_backend(row["id"]), "latency_ms", "last_checked_at", "last_transition_at")
    details = pipe.execute() if rows else []
    for row, state, (latency, checked, transition) in zip(rows, health, details, strict=True):
        row["healthy"] = {"up": True, "down": False}.get(state or "")
        row["health_latency_ms"] = float(latency) if latency else None
        row["last_checked_at"] = float(checked) if checked else None
        row["last_transition_at"] = float(transition) if transition else None
    return {"backends": rows, "total": len(rows),
            "healthy": sum(1 for r in rows if r["healthy"] is True),
            "unhealthy": sum(1 for r in rows if r["healthy"] is False),
            "unknown": sum(1 for r in rows if r["healthy"] is None)}


def traffic_totals(tenant_ids: list[str]) -> dict[str, float]:
    """Counters summed over the tenants (monotonic: rates come from differences)."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    for tenant_id in tenant_ids:
        pipe.hgetall(keys.tenant_metrics(tenant_id, "total"))
    totals = dict.fromkeys(TRAFFIC_FIELDS, 0.0)
    for raw in pipe.execute() if tenant_ids else []:
        for name in TRAFFIC_FIELDS:
            totals[name] += float(raw.get(name, 0) or 0)
    return totals


def metrics(tenant_ids: list[str], previous: dict | None, now: float) -> tuple[dict, dict]:
    """(message, state for the next call): totals and per-second rates since the last call."""
    totals = traffic_totals(tenant_ids)
    rates: dict[str, float | None] = {}
    if previous:
        elapsed = max(now - previous["at"], 1e-6)
        for name in TRAFFIC_FIELDS:
            rates[name + "_per_second"] = round(max(0.0, totals[name] - previous["totals"][name]) / elapsed, 3)
        new_requests = totals["requests"] - previous["totals"]["requests"]
        latency = totals["latency_ms_sum"] - previous["totals"]["latency_ms_sum"]
        rates["avg_latency_ms"] = round(latency / new_requests, 3) if new_requests > 0 else None
        rates.pop("latency_ms_sum_per_second", None)
    message = {"tenants": len(tenant_ids), "totals": {k: int(v) for k, v in totals.items()},
               "rates": rates, "interval_seconds": round(now - previous["at"], 3) if previous else None}
    return message, {"totals": totals, "at": now}


def health(tenant_ids: list[str]) -> dict:
    summary = backends(tenant_ids)
    client = get_redis()
    active_alerts = sum(len(monitoring.alerts(tid, "active")) for tid in tenant_ids)
    pools_without_healthy = []
    by_pool: dict[tuple[str, str], list] = {}
    for row in summary["backends"]:
        by_pool.setdefault((row["tenant_id"], row["pool"]), []).append(row["healthy"])
    for (tenant_id, pool), states in by_pool.items():
        if states and all(state is False for state in states):
            pools_without_healthy.append({"tenant_id": tenant_id, "pool": pool})
    return {"redis": bool(client.ping()), "backends": {k: summary[k] for k in ("total", "healthy", "unhealthy",
                                                                                 "unknown")},
            "pools_without_healthy_backend": pools_without_healthy, "active_alerts": active_alerts,
            "proxy_nodes_alive": alive("proxy"), "workers_alive": alive("worker")}


class BackendsStream(StreamConsumer):
    name, interval, event_topics = "backends", 5.0, ("routing", "health")

    def build(self) -> dict:
        return backends(self.tenant_ids)


class MetricsStream(StreamConsumer):
    name, interval, event_topics = "metrics", 2.0, ()

    def build(self) -> dict:
        data, self.state = metrics(self.tenant_ids, self.state, time.time())
        return data


class HealthStream(StreamConsumer):
    name, interval, event_topics = "health", 15.0, ("health", "alerts")

    def build(self) -> dict:
        return health(self.tenant_ids)
