"""Races between writers: exactly one wins a unique name or host; nothing is half-written."""

from __future__ import annotations

from tests.balancer.helpers import fragment, pool
from tests.support.actors import Api
from tests.support.parallel import run_parallel
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def _race(calls) -> list:
    return run_parallel(len(calls), lambda i: calls[i]())


def test_it_gives_a_contested_host_to_exactly_one_tenant(api, member, outsider, tenant_a):
    pool(api, member)
    pool(api, outsider, "web")
    actors = [member, outsider] * 5
    responses = _race([lambda a=a: Api().as_(a).post("/api/routes", {"host": "race.example.com", "pool": "web"})
                       for a in actors])
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert get_redis().get(keys.route_claim("race.example.com", "/")) == winner["id"]
    routed = [t for t in (tenant_a["id"], outsider.tenant_id) if fragment(t)["routes"]]
    assert len(routed) == 1


def test_it_creates_a_contested_pool_name_once(api, member):
    responses = _race([lambda: Api().as_(member).post("/api/pools", {"name": "same"}) for _ in range(10)])
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert api.as_(member).get("/api/pools").json()["total_count"] == 1
