"""Which backends to check and when: the targets and due ZSET synced from the routing table, and claims.

- ``sync_targets`` compares the routing table (read in one MULTI, as a proxy does) with
  ``health_targets`` and applies the difference in one Lua call, compare-and-set on
  ``health_synced_version`` so that two syncers never undo each other. New backends are
  due within ``FIRST_CHECK_WITHIN`` seconds; deleted ones leave the due set, the claims,
  the overlay and their detail hash in the same call.
- ``claim_due`` takes up to ``limit`` due backends in one Lua call: each one's due score
  moves to the lease expiry and a claim token is stored, so two sweepers never probe the
  same backend in the same round, and a sweeper that dies loses nothing: when the lease
  expires the backend is due again and another sweeper takes it.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from veloflux_site.storage import keys

FIRST_CHECK_WITHIN = 0.5
LEASE_GRACE = 3.0
SYNC_RETRIES = 5

SYNC_SCRIPT = r"""
local synced = redis.call('GET', KEYS[1]) or ''
if synced ~= ARGV[1] then return 'stale' end
local plan = cjson.decode(ARGV[3])
local now = tonumber(ARGV[4])
for id, target in pairs(plan.set) do redis.call('HSET', KEYS[2], id, target) end
for id, due in pairs(plan.add) do redis.call('ZADD', KEYS[3], 'NX', due, id) end
for id, due in pairs(plan.sooner) do
  local current = tonumber(redis.call('ZSCORE', KEYS[3], id))
  if (not current) or current > due then redis.call('ZADD', KEYS[3], due, id) end
end
local removed = 0
for i, id in ipairs(plan.remove) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('SREM', KEYS[7], id)
  if redis.call('HDEL', KEYS[5], id) == 1 then redis.call('INCR', KEYS[6]) end
  redis.call('DEL', KEYS[7 + i])
  removed = removed + 1
end
redis.call('SET', KEYS[1], ARGV[2])
return 'ok'
"""

CLAIM_SCRIPT = r"""
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #due, 2 do
  local id, score = due[i], due[i + 1]
  local target = redis.call('HGET', KEYS[3], id)
  if not target then
    redis.call('ZREM', KEYS[1], id)
  else
    local check = cjson.decode(target).check
    local lease_until = now + tonumber(check.timeout or 5) + tonumber(ARGV[5])
    local token = ARGV[4] .. '|' .. id .. '|' .. score
    redis.call('ZADD', KEYS[1], lease_until, id)
    redis.call('HSET', KEYS[2], id, cjson.encode({token = token, due = tonumber(score), worker = ARGV[4],
                                                  lease_until = lease_until}))
    table.insert(out, id)
    table.insert(out, score)
    table.insert(out, token)
    table.insert(out, target)
  end
end
return out
"""


@dataclass(frozen=True)
class Target:
    """One backend to check, as synced from its tenant's fragment."""

    backend_id: str
    tenant_id: str
    pool: str
    address: str
    check: dict[str, Any]

    @property
    def interval(self) -> float:
        return float(self.check.get("interval") or 5.0)

    @property
    def timeout(self) -> float:
        return float(self.check.get("timeout") or 2.0)

    def to_json(self) -> str:
        return json.dumps({"tenant_id": self.tenant_id, "pool": self.pool, "address": self.address,
                           "check": self.check}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, backend_id: str, raw: str) -> Target:
        data = json.loads(raw)
        return cls(backend_id, data["tenant_id"], data["pool"], data["address"], data["check"])


@dataclass(frozen=True)
class Claim:
    """A sweeper's right to probe one backend for one round (``due`` is that round's due time)."""

    target: Target
    due: float
    token: str

    @property
    def backend_id(self) -> str:
        return self.target.backend_id


