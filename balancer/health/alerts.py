"""Per-tenant alerts: backend down, pool with no healthy backend, error rate over a threshold.

Stored in ``keys.tenant_alerts(tenant)`` (HASH alert key -> JSON, the shape
``tenants.monitoring.alerts`` reads). An alert is raised once per episode: while the
condition lasts, re-raising only refreshes ``last_seen_at`` (de-duplicated); when it
clears the alert is ``resolved``. If the same condition comes back, the resolved record
is archived under ``<key>|<id>`` and a new active one takes the key. Raise and resolve
are Lua scripts (read-decide-write in one step) that also publish
``{"type": "alert.raised" | "alert.resolved", "tenant_id", "alert"}`` on ``vf:events:alerts``.

Evaluation re-derives the wanted set from the state (routing table + health overlay,
proxy metrics), so running it twice, or after a missed transition, is harmless.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import redis
from django.conf import settings

from veloflux_site.storage import keys

BACKEND_DOWN = "backend_down"
POOL_NO_HEALTHY = "pool_no_healthy"
ERROR_RATE = "error_rate"
HEALTH_KINDS = (BACKEND_DOWN, POOL_NO_HEALTHY)

RAISE_SCRIPT = r"""
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local c = cjson.decode(current)
  if c.state == 'active' then
    c.last_seen_at = ARGV[3]
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(c))
    return 0
  end
  redis.call('HSET', KEYS[1], ARGV[1] .. '|' .. c.id, current)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[4],
           '{"type":"alert.raised","tenant_id":' .. cjson.encode(ARGV[5]) .. ',"alert":' .. ARGV[2] .. '}')
return 1
"""

RESOLVE_SCRIPT = r"""
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local c = cjson.decode(current)
if c.state ~= 'active' then return 0 end
c.state = 'resolved'
c.resolved_at = ARGV[2]
c.resolution = ARGV[5]
local encoded = cjson.encode(c)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
redis.call('PUBLISH', ARGV[3],
           '{"type":"alert.resolved","tenant_id":' .. cjson.encode(ARGV[4]) .. ',"alert":' .. encoded .. '}')
return 1
"""


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def raise_alert(client: redis.Redis, tenant_id: str, key: str, kind: str, severity: str, message: str,
                object_type: str, object_id: str, now: float | None = None, **extra) -> bool:
    """Open an alert unless the same key is already active; True when a new alert was opened."""
    stamp = iso(time.time() if now is None else now)
    alert = {"id": f"al_{uuid.uuid4().hex[:16]}", "key": key, "kind": kind, "severity": severity,
             "state": "active", "message": message, "object_type": object_type, "object_id": object_id,
             "tenant_id": tenant_id, "started_at": stamp, "last_seen_at": stamp, "resolved_at": None, **extra}
    return bool(client.eval(RAISE_SCRIPT, 1, keys.tenant_alerts(tenant_id), key, json.dumps(alert), stamp,
                            keys.events_channel("alerts"), tenant_id))


def resolve_alert(client: redis.Redis, tenant_id: str, key: str, now: float | None = None,
                  resolution: str = "condition cleared") -> bool:
    """Resolve the active alert under ``key``; True when one was resolved."""
    stamp = iso(time.time() if now is None else now)
    return bool(client.eval(RESOLVE_SCRIPT, 1, keys.tenant_alerts(tenant_id), key, stamp,
                            keys.events_channel("alerts"), tenant_id, resolution))


def active_alerts(client: redis.Redis, tenant_id: str) -> dict[str, dict]:
    found = {}
    for field, raw in client.hgetall(keys.tenant_alerts(tenant_id)).items():
        alert = json.loads(raw)
        if alert.get("state") == "active" and "|" not in field:
            found[field] = alert
    return found


def _known_tenants(client: redis.Redis) -> list[str]:
    return sorted(set(client.hkeys(keys.routing_table())) | set(client.zrange(keys.tenant_index(), 0, -1)))


def _wanted_health_alerts(client: redis.Redis, fragment: dict) -> dict[str, dict]:
    """alert key -> raise arguments, for the current health of one tenant's pools."""
    pools = fragment.get("pools") or {}
    backends = [(name, b) for name, pool in pools.items() for b in (pool or {}).get("backends") or [] if b.get("id")]
    if not backends:
        return {}
    health = dict(zip([b["id"] for _, b in backends],
                      client.hmget(keys.routing_health(), [b["id"] for _, b in backends]), strict=True))
    wanted: dict[str, dict] = {}
    for pool_name, pool in pools.items():
        members = [b for b in (pool or {}).get("backends") or [] if b.get("id")]
        down = [b for b in members if health.get(b["id"]) == "down"]
        for backend in down:
            last = client.hget(keys.health_backend(backend["id"]), "last_result") or "failed checks"
            wanted[f"{BACKEND_DOWN}:{backend['id']}"] = {
                "kind": BACKEND_DOWN, "severity": "warning", "object_type": "backend", "object_id": backend["id"],
                "message": f"Backend {backend.get('address')} in pool {pool_name} is down ({last}).",
                "pool": pool_name}
        eligible = [b for b in members if b.get("enabled", True) and b.get("state") != "disabled"
                    and health.get(b["id"]) != "down"]
        if members and down and not eligible:
            wanted[f"{POOL_NO_HEALTHY}:{pool_name}"] = {
                "kind": POOL_NO_HEALTHY, "severity": "critical", "object_type": "pool", "object_id": pool_name,
                "message": f"Pool {pool_name} has no healthy backend: its routes answer 503.", "pool": pool_name}
    return wanted


