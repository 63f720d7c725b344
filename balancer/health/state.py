"""Per-backend health state: rise/fall transitions written atomically in Lua and published.

Rules (per backend, thresholds from its resolved ``health_check``):
- a backend starts ``unknown`` (absent from the overlay: eligible);
- its first result decides: a success makes it ``up``, a failure ``down`` (a backend
  nobody has seen answer gets no traffic after a failed probe);
- ``up`` becomes ``down`` after ``fall`` consecutive failures, ``down`` becomes ``up``
  after ``rise`` consecutive successes.

A batch of results is one script: for each result whose claim token still holds, the
detail hash, the overlay ``vf:routing:health``, ``vf:routing:health_version``, the next
due time and the ``vf:events:health`` message are written together. A result whose claim
was lost (its lease expired and another sweeper took the backend) is dropped, so a slow
sweeper never overwrites a newer round.

Passive ejections that proxies report in ``vf:routing:ejections`` are mirrored into the
same detail hash (``passive_*`` fields) by ``mirror_passive_ejections``.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

import redis

from balancer.health.probe import ProbeResult
from balancer.health.scheduler import Claim
from veloflux_site.storage import keys

STEADY_JITTER = 0.02

RECORD_SCRIPT = r"""
local now = tonumber(ARGV[1])
local channel = ARGV[2]
local results = cjson.decode(ARGV[3])
local out = {}
local recorded = 0
for i, r in ipairs(results) do
  local detail = KEYS[5 + i]
  local claim = redis.call('HGET', KEYS[2], r.id)
  local target = redis.call('HGET', KEYS[5], r.id)
  if claim and cjson.decode(claim).token == r.token and target then
    redis.call('HDEL', KEYS[2], r.id)
    local t = cjson.decode(target)
    local rise = tonumber(t.check.rise or 2)
    local fall = tonumber(t.check.fall or 3)
    local h = redis.call('HMGET', detail, 'state', 'consecutive_successes', 'consecutive_failures')
    local state = h[1] or 'unknown'
    local first = (h[2] == false)
    local ok_count = tonumber(h[2] or 0)
    local fail_count = tonumber(h[3] or 0)
    local new = state
    if r.ok then
      ok_count = ok_count + 1
      fail_count = 0
      if state == 'unknown' or (state == 'down' and ok_count >= rise) then new = 'up' end
    else
      fail_count = fail_count + 1
      ok_count = 0
      if state == 'unknown' or (state == 'up' and fail_count >= fall) then new = 'down' end
    end
    redis.call('HSET', detail, 'state', new, 'last_result', r.result, 'latency_ms', r.latency_ms,
               'consecutive_successes', ok_count, 'consecutive_failures', fail_count,
               'last_checked_at', ARGV[1], 'last_ok', r.ok and '1' or '0',
               'tenant_id', t.tenant_id, 'pool', t.pool, 'address', t.address)
    if new ~= state then
      redis.call('HSET', detail, 'last_transition_at', ARGV[1])
      redis.call('HSET', KEYS[3], r.id, new)
      redis.call('INCR', KEYS[4])
      redis.call('PUBLISH', channel, cjson.encode({type = 'backend.health', backend_id = r.id,
        tenant_id = t.tenant_id, pool = t.pool, state = new, previous = state, at = now}))
      table.insert(out, r.id)
      table.insert(out, t.tenant_id)
      table.insert(out, t.pool)
      table.insert(out, state)
      table.insert(out, new)
    end
    local next_due = r.next_due
    if first then next_due = r.first_next_due end
    redis.call('ZADD', KEYS[1], next_due, r.id)
    recorded = recorded + 1
  end
