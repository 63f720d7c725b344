"""Assertions and probes shared by the API tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from veloflux_site.storage.connection import get_redis


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is our one error shape with this status (and code); returns the error body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"].strip(), body
    if code is not None:
        assert error["code"] == code, body
    return error


def assert_ok(response, status: int = 200):
    """A success with this status; returns the JSON body (or None for an empty body)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json() if response.content else None


_READERS = {
    "string": lambda pipe, key: pipe.get(key),
    "hash": lambda pipe, key: pipe.hgetall(key),
    "set": lambda pipe, key: pipe.smembers(key),
    "zset": lambda pipe, key: pipe.zrange(key, 0, -1, withscores=True),
    "list": lambda pipe, key: pipe.lrange(key, 0, -1),
    "stream": lambda pipe, key: pipe.xrange(key),
}


# Liveness written on a timer by processes other tests started (proxies, workers): not state a request changes.
_BACKGROUND_KEYS = ("vf:heartbeat:",)


def redis_dump(match: str = "*") -> dict:
    """Every key (SCAN, never KEYS) with its type and value: compare two dumps to prove nothing changed."""
    client = get_redis()
    names = sorted(key for key in client.scan_iter(match=match, count=1000) if not key.startswith(_BACKGROUND_KEYS))
    pipe = client.pipeline(transaction=False)
    for key in names:
        pipe.type(key)
    kinds = pipe.execute()
    for key, kind in zip(names, kinds, strict=True):
        _READERS.get(kind, lambda p, k: p.exists(k))(pipe, key)
    values = pipe.execute()
    return {key: (kind, sorted(value) if kind == "set" else value)
            for key, kind, value in zip(names, kinds, values, strict=True)}


def audit_actions(tenant_id: str) -> list[str]:
    """The actions of a tenant's audit stream, oldest first."""
    from veloflux_site.storage import keys

    return [fields["action"] for _, fields in get_redis().xrange(keys.audit_stream(tenant_id))]


def eventually(condition: Callable[[], object], timeout: float = 5.0, every: float = 0.05) -> object:
    """Polls ``condition`` until its value is true or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    return condition()


def wait_until(condition: Callable[[], object], timeout: float = 10.0, every: float = 0.05) -> object:
    """``eventually``, failing the test when the condition is still false after ``timeout``; its value."""
    value = eventually(condition, timeout, every)
    if not value:
        raise AssertionError(f"condition not met within {timeout}s")
    return value
