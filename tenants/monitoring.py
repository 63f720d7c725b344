"""Per-tenant monitoring read from what the platform records: traffic counters
the proxy flushes, usage per billing period, alerts, the audit stream.
Nothing here invents a number: an empty store reads as zeros and empty lists."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from tenants import audit
from tenants.models import Tenant
from tenants.plans import PLANS
from tenants.services import tenant_counts
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

TRAFFIC_FIELDS = ("requests", "responses_1xx", "responses_2xx", "responses_3xx", "responses_4xx",
                  "responses_5xx", "bytes_in", "bytes_out", "latency_ms_sum")
USAGE_FIELDS = ("requests", "bytes_in", "bytes_out")


def current_period(now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m")


def _ints(raw: dict, fields: tuple[str, ...]) -> dict[str, int]:
    return {name: int(float(raw.get(name, 0) or 0)) for name in fields}


def traffic(tenant_id: str, minutes: int = 15) -> dict:
    client = get_redis()
    now_minute = int(time.time() // 60)
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.tenant_metrics(tenant_id, "total"))
    for minute in range(now_minute - minutes + 1, now_minute + 1):
        pipe.hgetall(keys.tenant_metrics(tenant_id, f"m:{minute}"))
    total_raw, *buckets = pipe.execute()
    totals = _ints(total_raw, TRAFFIC_FIELDS)
    totals["avg_latency_ms"] = round(totals["latency_ms_sum"] / totals["requests"], 3) if totals["requests"] else None
    series = []
    for offset, raw in enumerate(buckets):
        minute = now_minute - minutes + 1 + offset
        series.append({"minute": datetime.fromtimestamp(minute * 60, UTC).isoformat().replace("+00:00", "Z"),
                       **_ints(raw, TRAFFIC_FIELDS)})
    return {"tenant_id": tenant_id, "totals": totals, "per_minute": series}


def usage(tenant: Tenant) -> dict:
    period = current_period()
    raw = get_redis().hgetall(keys.tenant_usage(tenant.id, period))
    used = _ints(raw, USAGE_FIELDS)
    limits = tenant.limits
    return {
        "tenant_id": tenant.id,
        "period": period,
        **used,
        "resources": tenant_counts(tenant.id),
        "limits": limits,
        "request_quota_used_percent": round(100 * used["requests"] / limits["requests_per_month"], 4),
    }


def alerts(tenant_id: str, state: str | None = None) -> list[dict]:
    raw = get_redis().hgetall(keys.tenant_alerts(tenant_id))
    items = [json.loads(value) for value in raw.values()]
    if state:
        items = [item for item in items if item.get("state") == state]
    return sorted(items, key=lambda item: item.get("started_at", ""), reverse=True)


def status(tenant: Tenant) -> dict:
    counts = tenant_counts(tenant.id)
    recent, _ = audit.query(tenant.id, limit=1)
    return {
        "tenant_id": tenant.id,
        "name": tenant.name,
        "active": tenant.active,
        "plan": tenant.plan,
        "resources": counts,
        "active_alerts": len(alerts(tenant.id, "active")),
        "last_change_at": recent[0]["time"] if recent else None,
    }


def billing(tenant: Tenant) -> dict:
    plan = PLANS[tenant.plan]
    return {
        "tenant_id": tenant.id,
        "plan": plan.to_dict(),
        "usage": usage(tenant),
        "currency": plan.currency,
        "current_monthly_price": plan.monthly_price,
    }


def access_log(tenant_id: str, limit: int, before_id: str | None = None) -> tuple[list[dict], str | None]:
    """Newest first; returns (entries, cursor for the next page or None)."""
    high = f"({before_id}" if before_id else "+"
    entries = get_redis().xrevrange(keys.tenant_access_log(tenant_id), max=high, min="-", count=limit + 1)
    page = [{"id": stream_id, **fields} for stream_id, fields in entries[:limit]]
    return page, (page[-1]["id"] if len(entries) > limit else None)
