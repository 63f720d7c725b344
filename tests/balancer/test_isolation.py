"""Tenant isolation: another tenant never sees or touches tenant A's balancer objects."""

from __future__ import annotations

import pytest

from tests.balancer.helpers import backend, pool, route
from tests.support.actors import add_actor
from tests.support.assertions import redis_dump
from tests.support.domains import claim, prove_by_dns


@pytest.fixture
def objects(api, member):
    pool(api, member)
    return {"backend": backend(api, member), "route": route(api, member)}


def test_it_hides_tenant_a_objects_from_lists(api, outsider, objects):
    for path in ("/api/pools", "/api/backends", "/api/routes", "/api/config/versions"):
        assert api.as_(outsider).get(path).json()["total_count"] == 0, path
    config = api.as_(outsider).get("/api/config").json()
    assert config["pools"] == [] and config["routes"] == []
    assert api.as_(outsider).get("/api/config/export").json()["pools"] == []
    assert api.as_(outsider).get("/api/status").json()["backends"]["total"] == 0
    assert api.as_(outsider).get("/api/metrics").json()["backends"] == []


def test_it_answers_404_for_tenant_a_objects(api, outsider, objects, member):
    be, rt = objects["backend"]["id"], objects["route"]["id"]
    for path in ("/api/pools/web", f"/api/backends/{be}", f"/api/routes/{rt}", "/api/config/versions/1"):
        assert api.as_(outsider).get(path).status_code == 404, path
    assert api.as_(outsider).put("/api/pools/web", {"algorithm": "random"}).status_code == 404
    assert api.as_(outsider).put(f"/api/backends/{be}", {"weight": 1}).status_code == 404
    assert api.as_(outsider).put(f"/api/routes/{rt}", {"path_prefix": "/x"}).status_code == 404
    assert api.as_(outsider).delete("/api/pools/web?force=true").status_code == 404
    assert api.as_(outsider).delete(f"/api/backends/{be}").status_code == 404
    assert api.as_(outsider).delete(f"/api/routes/{rt}").status_code == 404
    assert api.as_(outsider).post("/api/config/versions/1/rollback").status_code == 404
    bulk = api.as_(outsider).post("/api/bulk", {"operations": [{"op": "delete", "type": "backend", "id": be}]})
    assert bulk.status_code == 404
    # Tenant A is untouched.
    assert api.as_(member).get(f"/api/backends/{be}").json()["weight"] == 100
    assert api.as_(member).get("/api/pools/web").json()["version"] == 1


def test_it_keeps_imports_and_reloads_inside_the_callers_tenant(api, outsider, objects, member):
    assert api.as_(outsider).post("/api/config/import", {"pools": [], "routes": []}).status_code == 200
    assert api.as_(outsider).post("/api/reload").status_code == 200
    assert api.as_(member).get("/api/backends").json()["total_count"] == 1


def test_it_lets_a_platform_admin_act_in_the_tenant_it_names(api, platform_admin, tenant_a, objects):
    listing = api.as_(platform_admin, tenant_header=tenant_a["id"]).get("/api/backends").json()
    assert listing["total_count"] == 1
    assert api.as_(platform_admin).get("/api/backends").status_code == 403  # no tenant selected


def test_it_keeps_traffic_numbers_per_tenant(api, outsider, objects, tenant_a):
    import time

    from veloflux_site.storage import keys
    from veloflux_site.storage.connection import get_redis

    client = get_redis()
    client.hset(keys.tenant_metrics_total(tenant_a["id"]), mapping={"requests": 42})
    client.hset(keys.tenant_metrics_minute(tenant_a["id"], int(time.time() // 60)), mapping={"requests": 42})
    client.hset(keys.routing_health(), objects["backend"]["id"], "down")
    assert api.as_(outsider).get("/api/metrics").json()["totals"]["requests"] == 0
    assert api.as_(outsider).get("/api/analytics").json()["totals"]["requests"] == 0
    assert api.as_(outsider).get("/api/status").json()["status"] == "ok"
    assert api.as_(tenant_a["viewer"]).get("/api/analytics").json()["totals"]["requests"] == 42


def test_it_validates_documents_against_the_callers_own_tenant(api, outsider, objects):
    result = api.as_(outsider).post("/api/config/validate", {"pools": [{"name": "web"}], "routes": []}).json()
    assert result["valid"] is True and result["diff"]["pools"]["create"] == [{"name": "web"}]


def test_it_hides_tenant_a_domains_from_every_role_of_tenant_b(api, member, outsider, dns_zone):
    """Tenant B, whatever its role, gets 404 (viewers: 403 on writes) for tenant A's domain claims, verified or
    pending, and tenant A's Redis state does not change by a single byte (no check is even attempted)."""
    prove_by_dns(api, member, dns_zone, "shop.example.test")
    claim(api, member, "pending.example.test")
    b = outsider.tenant_id
    roles = {"owner": outsider, "admin": add_actor(b, "admin@outsider.test", "admin"),
             "member": add_actor(b, "member@outsider.test", "member"),
             "viewer": add_actor(b, "viewer@outsider.test", "viewer")}
    queries = dns_zone.queries
    before = redis_dump()
    for role, actor in roles.items():
        client = api.as_(actor)
        for host in ("shop.example.test", "pending.example.test"):
            assert client.get(f"/api/domains/{host}").status_code == 404, role
            for method, path in (("POST", f"/api/domains/{host}/verify"), ("DELETE", f"/api/domains/{host}")):
                status = client.request(method, path).status_code
                assert status == (403 if role == "viewer" else 404), (role, method, path, status)
            # Pointing X-Tenant-ID at tenant A changes nothing either.
            header = api.as_(actor, tenant_header=member.tenant_id)
            assert header.get(f"/api/domains/{host}").status_code == 404, role
        listed = client.get("/api/domains").json()["items"]
        assert [d["host"] for d in listed] == ["outsider-inc.localhost"], role
        assert redis_dump() == before, role
    assert dns_zone.queries == queries
