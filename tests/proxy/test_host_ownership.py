"""Host ownership end to end: the control plane's API writes, a real proxy process serves (issue 12, point 1).

Tenant B (``outsider``) owns a host; tenant A (``member``) tries to take a path of it, or every name under a
wildcard. The proxy must never send B's names to A's backend.
"""

from __future__ import annotations

import json

from balancer.proxy.config import Compiler
from balancer.proxy.state import StateRegistry
from tests.proxy.support import backend_name, fragment, get, pool, route, uid
from tests.support.domains import prove_by_dns
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def serve(api, actor, host: str, target, prefix: str = "/") -> dict:
    """Pool ``web`` over the backend ``target`` (once per tenant), then a route for host + prefix."""
    if api.as_(actor).get("/api/pools/web").status_code == 404:
        assert api.as_(actor).post("/api/pools", {"name": "web"}).status_code == 201
        assert api.as_(actor).post("/api/backends", {"address": target.address, "pool": "web"}).status_code == 201
    return api.as_(actor).post("/api/routes", {"host": host, "path_prefix": prefix, "pool": "web"})


def synced(proxy) -> None:
    proxy.wait_version(int(get_redis().get(keys.routing_version()) or 0))


def test_it_never_sends_a_path_of_another_tenants_host_to_the_hijacker(api, proxy, farm, member, outsider,
                                                                       dns_zone):
    theirs, mine = farm.start("b-owner"), farm.start("a-hijacker")
    prove_by_dns(api, outsider, dns_zone, "b.example.test")
    assert serve(api, outsider, "b.example.test", theirs).status_code == 201
    hijack = serve(api, member, "b.example.test", mine, prefix="/hijack")
    assert hijack.status_code == 409, hijack.json()
    synced(proxy)
    status, _, body = get(proxy, "b.example.test", "/hijack/secrets")
    assert status == 200 and backend_name(body) == "b-owner"
    assert mine.requests == 0


def test_it_never_serves_an_unproved_wildcard(api, proxy, farm, member, outsider, dns_zone):
    mine = farm.start("a-wildcard")
    created = serve(api, member, "*.example.test", mine)
    assert created.status_code == 201 and created.json()["status"] == "pending_verification"
    synced(proxy)
    assert get(proxy, "c.example.test", "/")[0] == 404
    assert mine.requests == 0


def test_it_never_lets_a_wildcard_answer_for_an_exact_name_another_tenant_holds(api, proxy, farm, member,
                                                                                outsider, dns_zone):
    wild, exact = farm.start("a-wildcard"), farm.start("b-exact")
    prove_by_dns(api, member, dns_zone, "*.wild.test")
    assert serve(api, member, "*.wild.test", wild).status_code == 201
    prove_by_dns(api, outsider, dns_zone, "b.wild.test")
    synced(proxy)
    assert get(proxy, "b.wild.test", "/")[0] == 503  # held by B, which routes nothing yet: never A's
    assert serve(api, outsider, "b.wild.test", exact, prefix="/api").status_code == 201
    synced(proxy)
    assert backend_name(get(proxy, "b.wild.test", "/api/x")[2]) == "b-exact"
    assert get(proxy, "b.wild.test", "/other")[0] == 503
    assert backend_name(get(proxy, "c.wild.test", "/other")[2]) == "a-wildcard"
    assert wild.requests == 1  # only c.wild.test: nothing of B's name reached A's backend


def test_it_serves_a_platform_name_at_once(api, proxy, farm, member):
    site = farm.start("platform")
    assert serve(api, member, "acme-corp.localhost", site).json()["status"] == "active"
    synced(proxy)
    assert backend_name(get(proxy, "acme-corp.localhost", "/")[2]) == "platform"


# --- the compile-time defence, on fragments written straight into the table ------------------
def _compile(table: dict[str, dict]):
    compiler = Compiler(StateRegistry(eject_after=3, eject_base=2.0))
    return compiler.compile(1, {tenant: json.dumps(frag) for tenant, frag in table.items()}, {})


def test_it_serves_neither_tenant_when_two_fragments_carry_one_host():
    one, two = uid("tn"), uid("tn")
    spec = {"id": uid("be"), "address": "10.0.0.1:80"}
    snapshot = _compile({
        one: fragment(one, [route("dup.test", "web")], {"web": pool("web", [spec])}),
        two: fragment(two, [route("dup.test", "web", prefix="/x")], {"web": pool("web", [spec])}),
    })
    found = snapshot.lookup("dup.test", "/x/y")
    assert found is not None and found.pool is None  # the closing entry: answered 503, by no tenant's backend
    assert snapshot.lookup("dup.test", "/").pool is None


def test_it_keeps_a_tenants_own_wildcard_behind_its_exact_routes_and_closes_the_rest():
    owner, other = uid("tn"), uid("tn")
    spec = {"id": uid("be"), "address": "10.0.0.1:80"}
    frag = fragment(owner, [route("www.d.test", "exact", prefix="/api"), route("*.d.test", "wild", prefix="/w")],
                    {"exact": pool("exact", [spec]), "wild": pool("wild", [spec])})
    theirs = fragment(other, [route("*.test", "x")], {"x": pool("x", [spec])})
    snapshot = _compile({owner: frag, other: theirs})
    assert snapshot.lookup("www.d.test", "/api/1").pool.name == "exact"
    assert snapshot.lookup("www.d.test", "/w/1").pool.name == "wild"  # the owner's own wildcard still applies
    assert snapshot.lookup("www.d.test", "/").pool is None  # never the other tenant's *.test
    assert snapshot.lookup("elsewhere.test", "/").tenant_id == other
