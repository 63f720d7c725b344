"""Small helpers shared by the balancer tests (real API calls, real Redis)."""

from __future__ import annotations

import json

from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def create(api, actor, path: str, body: dict) -> dict:
    response = api.as_(actor).post(path, body)
    assert response.status_code == 201, response.json()
    return response.json()


def pool(api, actor, name: str = "web", **fields) -> dict:
    return create(api, actor, "/api/pools", {"name": name, **fields})


def backend(api, actor, address: str = "10.0.0.1:8080", pool_name: str = "web", **fields) -> dict:
    return create(api, actor, "/api/backends", {"address": address, "pool": pool_name, **fields})


def route(api, actor, host: str = "api.example.com", pool_name: str = "web", **fields) -> dict:
    return create(api, actor, "/api/routes", {"host": host, "pool": pool_name, **fields})


def fragment(tenant_id: str) -> dict | None:
    raw = get_redis().hget(keys.routing_table(), tenant_id)
    return json.loads(raw) if raw else None


def routing_version() -> int:
    return int(get_redis().get(keys.routing_version()) or 0)


def audit_actions(tenant_id: str) -> list[str]:
    return [fields["action"] for _, fields in get_redis().xrange(keys.audit_stream(tenant_id))]


def error(response) -> dict:
    return response.json()["error"]
