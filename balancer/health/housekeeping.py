"""Housekeeping: metric roll-ups, stream and alert trimming, expired auth state, stale heartbeats.

Every function is idempotent: a roll-up recomputes its bucket from the finer buckets and
replaces it, a trim only removes what is over its bound, so running twice changes nothing.

Metric buckets (per tenant, ``keys.tenant_metrics(tenant, ...)``):
- ``s:<epoch second>``: 1 s buckets, if a writer keeps them (retention ``SECOND_RETENTION``);
- ``m:<epoch minute>``: 1 min buckets, written by the proxies (48 h) and completed here from ``s:``;
- ``h:<epoch hour>``: 1 h buckets rolled up here from ``m:`` (retention ``HOUR_RETENTION``).
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import redis
from django.conf import settings

from veloflux_site.storage import keys

SECOND_RETENTION = 15 * 60
MINUTE_RETENTION = 48 * 3600
HOUR_RETENTION = 90 * 86400
RESOLVED_ALERT_RETENTION = 7 * 86400
HEARTBEAT_RETENTION = 86400
AUTH_KEY_PATTERNS = ("jwt:refresh:*", "jwt:family:*", "jwt:deny:*", "session:*")


def _tenants(client: redis.Redis) -> list[str]:
    return sorted(set(client.hkeys(keys.routing_table())) | set(client.zrange(keys.tenant_index(), 0, -1)))


def _sum_buckets(client: redis.Redis, names: list[str]) -> dict[str, float]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    total: dict[str, float] = {}
    for bucket in pipe.execute():
        for field, value in bucket.items():
            total[field] = total.get(field, 0.0) + float(value or 0)
    return total


def _replace_bucket(client: redis.Redis, name: str, values: dict[str, float], ttl: int) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(name)
    pipe.hset(name, mapping={k: (int(v) if float(v).is_integer() else v) for k, v in values.items()})
    pipe.expire(name, ttl)
    pipe.execute()


def rollup_metrics(client: redis.Redis, now: float | None = None, tenant_ids: list[str] | None = None) -> dict:
    """Roll 1 s buckets into the last complete minutes (when present) and minutes into the current
    and previous hour. Buckets with no finer data are left alone."""
    moment = time.time() if now is None else now
    minute, hour = int(moment // 60), int(moment // 3600)
    counts = {"minutes": 0, "hours": 0}
    for tenant_id in tenant_ids if tenant_ids is not None else _tenants(client):
        for m in (minute - 2, minute - 1):
            seconds = [keys.tenant_metrics(tenant_id, f"s:{s}") for s in range(m * 60, m * 60 + 60)]
            if sum(client.exists(*seconds[i:i + 20]) for i in range(0, 60, 20)):
                _replace_bucket(client, keys.tenant_metrics(tenant_id, f"m:{m}"), _sum_buckets(client, seconds),
                                MINUTE_RETENTION)
                counts["minutes"] += 1
        for h in (hour - 1, hour):
            minutes = [keys.tenant_metrics(tenant_id, f"m:{m}") for m in range(h * 60, h * 60 + 60)]
            total = _sum_buckets(client, minutes)
            if total:
                _replace_bucket(client, keys.tenant_metrics(tenant_id, f"h:{h}"), total, HOUR_RETENTION)
                counts["hours"] += 1
    return counts


def trim_streams(client: redis.Redis, now: float | None = None) -> dict:
    """Bound the audit and access-log streams, drop resolved alerts past retention, prune dead heartbeats."""
    moment = time.time() if now is None else now
    audit_max = int(getattr(settings, "AUDIT_STREAM_MAXLEN", 100_000))
    access_max = settings.ACCESS_LOG_MAXLEN
    trimmed = {"audit": 0, "access_log": 0, "alerts": 0, "heartbeats": 0}
    for tenant_id in _tenants(client):
        trimmed["audit"] += client.xtrim(keys.audit_stream(tenant_id), maxlen=audit_max, approximate=True)
        trimmed["access_log"] += client.xtrim(keys.tenant_access_log(tenant_id), maxlen=access_max,
                                              approximate=True)
        trimmed["alerts"] += _drop_old_resolved_alerts(client, tenant_id, moment)
    for kind in ("worker", "proxy"):
        trimmed["heartbeats"] += client.zremrangebyscore(keys.heartbeat(kind), "-inf", moment - HEARTBEAT_RETENTION)
    return trimmed


def _drop_old_resolved_alerts(client: redis.Redis, tenant_id: str, now: float) -> int:
    old = []
    for field, raw in client.hgetall(keys.tenant_alerts(tenant_id)).items():
        alert = json.loads(raw)
        resolved_at = alert.get("resolved_at")
        if alert.get("state") != "resolved" or not resolved_at:
            continue
        if datetime.fromisoformat(resolved_at.replace("Z", "+00:00")).timestamp() < now - RESOLVED_ALERT_RETENTION:
            old.append(field)
    return client.hdel(keys.tenant_alerts(tenant_id), *old) if old else 0


def clean_expired_auth_state(client: redis.Redis) -> dict:
    """Tokens and sessions expire through Redis TTLs; this is the safety net for any record that lost its
    TTL (a restore from a dump, a manual edit): it gets the longest lifetime its kind may have."""
    fixed = 0
    ttl = int(max(getattr(settings, "JWT_REFRESH_TTL", 14 * 86400), getattr(settings, "SESSION_COOKIE_AGE", 0)))
    for pattern in AUTH_KEY_PATTERNS:
        for name in client.scan_iter(match=f"{keys.PREFIX}:{pattern}", count=1000):
            if client.ttl(name) == -1:
                fixed += client.expire(name, ttl)
    return {"expiry_restored": fixed}
