"""The tenant plan's limits on pools, backends and routes: a clear 403 naming the limit."""

from __future__ import annotations

import pytest

from tests.balancer.helpers import error
from tests.support.actors import make_tenant


@pytest.fixture
def free_owner():
    _, owner = make_tenant("Tiny Co", "owner@tiny.test", plan="free")  # 2 pools, 6 backends, 4 routes
    return owner


def test_it_refuses_a_pool_over_the_plan_limit(api, free_owner):
    for name in ("a", "b"):
        assert api.as_(free_owner).post("/api/pools", {"name": name}).status_code == 201
    response = api.as_(free_owner).post("/api/pools", {"name": "c"})
    assert response.status_code == 403
    body = error(response)
    assert body["code"] == "limit_exceeded" and body["limit"] == "max_pools" and body["maximum"] == 2
    assert "max_pools" in body["message"] and "upgrade" in body["message"]


def test_it_refuses_backends_and_routes_over_the_plan_limit(api, free_owner):
    api.as_(free_owner).post("/api/pools", {"name": "web"})
    for n in range(6):
        assert api.as_(free_owner).post("/api/backends", {"address": f"10.0.0.{n + 1}:80", "pool": "web"}
                                        ).status_code == 201
    over = api.as_(free_owner).post("/api/backends", {"address": "10.0.0.99:80", "pool": "web"})
    assert over.status_code == 403 and error(over)["limit"] == "max_backends"
    for n in range(4):
        assert api.as_(free_owner).post("/api/routes", {"host": f"h{n}.tiny.test", "pool": "web"}).status_code == 201
    over = api.as_(free_owner).post("/api/routes", {"host": "h9.tiny.test", "pool": "web"})
    assert over.status_code == 403 and error(over)["limit"] == "max_routes"


def test_it_counts_a_whole_bulk_or_import_against_the_limit(api, free_owner):
    bulk = api.as_(free_owner).post("/api/bulk", {"operations": [
        {"op": "create", "type": "pool", "data": {"name": n}} for n in ("a", "b", "c")]})
    assert bulk.status_code == 403 and error(bulk)["limit"] == "max_pools"
    imported = api.as_(free_owner).post("/api/config/import", {"pools": [{"name": n} for n in ("a", "b", "c")],
                                                                         "routes": []})
    assert imported.status_code == 403
    validated = api.as_(free_owner).post("/api/config/validate", {"pools": [{"name": n} for n in "abc"],
                                                                          "routes": []}).json()
    assert validated["valid"] is False and validated["errors"][0]["path"] == "max_pools"
    assert api.as_(free_owner).get("/api/pools").json()["total_count"] == 0


def test_it_counts_collections_where_tenant_usage_reads_them(api, free_owner):
    from tenants.services import tenant_counts

    api.as_(free_owner).post("/api/pools", {"name": "web"})
    api.as_(free_owner).post("/api/backends", {"address": "10.0.0.1:80", "pool": "web"})
    api.as_(free_owner).post("/api/routes", {"host": "a.tiny.test", "pool": "web"})
    counts = tenant_counts(free_owner.tenant_id)
    assert (counts["pools"], counts["backends"], counts["routes"]) == (1, 1, 1)
