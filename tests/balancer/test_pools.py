"""Pools: create, read, update with versions, delete with and without force, validation, roles."""

from __future__ import annotations

import pytest

from tests.balancer.helpers import backend, error, pool, route

POOL = {"name": "web", "algorithm": "round_robin", "sticky_sessions": False}


def test_it_creates_lists_and_reads_a_pool(api, member, viewer):
    created = pool(api, member, health_check={"path": "/ping", "interval": "10s", "timeout": "500ms"})
    assert created["name"] == "web" and created["id"] == "web" and created["version"] == 1
    assert created["health_check"] == {"path": "/ping", "interval": 10.0, "timeout": 0.5}
    listing = api.as_(viewer).get("/api/pools").json()
    assert listing["total_count"] == 1 and listing["items"][0]["name"] == "web"
    assert listing["items"][0]["backend_count"] == 0
    detail = api.as_(viewer).get("/api/pools/web").json()
    assert detail["algorithm"] == "round_robin" and detail["backends"] == []


@pytest.mark.parametrize("algorithm", ["round_robin", "weighted_round_robin", "least_conn", "ip_hash", "random",
                                       "least_latency", "adaptive"])
def test_it_accepts_every_documented_algorithm(api, member, algorithm):
    assert pool(api, member, name=f"p-{algorithm.replace('_', '-')}", algorithm=algorithm)["algorithm"] == algorithm


def test_it_rejects_an_unknown_algorithm_naming_the_valid_ones(api, member):
    response = api.as_(member).post("/api/pools", {**POOL, "algorithm": "fastest"})
    assert response.status_code == 400
    assert "least_conn" in error(response)["fields"]["algorithm"][0]
    assert api.as_(member).get("/api/pools").json()["total_count"] == 0


@pytest.mark.parametrize("body, field", [
    ({"algorithm": "round_robin"}, "name"),
    ({"name": "has space"}, "name"),
    ({"name": "web", "sticky_sessions": "yes"}, "sticky_sessions"),
    ({"name": "web", "colour": "blue"}, "colour"),
    ({"name": "web", "health_check": {"interval": "5s", "timeout": "5s"}}, "health_check.timeout"),
    ({"name": "web", "health_check": {"interval": "soon"}}, "health_check.interval"),
    ({"name": "web", "health_check": {"interval": -1}}, "health_check.interval"),
    ({"name": "web", "health_check": {"path": "health"}}, "health_check.path"),
    ({"name": "web", "health_check": {"expected_status": [200, 999]}}, "health_check.expected_status"),
    ({"name": "web", "health_check": {"frequency": 3}}, "health_check.frequency"),
    ({"name": "web", "health_check": {"timeout": "9s"}}, "health_check.timeout"),  # default interval is 5s
])
def test_it_rejects_invalid_pools_with_the_field_named(api, member, body, field):
    response = api.as_(member).post("/api/pools", body)
    assert response.status_code == 400, response.json()
    assert field in error(response)["fields"], error(response)
    assert api.as_(member).get("/api/pools").json()["total_count"] == 0


@pytest.mark.parametrize("given, seconds", [("5s", 5.0), ("500ms", 0.5), ("1m", 60.0), (7, 7.0), (2.5, 2.5),
                                            ("3", 3.0)])
def test_it_accepts_durations_as_strings_or_seconds(api, member, given, seconds):
    created = pool(api, member, health_check={"interval": given, "timeout": "100ms"})
    assert created["health_check"]["interval"] == seconds


def test_it_refuses_a_duplicate_pool_name(api, member):
    pool(api, member)
    response = api.as_(member).post("/api/pools", POOL)
    assert response.status_code == 409
    assert "already exists" in error(response)["message"]


def test_it_updates_a_pool_and_refuses_a_stale_version(api, member):
    pool(api, member)
    updated = api.as_(member).put("/api/pools/web", {"algorithm": "least_conn", "version": 1})
    assert updated.status_code == 200 and updated.json()["algorithm"] == "least_conn"
    assert updated.json()["version"] == 2
    stale = api.as_(member).put("/api/pools/web", {"algorithm": "random", "version": 1})
    assert stale.status_code == 409
    assert error(stale)["code"] == "version_conflict" and error(stale)["current_version"] == 2
    assert api.as_(member).get("/api/pools/web").json()["algorithm"] == "least_conn"


def test_it_updates_without_a_version_by_read_modify_write(api, member):
    pool(api, member)
    assert api.as_(member).put("/api/pools/web", {"sticky_sessions": True}).json()["sticky_sessions"] is True


def test_it_refuses_to_rename_a_pool(api, member):
    pool(api, member)
    response = api.as_(member).put("/api/pools/web", {"name": "other"})
    assert response.status_code == 400 and "renamed" in error(response)["fields"]["name"][0]


def test_it_answers_404_for_a_missing_pool(api, member):
    assert api.as_(member).get("/api/pools/nope").status_code == 404
    assert api.as_(member).put("/api/pools/nope", {"algorithm": "random"}).status_code == 404
    assert api.as_(member).delete("/api/pools/nope").status_code == 404


def test_it_refuses_to_delete_a_pool_that_routes_use_unless_forced(api, member):
    pool(api, member)
    be = backend(api, member)
    rt = route(api, member)
    refused = api.as_(member).delete("/api/pools/web")
    assert refused.status_code == 409 and error(refused)["code"] == "pool_in_use"
    assert "force=true" in error(refused)["message"]
    assert api.as_(member).get(f"/api/routes/{rt['id']}").status_code == 200
    forced = api.as_(member).delete("/api/pools/web?force=true")
    assert forced.status_code == 200
    removed = {(item["type"], item["id"]) for item in forced.json()["removed"]}
    assert {("pool", "web"), ("route", rt["id"]), ("backend", be["id"])} == removed
    assert api.as_(member).get(f"/api/routes/{rt['id']}").status_code == 404
    assert api.as_(member).get(f"/api/backends/{be['id']}").status_code == 404


def test_it_deletes_an_unused_pool_with_its_backends(api, member):
    pool(api, member)
    be = backend(api, member)
    assert api.as_(member).delete("/api/pools/web").status_code == 200
    assert api.as_(member).get(f"/api/backends/{be['id']}").status_code == 404
    assert api.as_(member).get("/api/backends").json()["total_count"] == 0


def test_it_lets_viewers_read_but_not_write(api, member, viewer):
    pool(api, member)
    assert api.as_(viewer).get("/api/pools").status_code == 200
    assert api.as_(viewer).post("/api/pools", {"name": "x"}).status_code == 403
    assert api.as_(viewer).put("/api/pools/web", {"algorithm": "random"}).status_code == 403
    assert api.as_(viewer).delete("/api/pools/web").status_code == 403


def test_it_requires_authentication(api):
    assert api.get("/api/pools").status_code == 401


def test_it_accepts_form_encoded_bodies_from_the_browsable_api(api, member):
    response = api.as_(member).post("/api/pools", {"name": "form", "algorithm": "random", "sticky_sessions": "true"},
                                    format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["sticky_sessions"] is True