@dataclass
class SyncReport:
    version: str
    changed: bool = False
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class FragmentCache:
    """Parsed targets per tenant, keyed by the raw fragment: an unchanged tenant is not parsed again."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, tuple[str, dict[str, str]]] = {}

    def targets(self, fragments: dict[str, str]) -> dict[str, str]:
        desired: dict[str, str] = {}
        for tenant_id in list(self._by_tenant):
            if tenant_id not in fragments:
                del self._by_tenant[tenant_id]
        for tenant_id, raw in fragments.items():
            cached = self._by_tenant.get(tenant_id)
            if cached is None or cached[0] != raw:
                cached = (raw, targets_of_fragment(tenant_id, raw))
                self._by_tenant[tenant_id] = cached
            desired.update(cached[1])
        return desired


_default_cache = FragmentCache()


def targets_of_fragment(tenant_id: str, raw: str) -> dict[str, str]:
    """backend id -> target JSON for every backend of one tenant fragment (a bad fragment yields none)."""
    try:
        fragment = json.loads(raw)
        pools = fragment.get("pools") or {}
    except (ValueError, AttributeError):
        return {}
    found: dict[str, str] = {}
    for pool_name, pool in pools.items():
        for backend in (pool or {}).get("backends") or []:
            backend_id, address, check = backend.get("id"), backend.get("address"), backend.get("health_check")
            if not backend_id or not address or not isinstance(check, dict) or not _valid_key_part(backend_id):
                continue
            found[backend_id] = Target(backend_id, tenant_id, pool_name, address, check).to_json()
    return found


def _valid_key_part(backend_id: str) -> bool:
    try:
        keys.health_backend(backend_id)
    except (ValueError, TypeError):
        return False
    return True


def read_routing(client: redis.Redis) -> tuple[str, dict[str, str]]:
    """The routing version and every tenant fragment, in one round trip."""
    pipe = client.pipeline(transaction=True)
    pipe.get(keys.routing_version())
    pipe.hgetall(keys.routing_table())
    version, fragments = pipe.execute()
    return str(version or "0"), fragments


def sync_targets(client: redis.Redis, force: bool = False, now: float | None = None,
                 cache: FragmentCache | None = None) -> SyncReport:
    """Bring ``health_targets`` and ``health_due`` in line with the routing table (idempotent)."""
    cache = cache or _default_cache
    for _ in range(SYNC_RETRIES):
        pipe = client.pipeline(transaction=True)
        pipe.get(keys.health_synced_version())
        pipe.get(keys.routing_version())
        synced, version = pipe.execute()
        synced, version = synced or "", str(version or "0")
        if synced == version and not force:
            return SyncReport(version)
        version, fragments = read_routing(client)
        desired = cache.targets(fragments)
        current = client.hgetall(keys.health_targets())
        report = SyncReport(version, changed=True)
        plan: dict[str, Any] = {"set": {}, "add": {}, "sooner": {}, "remove": []}
        moment = time.time() if now is None else now
        for backend_id, target_json in desired.items():
            old = current.get(backend_id)
            if old == target_json:
                continue
            plan["set"][backend_id] = target_json
            if old is None:
                report.added.append(backend_id)
                plan["add"][backend_id] = moment + random.uniform(0, FIRST_CHECK_WITHIN)
            else:
                report.updated.append(backend_id)
                interval = Target.from_json(backend_id, target_json).interval
                plan["sooner"][backend_id] = moment + random.uniform(0, interval)
        report.removed = [backend_id for backend_id in current if backend_id not in desired]
        plan["remove"] = report.removed
        script_keys = [keys.health_synced_version(), keys.health_targets(), keys.health_due(),
                       keys.health_claims(), keys.routing_health(), keys.routing_health_version(),
                       keys.health_ejected(), *[keys.health_backend(b) for b in report.removed]]
        # cjson encodes an empty table as {}: send the lists as objects only when they have items.
        body = json.dumps({k: (v if v else {}) for k, v in plan.items()})
        if client.eval(SYNC_SCRIPT, len(script_keys), *script_keys, synced, version, body, moment) == "ok":
            return report
    return SyncReport(version)


def claim_due(client: redis.Redis, worker_id: str, limit: int, now: float | None = None,
              min_lateness: float = 0.0, lease_grace: float = LEASE_GRACE) -> list[Claim]:
    """Atomically take up to ``limit`` backends whose check is due (by ``min_lateness`` seconds or more)."""
    moment = time.time() if now is None else now
    script_keys = [keys.health_due(), keys.health_claims(), keys.health_targets()]
    raw = client.eval(CLAIM_SCRIPT, len(script_keys), *script_keys,
                      repr(moment), repr(moment - min_lateness), limit, worker_id, lease_grace)
    claims = []
    for i in range(0, len(raw), 4):
        backend_id, due, token, target_json = raw[i:i + 4]
        claims.append(Claim(_parsed_target(backend_id, target_json), float(due), token))
    return claims


_parsed: dict[str, tuple[str, Target]] = {}


def _parsed_target(backend_id: str, target_json: str) -> Target:
    """Target.from_json, remembered per backend while its JSON is unchanged (claims repeat every interval)."""
    cached = _parsed.get(backend_id)
    if cached is not None and cached[0] == target_json:
        return cached[1]
    if len(_parsed) > 200_000:
        _parsed.clear()
    target = Target.from_json(backend_id, target_json)
    _parsed[backend_id] = (target_json, target)
    return target


RELEASE_SCRIPT = r"""
local released = 0
for i = 1, #ARGV, 3 do
  local claim = redis.call('HGET', KEYS[2], ARGV[i])
  if claim and cjson.decode(claim).token == ARGV[i + 1] then
    redis.call('HDEL', KEYS[2], ARGV[i])
    if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 1 then redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i]) end
    released = released + 1
  end
end
return released
"""


def release_claims(client: redis.Redis, claims: list[Claim]) -> int:
    """Give back claims that were never probed (a sweeper stopping): each is due again at its old due time."""
    if not claims:
        return 0
    args: list[str] = []
    for claim in claims:
        args += [claim.backend_id, claim.token, repr(claim.due)]
    return int(client.eval(RELEASE_SCRIPT, 3, keys.health_due(), keys.health_claims(), keys.health_targets(), *args))
