"""Routes: exact and wildcard hosts, path prefixes, global host ownership, updates and deletes."""

from __future__ import annotations

import pytest

from tests.balancer.helpers import error, pool, route
from tests.support.domains import prove_by_dns
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


@pytest.fixture
def web(api, member):
    return pool(api, member)


@pytest.mark.parametrize("host, stored", [("api.example.com", "api.example.com"),
                                          ("API.Example.COM", "api.example.com"),
                                          ("*.example.com", "*.example.com"), ("intranet", "intranet")])
def test_it_accepts_exact_and_wildcard_hosts(api, member, web, host, stored):
    created = route(api, member, host)
    assert created["host"] == stored and created["path_prefix"] == "/" and created["id"].startswith("rt_")


@pytest.mark.parametrize("host", ["api.*.com", "**.example.com", "http://api.example.com", "api.example.com:8080",
                                  "exa mple.com", "-bad.example.com", ""])
def test_it_rejects_malformed_hosts(api, member, web, host):
    response = api.as_(member).post("/api/routes", {"host": host, "pool": "web"})
    assert response.status_code == 400 and "host" in error(response)["fields"]


@pytest.mark.parametrize("prefix, ok", [("/", True), ("/api/v1", True), ("api", False), ("/a b", False),
                                        ("/x?y", False)])
def test_it_requires_path_prefixes_to_start_with_a_slash(api, member, web, prefix, ok):
    response = api.as_(member).post("/api/routes", {"host": "a.example.com", "path_prefix": prefix, "pool": "web"})
    assert response.status_code == (201 if ok else 400)


def test_it_requires_an_existing_pool(api, member):
    response = api.as_(member).post("/api/routes", {"host": "a.example.com", "pool": "ghost"})
    assert response.status_code == 400 and "ghost" in error(response)["fields"]["pool"][0]


def test_it_never_lets_two_tenants_route_the_same_host_on_any_prefix(api, member, outsider, web, dns_zone):
    prove_by_dns(api, member, dns_zone, "shop.example.com")
    route(api, member, "shop.example.com", path_prefix="/")
    pool(api, outsider, "theirs")
    taken = api.as_(outsider).post("/api/routes", {"host": "shop.example.com", "pool": "theirs"})
    assert taken.status_code == 409 and "another tenant" in error(taken)["message"]
    assert api.as_(outsider).get("/api/routes").json()["total_count"] == 0
    # A host belongs to one tenant across every path prefix.
    assert api.as_(outsider).post("/api/routes", {"host": "shop.example.com", "path_prefix": "/blog",
                                                  "pool": "theirs"}).status_code == 409


def test_it_refuses_a_duplicate_route_in_the_tenant(api, member, web):
    route(api, member)
    response = api.as_(member).post("/api/routes", {"host": "api.example.com", "pool": "web"})
    assert response.status_code == 409


def test_it_serves_a_route_moved_onto_a_verified_host(api, member, outsider, web, dns_zone):
    created = route(api, member, "old.example.com")
    assert created["status"] == "pending_verification"
    prove_by_dns(api, member, dns_zone, "new.example.com")
    updated = api.as_(member).put(f"/api/routes/{created['id']}", {"host": "new.example.com", "version": 1})
    assert updated.status_code == 200 and updated.json()["host"] == "new.example.com"
    assert updated.json()["status"] == "active"
    assert get_redis().get(keys.host_claim("new.example.com")) == member.tenant_id
    pool(api, outsider, "theirs")
    assert api.as_(outsider).post("/api/routes", {"host": "old.example.com", "pool": "theirs"}).status_code == 201


def test_it_frees_the_host_when_a_route_is_deleted(api, member, outsider, web):
    created = route(api, member)
    assert api.as_(member).delete(f"/api/routes/{created['id']}").status_code == 204
    assert api.as_(member).get(f"/api/routes/{created['id']}").status_code == 404
    pool(api, outsider, "theirs")
    assert api.as_(outsider).post("/api/routes", {"host": "api.example.com", "pool": "theirs"}).status_code == 201


def test_it_updates_a_route_with_optimistic_concurrency(api, member, web):
    created = route(api, member, max_body_bytes=1024)
    assert created["max_body_bytes"] == 1024
    pool(api, member, "api")
    moved = api.as_(member).put(f"/api/routes/{created['id']}", {"pool": "api", "version": 1})
    assert moved.json()["pool"] == "api" and moved.json()["version"] == 2
    assert api.as_(member).put(f"/api/routes/{created['id']}", {"pool": "web", "version": 1}).status_code == 409
    bad = api.as_(member).put(f"/api/routes/{created['id']}", {"max_body_bytes": -1})
    assert bad.status_code == 400 and "max_body_bytes" in error(bad)["fields"]


def test_it_filters_routes_by_pool(api, member, web):
    pool(api, member, "api")
    route(api, member, "a.example.com", "web")
    route(api, member, "b.example.com", "api")
    assert [r["host"] for r in api.as_(member).get("/api/routes?pool=api").json()["items"]] == ["b.example.com"]


def test_it_answers_404_for_ids_that_cannot_exist(api, member, web):
    for path in ("/api/routes/a%20b", "/api/routes/%7Bx%7D", "/api/backends/a%20b", "/api/pools/a%20b"):
        assert api.as_(member).get(path).status_code == 404, path
        assert api.as_(member).put(path, {"weight": 1}).status_code == 404, path
        assert api.as_(member).delete(path).status_code == 404, path