def evaluate_health_alerts(client: redis.Redis, tenant_ids: list[str] | None = None,
                           now: float | None = None) -> dict[str, int]:
    """Raise/resolve backend-down and pool-without-healthy-backend alerts from the current state."""
    tenant_ids = _known_tenants(client) if tenant_ids is None else sorted(set(tenant_ids))
    raised = resolved = 0
    fragments = dict(zip(tenant_ids, client.hmget(keys.routing_table(), tenant_ids), strict=True)) if tenant_ids else {}
    for tenant_id in tenant_ids:
        try:
            fragment = json.loads(fragments[tenant_id]) if fragments[tenant_id] else {}
        except ValueError:
            continue
        wanted = _wanted_health_alerts(client, fragment)
        active = {k: a for k, a in active_alerts(client, tenant_id).items() if a.get("kind") in HEALTH_KINDS}
        for key, args in wanted.items():
            if key not in active:
                raised += raise_alert(client, tenant_id, key, now=now, **args)
        for key in active:
            if key not in wanted:
                resolved += resolve_alert(client, tenant_id, key, now=now, resolution="healthy again or removed")
    return {"raised": raised, "resolved": resolved}


def evaluate_error_rate_alerts(client: redis.Redis, now: float | None = None) -> dict[str, int]:
    """Error rate (5xx / requests) over the last complete minutes of each tenant, from proxy metrics."""
    moment = time.time() if now is None else now
    threshold = settings.ALERT_ERROR_RATE_THRESHOLD
    min_requests = settings.ALERT_ERROR_RATE_MIN_REQUESTS
    window = settings.ALERT_ERROR_RATE_WINDOW_MINUTES
    last_complete = int(moment // 60) - 1
    minutes = range(last_complete - window + 1, last_complete + 1)
    raised = resolved = 0
    for tenant_id in _known_tenants(client):
        pipe = client.pipeline(transaction=False)
        for minute in minutes:
            pipe.hmget(keys.tenant_metrics(tenant_id, f"m:{minute}"), ["requests", "responses_5xx"])
        requests = errors = 0
        for req, err in pipe.execute():
            requests += int(float(req or 0))
            errors += int(float(err or 0))
        rate = errors / requests if requests else 0.0
        if requests >= min_requests and rate > threshold:
            raised += raise_alert(
                client, tenant_id, ERROR_RATE, kind=ERROR_RATE, severity="critical" if rate >= 0.5 else "warning",
                message=f"{rate:.1%} of {requests} responses were 5xx in the last {window} min "
                        f"(threshold {threshold:.1%}).",
                object_type="tenant", object_id=tenant_id, now=moment, error_rate=round(rate, 4), requests=requests)
        else:
            resolved += resolve_alert(client, tenant_id, ERROR_RATE, now=moment,
                                      resolution=f"error rate {rate:.1%} at or under {threshold:.1%}")
    return {"raised": raised, "resolved": resolved}
