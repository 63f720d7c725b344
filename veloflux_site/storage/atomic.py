"""All-or-nothing writes: checks and writes sent together in one Lua call.

A repository *stages* its operations into an ``AtomicWrite``; ``execute``
runs every check, and only if all hold, every write, inside one script on the
server. Several repositories (and a bulk request of many items) can stage
into the same batch, so a record, its indexes, a version bump and the change
event are one atomic unit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from veloflux_site.storage.errors import Conflict, LimitExceeded, NotFound, StaleVersion

APPLY_SCRIPT = r"""
local plan = cjson.decode(ARGV[1])
for i, c in ipairs(plan.checks) do
  local key = KEYS[c.k]
  if c.op == 'absent' then
    if redis.call('EXISTS', key) == 1 then return {'conflict', i} end
  elseif c.op == 'present' then
    if redis.call('EXISTS', key) == 0 then return {'missing', i} end
  elseif c.op == 'version' then
    local raw = redis.call('GET', key)
    if not raw then return {'missing', i} end
    local current = cjson.decode(raw).version
    if current ~= c.v then return {'stale', i, tostring(current)} end
  elseif c.op == 'free_or' then
    local owner = redis.call('GET', key)
    if owner and owner ~= c.v then return {'conflict', i} end
  elseif c.op == 'max_card' then
    local n = redis.call('ZCARD', key)
    if n + c.add > c.max then return {'limit', i, tostring(n)} end
  end
end
local results = {}
for _, w in ipairs(plan.writes) do
  local key = KEYS[w.k]
  local r
  if w.op == 'set' then r = redis.call('SET', key, w.v)
  elseif w.op == 'setex' then r = redis.call('SET', key, w.v, 'PX', w.ttl)
  elseif w.op == 'del' then r = redis.call('DEL', key)
  elseif w.op == 'zadd' then r = redis.call('ZADD', key, w.s or 0, w.m)
  elseif w.op == 'zrem' then r = redis.call('ZREM', key, w.m)
  elseif w.op == 'sadd' then r = redis.call('SADD', key, w.m)
  elseif w.op == 'srem' then r = redis.call('SREM', key, w.m)
  elseif w.op == 'hset' then r = redis.call('HSET', key, w.f, w.v)
  elseif w.op == 'hdel' then r = redis.call('HDEL', key, w.f)
  elseif w.op == 'incr' then r = redis.call('INCRBY', key, w.by or 1)
  elseif w.op == 'publish' then r = redis.call('PUBLISH', key, w.v)
  elseif w.op == 'xadd' then
    local args = {key, 'MAXLEN', '~', w.maxlen, '*'}
    for _, kv in ipairs(w.fields) do table.insert(args, kv) end
    r = redis.call('XADD', unpack(args))
  end
  if type(r) == 'table' then r = r.ok or '' end
  table.insert(results, r or '')
