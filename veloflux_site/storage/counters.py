"""Atomic counters: fixed-window rate limits and failure counters with expiry."""

from __future__ import annotations

import time

import redis

# INCR and set the expiry on first use, in one round trip.
_INCR_WITH_TTL = r"""
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
"""


def incr_with_ttl(client: redis.Redis, key: str, ttl_seconds: float) -> tuple[int, float]:
    """Count one more event; returns (count, seconds until the count resets)."""
    count, ttl_ms = client.eval(_INCR_WITH_TTL, 1, key, int(ttl_seconds * 1000))
    return int(count), max(0.0, int(ttl_ms) / 1000)


def window_start(window_seconds: float, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(now // window_seconds)