end
table.insert(out, 1, recorded)
return out
"""

MIRROR_EJECTIONS_SCRIPT = r"""
local now = tonumber(ARGV[1])
local channel = ARGV[2]
local changed = 0
local live = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do
  local id = raw[i]
  local ok, e = pcall(cjson.decode, raw[i + 1])
  local until_at = ok and type(e) == 'table' and tonumber(e['until']) or 0
  local detail = KEYS[3] .. id
  if until_at <= now then
    redis.call('HDEL', KEYS[1], id)
  else
    live[id] = true
    local before = redis.call('HGET', detail, 'passive_ejected_until')
    redis.call('HSET', detail, 'passive_ejected', '1', 'passive_ejected_until', tostring(until_at),
               'passive_ejected_by', tostring(e.node or ''), 'passive_ejection_reason', tostring(e.reason or ''))
    if redis.call('SADD', KEYS[2], id) == 1 or before ~= tostring(until_at) then
      changed = changed + 1
      redis.call('PUBLISH', channel, cjson.encode({type = 'backend.ejection', backend_id = id, ejected = true,
        ['until'] = until_at, node = e.node, reason = e.reason, at = now}))
    end
  end
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not live[id] then
    redis.call('SREM', KEYS[2], id)
    redis.call('HSET', KEYS[3] .. id, 'passive_ejected', '0')
    redis.call('HDEL', KEYS[3] .. id, 'passive_ejected_until', 'passive_ejected_by', 'passive_ejection_reason')
    changed = changed + 1
    redis.call('PUBLISH', channel, cjson.encode({type = 'backend.ejection', backend_id = id, ejected = false,
      at = now}))
  end
end
return changed
"""


@dataclass(frozen=True)
class Transition:
    backend_id: str
    tenant_id: str
    pool: str
    previous: str
    state: str


def next_due_times(claim: Claim, now: float) -> tuple[float, float]:
    """(steady next due, first-check next due): keep the cadence; after a backend's first check,
    spread it uniformly over one interval so backends added together do not stay in step."""
    interval = claim.target.interval
    steady = claim.due + interval * (1 + random.uniform(-STEADY_JITTER, STEADY_JITTER))
    if steady < now:
        # A whole interval behind: do not catch up (that would double the load), start a new, spread phase.
        steady = now + random.uniform(0.5, 1.0) * interval
    return steady, now + random.uniform(0.05, 1.0) * interval


def record_results(client: redis.Redis, results: list[tuple[Claim, ProbeResult]],
                   now: float | None = None) -> tuple[int, list[Transition]]:
    """Write a batch of probe results; returns (results recorded, transitions)."""
    if not results:
        return 0, []
    moment = time.time() if now is None else now
    payload = []
    for claim, result in results:
        steady, first = next_due_times(claim, moment)
        payload.append({"id": claim.backend_id, "token": claim.token, "ok": result.ok, "result": result.result,
                        "latency_ms": result.latency_ms, "next_due": steady, "first_next_due": first})
    detail_prefix = keys.health_backend("x")[:-1]  # ids were validated as key parts when they were synced
    script_keys = [keys.health_due(), keys.health_claims(), keys.routing_health(), keys.routing_health_version(),
                   keys.health_targets(), *[detail_prefix + claim.backend_id for claim, _ in results]]
    raw = client.eval(RECORD_SCRIPT, len(script_keys), *script_keys, repr(moment),
                      keys.events_channel("health"), json.dumps(payload))
    recorded, flat = int(raw[0]), raw[1:]
    transitions = [Transition(*flat[i:i + 5]) for i in range(0, len(flat), 5)]
    return recorded, transitions


def mirror_passive_ejections(client: redis.Redis, now: float | None = None) -> int:
    """Copy live proxy ejections into the backends' detail hashes, forget expired ones; returns changes."""
    moment = time.time() if now is None else now
    detail_prefix = keys.health_backend("x")[:-1]
    return int(client.eval(MIRROR_EJECTIONS_SCRIPT, 3, keys.passive_ejections(), keys.health_ejected(), detail_prefix,
                           repr(moment), keys.events_channel("health")))