end
return {'ok', results}
"""


@dataclass
class _Check:
    op: str
    key: str
    value: Any = None
    extra: dict = field(default_factory=dict)
    message: str = ""
    field_name: str | None = None


class AtomicWrite:
    """Collects checks and writes; ``execute`` applies all of them or none."""

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._key_index: dict[str, int] = {}
        self._checks: list[dict] = []
        self._check_info: list[_Check] = []
        self._writes: list[dict] = []
        self._claimed_absent: dict[str, str] = {}

    def _k(self, key: str) -> int:
        if key not in self._key_index:
            self._keys.append(key)
            self._key_index[key] = len(self._keys)  # Lua is 1-based
        return self._key_index[key]

    def _check(self, op: str, key: str, message: str, field_name: str | None = None, **data: Any) -> None:
        self._checks.append({"op": op, "k": self._k(key), **data})
        self._check_info.append(_Check(op, key, message=message, field_name=field_name))

    # --- checks -----------------------------------------------------------
    def require_absent(self, key: str, message: str, field_name: str | None = None) -> None:
        # Two items of one batch claiming the same key can never both succeed.
        if key in self._claimed_absent:
            raise Conflict(message, field=field_name)
        self._claimed_absent[key] = message
        self._check("absent", key, message, field_name)

    def require_present(self, key: str, message: str) -> None:
        self._check("present", key, message)

    def require_version(self, key: str, version: int, message: str) -> None:
        self._check("version", key, message, v=version)

    def require_free_or_owned(self, key: str, owner: str, message: str, field_name: str | None = None) -> None:
        if key in self._claimed_absent:
            raise Conflict(message, field=field_name)
        self._claimed_absent[key] = message
        self._check("free_or", key, message, field_name, v=owner)

    def require_max_card(self, key: str, add: int, maximum: int, message: str, limit: str) -> None:
        self._check("max_card", key, message, add=add, max=maximum, limit=limit)

    # --- writes -----------------------------------------------------------
    def set(self, key: str, value: str, ttl_ms: int | None = None) -> None:
        if ttl_ms is None:
            self._writes.append({"op": "set", "k": self._k(key), "v": value})
        else:
            self._writes.append({"op": "setex", "k": self._k(key), "v": value, "ttl": int(ttl_ms)})

    def delete(self, key: str) -> None:
        self._writes.append({"op": "del", "k": self._k(key)})

    def zadd(self, key: str, member: str, score: float = 0) -> None:
        self._writes.append({"op": "zadd", "k": self._k(key), "m": member, "s": score})

    def zrem(self, key: str, member: str) -> None:
        self._writes.append({"op": "zrem", "k": self._k(key), "m": member})

    def sadd(self, key: str, member: str) -> None:
        self._writes.append({"op": "sadd", "k": self._k(key), "m": member})

    def srem(self, key: str, member: str) -> None:
        self._writes.append({"op": "srem", "k": self._k(key), "m": member})

    def hset(self, key: str, field_name: str, value: str) -> None:
        self._writes.append({"op": "hset", "k": self._k(key), "f": field_name, "v": value})

    def hdel(self, key: str, field_name: str) -> None:
        self._writes.append({"op": "hdel", "k": self._k(key), "f": field_name})

    def incr(self, key: str, by: int = 1) -> int:
        """Returns the position of this write's result in ``execute()``'s list."""
        self._writes.append({"op": "incr", "k": self._k(key), "by": by})
        return len(self._writes) - 1

    def publish(self, channel: str, message: dict | str) -> None:
        payload = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
        self._writes.append({"op": "publish", "k": self._k(channel), "v": payload})

    def xadd(self, key: str, fields: dict[str, str], maxlen: int) -> None:
        flat: list[str] = []
        for name, value in fields.items():
            flat.extend((name, str(value)))
        self._writes.append({"op": "xadd", "k": self._k(key), "fields": flat, "maxlen": maxlen})

    @property
    def empty(self) -> bool:
        return not self._writes and not self._checks

    def execute(self, client: redis.Redis) -> list:
        if self.empty:
            return []
        plan = json.dumps({"checks": self._checks or {}, "writes": self._writes or {}}, separators=(",", ":"))
        # cjson decodes {} and [] alike; an empty plan part stays iterable by ipairs.
        result = _script(client)(keys=self._keys, args=[plan])
        status = result[0]
        if status == "ok":
            return list(result[1])
        info = self._check_info[int(result[1]) - 1]
        if status == "conflict":
            raise Conflict(info.message, field=info.field_name)
        if status == "missing":
            raise NotFound(info.message)
        if status == "stale":
            raise StaleVersion(info.message, current_version=int(result[2]))
        if status == "limit":
            check = self._checks[int(result[1]) - 1]
            raise LimitExceeded(info.message, limit=check["limit"], maximum=check["max"])
        raise RuntimeError(f"unexpected script status {status!r}")


_scripts: dict[int, Any] = {}


def _script(client: redis.Redis):
    # register_script keeps the SHA and falls back to EVAL after a SCRIPT FLUSH or a restart.
    script = _scripts.get(id(client))
    if script is None:
        script = client.register_script(APPLY_SCRIPT)
        _scripts[id(client)] = script
    return script
