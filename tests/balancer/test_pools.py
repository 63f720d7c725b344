"""Pools: create, read, update with versions, delete with and without force, validation, roles."""

from __future__ import annotations

import pytest

POOL = {"name": "web", "algorithm": "round_robin", "sticky_sessions": False}


def make_pool(api, actor, **fields):
    response = api.as_(actor).post("/api/pools", {**POOL, **fields})
    assert response.status_code == 201, response.json()
    return response.json()


def test_it_creates_lists_and_reads_a_pool(api, member, viewer):
    created = make_pool(api, member, health_check={"path": "/ping", "interval": "10s", "timeout": "500ms"})
    assert created["name"] == "web" and created["id"] == "web" and created["version"] == 1
    assert created["health_check"] == {"path": "/ping", "interval": 10.0, "timeout": 0.5}
    listing = api.as_(viewer).get("/api/pools").json()
    assert listing["total_count"] == 1 and listing["items"][0]["name"] == "web"
    assert listing["items"][0]["backend_count"] == 0
    detail = api.as_(viewer).get("/api/pools/web").json()
    assert detail["algorithm"] == "round_robin" and detail["backends"] == []


@pytest.mark.parametrize("algorithm", ["round_robin", "weighted_round_robin", "least_conn", "ip_hash", "random",
                                       "least_latency", "adaptive", "geo_proximity"])
def test_it_accepts_every_documented_algorithm(api, member, algorithm):
    assert make_pool(api, member, name=f"p-{algorithm.replace('_', '-')}", algorithm=algorithm)["algorithm"] == algorithm


def test_it_rejects_an_unknown_algorithm_naming_the_valid_ones(api, member):
    response = api.as_(member).post("/api/pools", {**POOL, "algorithm": "fastest"})
    assert response.status_code == 400
    body = response.json()["error"]
    assert "least_conn" in body["fields"]["algorithm"][0]
    assert api.as_(member).get("/api/pools").json()["total_count"] == 0
