"""Backends: address/weight/state validation, pool references, health overlay, filters, updates."""

from __future__ import annotations

import pytest

from tests.balancer.helpers import backend, error, pool
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


@pytest.fixture
def web(api, member):
    return pool(api, member)


@pytest.mark.parametrize("address, stored", [
    ("10.0.0.1:8080", "10.0.0.1:8080"),
    ("App.Internal:80", "app.internal:80"),
    ("localhost:1", "localhost:1"),
    ("[2001:db8::1]:443", "[2001:db8::1]:443"),
    ("[::1]:65535", "[::1]:65535"),
])
def test_it_accepts_host_port_addresses(api, member, web, address, stored):
    created = backend(api, member, address)
    assert created["address"] == stored
    assert created["weight"] == 100 and created["enabled"] is True and created["state"] == "active"
    assert created["healthy"] is None and created["id"].startswith("be_")


@pytest.mark.parametrize("address, hint", [
    ("10.0.0.1", "no port"),
    ("10.0.0.1:0", "out of range"),
    ("10.0.0.1:65536", "out of range"),
    ("10.0.0.1:http", "must be a number"),
    ("http://10.0.0.1:80", "scheme"),
    ("2001:db8::1:80", "brackets"),
    ("[2001:db8::zz]:80", "IPv6"),
    ("999.1.1.1:80", "neither"),
    ("bad_host!:80", "neither"),
    ("", "required"),
    ("   ", "host:port"),
])
def test_it_rejects_bad_addresses_with_a_hint(api, member, web, address, hint):
    response = api.as_(member).post("/api/backends", {"address": address, "pool": "web"})
    assert response.status_code == 400
    assert hint in error(response)["fields"]["address"][0]


@pytest.mark.parametrize("weight, ok", [(1, True), (1000, True), (0, False), (1001, False), ("heavy", False),
                                        (True, False)])
def test_it_bounds_the_weight(api, member, web, weight, ok):
    response = api.as_(member).post("/api/backends", {"address": "10.0.0.1:80", "pool": "web", "weight": weight})
    assert response.status_code == (201 if ok else 400)
    if not ok:
        assert "weight" in error(response)["fields"]


def test_it_requires_an_existing_pool_of_the_same_tenant(api, member, outsider):
    pool(api, outsider, "theirs")
    response = api.as_(member).post("/api/backends", {"address": "10.0.0.1:80", "pool": "theirs"})
    assert response.status_code == 400
    assert "no pool named 'theirs'" in error(response)["fields"]["pool"][0]


def test_it_validates_state_and_the_effective_health_check(api, member, web):
    bad_state = api.as_(member).post("/api/backends", {"address": "10.0.0.1:80", "pool": "web", "state": "sleeping"})
    assert bad_state.status_code == 400 and "draining" in error(bad_state)["fields"]["state"][0]
    pool(api, member, "slow", health_check={"interval": "3s", "timeout": "1s"})
    inherited = api.as_(member).post("/api/backends", {"address": "10.0.0.1:80", "pool": "slow",
                                                       "health_check": {"timeout": "4s"}})
    assert inherited.status_code == 400
    assert "effective interval" in error(inherited)["fields"]["health_check.timeout"][0]


def test_it_refuses_the_same_address_twice_in_a_pool(api, member, web):
    backend(api, member)
    response = api.as_(member).post("/api/backends", {"address": "10.0.0.1:8080", "pool": "web"})
    assert response.status_code == 409
    pool(api, member, "other")
    assert backend(api, member, "10.0.0.1:8080", "other")["pool"] == "other"


def test_it_reports_health_from_the_health_overlay(api, member, web):
    up = backend(api, member, "10.0.0.1:80")
    down = backend(api, member, "10.0.0.2:80")
    unknown = backend(api, member, "10.0.0.3:80")
    get_redis().hset(keys.routing_health(), mapping={up["id"]: "up", down["id"]: "down"})
    items = {b["id"]: b["healthy"] for b in api.as_(member).get("/api/backends").json()["items"]}
    assert items == {up["id"]: True, down["id"]: False, unknown["id"]: None}


def test_it_shows_the_health_checkers_detail_on_one_backend(api, member, web):
    be = backend(api, member)
    assert api.as_(member).get(f"/api/backends/{be['id']}").json()["health"] is None
    get_redis().hset(keys.health_backend(be["id"]), mapping={
        "state": "up", "last_result": "HTTP 200", "latency_ms": "3.5", "consecutive_successes": "4",
        "consecutive_failures": "0", "last_transition_at": "2026-11-22T10:00:00Z",
        "last_checked_at": "2026-11-22T10:00:05Z"})
    detail = api.as_(member).get(f"/api/backends/{be['id']}").json()
    assert detail["health"]["latency_ms"] == 3.5 and detail["health"]["consecutive_successes"] == 4
    assert detail["health"]["state"] == "up"


def test_it_filters_backends_by_pool(api, member, web):
    pool(api, member, "api")
    backend(api, member, "10.0.0.1:80", "web")
    backend(api, member, "10.0.0.2:80", "api")
    listing = api.as_(member).get("/api/backends?pool=api").json()
    assert listing["total_count"] == 1 and listing["items"][0]["address"] == "10.0.0.2:80"


def test_it_paginates_backends(api, member, web):
    for n in range(5):
        backend(api, member, f"10.0.0.{n + 1}:80")
    page = api.as_(member).get("/api/backends?limit=2&page=3").json()
    assert page["total_count"] == 5 and len(page["items"]) == 1 and page["has_more"] is False


def test_it_updates_drains_and_moves_a_backend(api, member, web):
    be = backend(api, member)
    pool(api, member, "api")
    drained = api.as_(member).put(f"/api/backends/{be['id']}", {"state": "draining", "weight": 5, "version": 1})
    assert drained.status_code == 200
    assert drained.json()["state"] == "draining" and drained.json()["weight"] == 5 and drained.json()["version"] == 2
    moved = api.as_(member).patch(f"/api/backends/{be['id']}", {"pool": "api"})
    assert moved.json()["pool"] == "api"
    stale = api.as_(member).put(f"/api/backends/{be['id']}", {"weight": 7, "version": 1})
    assert stale.status_code == 409
    missing_pool = api.as_(member).put(f"/api/backends/{be['id']}", {"pool": "ghost"})
    assert missing_pool.status_code == 400


def test_it_deletes_a_backend(api, member, web):
    be = backend(api, member)
    assert api.as_(member).delete(f"/api/backends/{be['id']}").status_code == 204
    assert api.as_(member).get(f"/api/backends/{be['id']}").status_code == 404
    assert api.as_(member).delete(f"/api/backends/{be['id']}").status_code == 404


def test_it_accepts_the_veloflux_client_body(api, member, web):
    created = backend(api, member, "10.0.0.9:80", weight=50, health_check={
        "path": "/health", "interval": "30s", "timeout": "5s", "expected_status": 200})
    assert created["health_check"] == {"path": "/health", "interval": 30.0, "timeout": 5.0, "expected_status": [200]}


def test_it_answers_a_retried_create_with_the_same_idempotency_key_once(api, member, web):
    client = api.as_(member).with_headers(HTTP_IDEMPOTENCY_KEY="create-be-1")
    first = client.post("/api/backends", {"address": "10.0.0.5:80", "pool": "web"})
    again = client.post("/api/backends", {"address": "10.0.0.5:80", "pool": "web"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert api.as_(member).get("/api/backends").json()["total_count"] == 1
