"""The beat schedules with their last and next run, read from redbeat's keys in Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis
from redbeat.decoder import RedBeatJSONDecoder

from veloflux_site.celery import REDBEAT_KEY_PREFIX, SCHEDULES
from veloflux_site.storage.connection import get_redis


def _iso(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def list_schedules(client: redis.Redis | None = None) -> dict:
    """Every schedule (name, task, interval) with ``last_run_at``/``next_run_at`` as beat recorded them,
    and who holds the beat lock. A schedule beat never ran shows nulls."""
    client = client or get_redis()
    schedule_key = REDBEAT_KEY_PREFIX + ":schedule"
    lock_key = REDBEAT_KEY_PREFIX + ":lock"
    pipe = client.pipeline(transaction=False)
    for name in SCHEDULES:
        pipe.hget(REDBEAT_KEY_PREFIX + name, "meta")
        pipe.zscore(schedule_key, REDBEAT_KEY_PREFIX + name)
    pipe.pttl(lock_key)
    *rows, lock_ttl = pipe.execute()
    items = []
    for index, (name, (task, every, expires)) in enumerate(SCHEDULES.items()):
        raw_meta, next_score = rows[2 * index], rows[2 * index + 1]
        meta = json.loads(raw_meta, cls=RedBeatJSONDecoder) if raw_meta else {}
        items.append({
            "name": name,
            "task": task,
            "every_seconds": every,
            "expires_seconds": expires,
            "last_run_at": _iso(meta.get("last_run_at")),
            "total_run_count": meta.get("total_run_count", 0),
            "next_run_at": _iso(next_score) if next_score is not None and next_score >= 0 else None,
        })
    return {"schedules": items, "beat": {"lock_key": lock_key, "locked": lock_ttl > 0,
                                         "lock_expires_in_ms": lock_ttl if lock_ttl > 0 else None}}
