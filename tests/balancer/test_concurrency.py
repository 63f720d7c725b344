"""Races between writers: exactly one wins a unique name or host; nothing is half-written."""

from __future__ import annotations

from tests.balancer.helpers import fragment, pool
from tests.support.actors import Api
from tests.support.domains import claim
from tests.support.parallel import run_parallel
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def _race(calls) -> list:
    return run_parallel(len(calls), lambda i: calls[i]())


def test_it_gives_a_contested_host_to_exactly_one_tenant(api, member, outsider, tenant_a, dns_zone):
    for actor in (member, outsider):  # both claim it and both publish their proof: the first verify wins
        pool(api, actor, "web")
        assert Api().as_(actor).post("/api/routes", {"host": "race.example.com", "pool": "web"}).status_code == 201
        token = claim(api, actor, "race.example.com")["verification"]["dns_txt_value"]
        dns_zone.txt("_veloflux-challenge.race.example.com", token)
    actors = [member, outsider] * 5
    responses = _race([lambda a=a: Api().as_(a).post("/api/domains/race.example.com/verify") for a in actors])
    winner = get_redis().get(keys.host_claim("race.example.com"))
    assert winner in (tenant_a["id"], outsider.tenant_id)
    for actor, response in zip(actors, responses, strict=True):
        expected = 200 if actor.tenant_id == winner else 409
        assert response.status_code == expected, response.json()
    routed = [t for t in (tenant_a["id"], outsider.tenant_id) if fragment(t)["routes"]]
    assert routed == [winner]


def test_it_creates_a_contested_pool_name_once(api, member):
    responses = _race([lambda: Api().as_(member).post("/api/pools", {"name": "same"}) for _ in range(10)])
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert api.as_(member).get("/api/pools").json()["total_count"] == 1
