"""Assertions and probes shared by the API tests."""

from __future__ import annotations

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


def _value(client, key: str, kind: str):
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "set":
        return sorted(client.smembers(key))
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "stream":
        return client.xrange(key)
    return kind


def redis_dump(match: str = "*") -> dict:
    """Every key (SCAN, never KEYS) with its type and value: compare two dumps to prove nothing changed."""
    client = get_redis()
    dump = {}
    for key in client.scan_iter(match=match, count=1000):
        kind = client.type(key)
        dump[key] = (kind, _value(client, key, kind))
    return dump


def audit_actions(tenant_id: str) -> list[str]:
    """The actions of a tenant's audit stream, oldest first."""
    from veloflux_site.storage import keys

    return [fields["action"] for _, fields in get_redis().xrange(keys.audit_stream(tenant_id))]
