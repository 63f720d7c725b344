"""The audit log: one bounded Redis Stream per tenant, written in the same atomic
batch as the change it describes, so a change is never recorded without
happening or happen without being recorded."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings

from veloflux_site.actor import Actor  # re-exported: the apps name it as tenants.audit.Actor
from veloflux_site.api.middleware import current_request_id
from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.connection import get_redis

REDACTED = "[redacted]"
SECRET_NAMES = ("password", "secret", "token", "key_hash", "private_key", "api_key")


def _scrub(value: Any, name: str = "") -> Any:
    if any(secret in name.lower() for secret in SECRET_NAMES):
        return REDACTED
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def summarize(before: dict | None, after: dict | None) -> dict:
    """Only the fields that changed, secrets redacted: {"field": [before, after]}."""
    before, after = before or {}, after or {}
    skip = {"version", "updated_at", "created_at"}
    changed = {}
    for name in sorted(set(before) | set(after)):
        if name in skip or before.get(name) == after.get(name):
            continue
        changed[name] = [_scrub(before.get(name), name), _scrub(after.get(name), name)]
    return changed


def stage_audit(batch: AtomicWrite, tenant_id: str | None, actor: Actor, action: str, object_type: str,
                object_id: str, before: dict | None = None, after: dict | None = None) -> None:
    batch.xadd(keys.audit_stream(tenant_id), {
        "actor_id": actor.id,
        "actor": actor.label,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "changes": json.dumps(summarize(before, after), separators=(",", ":"), default=str),
        "ip": actor.ip,
        "request_id": current_request_id.get(),
    }, maxlen=settings.AUDIT_STREAM_MAXLEN)


_STREAM_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_MAX_STREAM_PART = 2**64 - 1


def is_stream_id(value: str) -> bool:
    """A Redis stream id Redis will accept: ``<ms>-<seq>``, each part an unsigned 64-bit integer."""
    match = _STREAM_ID.match(value)
    return bool(match) and all(int(part) <= _MAX_STREAM_PART for part in match.groups())


def _entry(stream_id: str, fields: dict) -> dict:
    millis = int(stream_id.split("-", 1)[0])
    return {
        "id": stream_id,
        "time": datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "actor_id": fields.get("actor_id", ""),
        "actor": fields.get("actor", ""),
        "action": fields.get("action", ""),
        "object_type": fields.get("object_type", ""),
        "object_id": fields.get("object_id", ""),
        "changes": json.loads(fields.get("changes") or "{}"),
        "ip": fields.get("ip", ""),
        "request_id": fields.get("request_id", ""),
    }


def query(tenant_id: str | None, *, actor: str | None = None, object_type: str | None = None,
          object_id: str | None = None, action: str | None = None, since_ms: int | None = None,
          until_ms: int | None = None, before_id: str | None = None, limit: int = 50,
          client: redis.Redis | None = None, scan_budget: int = 20_000) -> tuple[list[dict], str | None]:
    """Newest first. Returns (entries, cursor for the next page or None).

    Filtering walks the stream backwards in chunks, so a narrow filter over a
    long stream costs at most ``scan_budget`` entries per call.
    """
    client = client or get_redis()
    stream = keys.audit_stream(tenant_id)
    if until_ms is not None and until_ms < 0:
        return [], None  # before 1970: the stream cannot hold anything that old
    since_ms = max(0, since_ms) if since_ms is not None else None
    high = f"({before_id}" if before_id else (str(until_ms) if until_ms is not None else "+")
    low = str(since_ms) if since_ms is not None else "-"
    found: list[dict] = []
    scanned = 0
    while len(found) < limit and scanned < scan_budget:
        chunk = client.xrevrange(stream, max=high, min=low, count=500)
        if not chunk:
            return found, None
        for stream_id, fields in chunk:
            scanned += 1
            entry = _entry(stream_id, fields)
            if actor and actor not in (entry["actor_id"], entry["actor"]):
                continue
            if object_type and entry["object_type"] != object_type:
                continue
            if object_id and entry["object_id"] != object_id:
                continue
            if action and entry["action"] != action:
                continue
            found.append(entry)
            if len(found) == limit:
                return found, stream_id
        high = f"({chunk[-1][0]}"
    # Budget spent: hand back where the walk stopped so the caller can continue.
    return found, high[1:]
