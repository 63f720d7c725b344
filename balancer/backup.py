"""Full backup and restore of every key the application owns (``vf:*``), as plain JSON.

A backup lists each key with its type, value and remaining TTL, and carries a SHA-256
checksum of that list. Restore checks the whole document first (format marker, version,
checksum, that every key is ours and every value fits its type); a corrupt or foreign
backup is refused before anything is touched. Then one MULTI/EXEC replaces the current
``vf:*`` keys by the backup's, and the proxies are told to reload.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import redis

from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.records import utcnow

FORMAT = "veloflux-backup"
FORMAT_VERSION = 1
MAX_BACKUP_BYTES = 512 * 2**20
_STREAM_ID = re.compile(r"^(\d+)-(\d+)$")
TYPES = ("string", "hash", "list", "set", "zset", "stream")


class BackupError(Exception):
    """The backup cannot be restored; nothing was changed."""


def _checksum(entries: list[dict[str, Any]]) -> str:
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _read_value(client: redis.Redis, key: str, kind: str) -> Any:
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return sorted(client.smembers(key))
    if kind == "zset":
        return [[member, score] for member, score in client.zrange(key, 0, -1, withscores=True)]
    if kind == "stream":
        return [[entry_id, fields] for entry_id, fields in client.xrange(key)]
    return None


def create_backup(client: redis.Redis | None = None) -> dict[str, Any]:
    client = client or get_redis()
    entries = []
    for key in sorted(set(client.scan_iter(match=keys.ALL_KEYS_PATTERN, count=1000))):
        kind = client.type(key)
        if kind not in TYPES:
            continue
        value = _read_value(client, key, kind)
        if value is None or value in ([], {}):
            continue  # vanished between SCAN and the read
        ttl = client.pttl(key)
        entries.append({"key": key, "type": kind, "ttl_ms": ttl if ttl > 0 else None, "value": value})
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "created_at": utcnow(),
            "key_count": len(entries), "checksum": _checksum(entries), "keys": entries}


def _check_entry(index: int, entry: Any) -> None:
    where = f"keys[{index}]"
    if not isinstance(entry, dict) or not {"key", "type", "value"} <= set(entry):
        raise BackupError(f"{where} must be an object with key, type and value")
    key, kind, value = entry["key"], entry["type"], entry["value"]
    if not isinstance(key, str) or not key.startswith(f"{keys.PREFIX}:"):
        raise BackupError(f"{where}: {key!r} is not a VeloFlux key (they start with '{keys.PREFIX}:')")
    ttl = entry.get("ttl_ms")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise BackupError(f"{where}.ttl_ms must be a positive whole number or null")
    shapes = {
        "string": lambda v: isinstance(v, str),
        "hash": lambda v: isinstance(v, dict) and v and all(isinstance(x, str) for x in v.values()),
        "list": lambda v: isinstance(v, list) and v and all(isinstance(x, str) for x in v),
        "set": lambda v: isinstance(v, list) and v and all(isinstance(x, str) for x in v),
        "zset": lambda v: isinstance(v, list) and v and all(
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], int | float)
            and not isinstance(x[1], bool) for x in v),
        "stream": lambda v: isinstance(v, list) and v and all(
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], dict) and x[1]
            for x in v),
    }
    if kind not in shapes:
        raise BackupError(f"{where}: unknown type {kind!r}")
    if not shapes[kind](value):
        raise BackupError(f"{where}: the value of {key} does not fit type {kind}")
    if kind == "stream":
        _check_stream_ids(where, [entry_id for entry_id, _ in value])
    if kind == "zset" and not all(math.isfinite(score) for _, score in value):
        raise BackupError(f"{where}: scores must be finite numbers")


def _check_stream_ids(where: str, ids: list[str]) -> None:
    """XADD refuses ids that are malformed or not increasing; find that before MULTI starts."""
    previous = (-1, -1)
    for entry_id in ids:
        match = _STREAM_ID.match(entry_id)
        if not match:
            raise BackupError(f"{where}: {entry_id!r} is not a stream entry id (<ms>-<seq>)")
        current = (int(match.group(1)), int(match.group(2)))
        if current <= previous or current == (0, 0):
            raise BackupError(f"{where}: stream entry ids must increase ({entry_id!r})")
        previous = current


def check_backup(document: Any) -> list[dict[str, Any]]:
    """The entries of a well-formed backup of ours; raises BackupError otherwise."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BackupError(f"this is not a VeloFlux backup (expected \"format\": \"{FORMAT}\")")
    if document.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"backup format version {document.get('format_version')!r} is not supported "
                          f"(this VeloFlux reads version {FORMAT_VERSION})")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise BackupError("the backup has no key list")
    if document.get("checksum") != _checksum(entries):
        raise BackupError("the backup's checksum does not match its content: it is corrupt or was edited")
    seen = set()
    for index, entry in enumerate(entries):
        _check_entry(index, entry)
        if entry["key"] in seen:
            raise BackupError(f"keys[{index}]: {entry['key']} appears twice")
        seen.add(entry["key"])
    return entries


def _write(pipe: redis.client.Pipeline, entry: dict[str, Any]) -> None:
    key, kind, value = entry["key"], entry["type"], entry["value"]
    if kind == "string":
        pipe.set(key, value)
    elif kind == "hash":
        pipe.hset(key, mapping=value)
    elif kind == "list":
        pipe.rpush(key, *value)
    elif kind == "set":
        pipe.sadd(key, *value)
    elif kind == "zset":
        pipe.zadd(key, {member: score for member, score in value})
    else:
        for entry_id, fields in value:
            pipe.xadd(key, fields, id=entry_id)
    if entry.get("ttl_ms"):
        pipe.pexpire(key, entry["ttl_ms"])


def restore_backup(document: Any, client: redis.Redis | None = None) -> dict[str, Any]:
    """Replace every ``vf:*`` key by the backup's, in one MULTI/EXEC. Refuses bad input untouched."""
    entries = check_backup(document)
    client = client or get_redis()
    current = list(client.scan_iter(match=keys.ALL_KEYS_PATTERN, count=1000))
    pipe = client.pipeline(transaction=True)
    for start in range(0, len(current), 500):
        pipe.delete(*current[start:start + 500])
    for entry in entries:
        _write(pipe, entry)
    version = next((e["value"] for e in entries if e["key"] == keys.routing_version()), "0")
    pipe.publish(keys.events_channel("routing"), json.dumps(
        {"type": "routing.changed", "version": int(version) if str(version).isdigit() else 0, "tenant_id": "*"}))
    pipe.execute()
    return {"restored": True, "key_count": len(entries), "removed_before_restore": len(current),
            "backup_created_at": document.get("created_at")}
