"""Entry points other apps call: purge_tenant (tenant deletion) and ensure_demo_setup (demo bootstrap)."""

from __future__ import annotations

import pytest

from balancer import services
from balancer.workspace import ItemError
from tenants.audit import Actor
from tenants.services import delete_tenant
from tenants.store import TenantStore
from tests.balancer.helpers import fragment, pool, route, routing_version
from tests.support.domains import prove_by_dns
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.errors import LimitExceeded


def test_it_purges_a_deleted_tenant_from_the_routing_table(api, member, outsider, tenant_a, dns_zone):
    pool(api, member)
    prove_by_dns(api, member, dns_zone, "shop.example.com")
    route(api, member, "shop.example.com")
    version = routing_version()
    delete_tenant(TenantStore().get(tenant_a["id"]), Actor.system())
    assert services.purge_tenant(tenant_a["id"]) == version + 1
    assert fragment(tenant_a["id"]) is None and routing_version() == version + 1
    assert get_redis().get(keys.host_claim("shop.example.com")) is None
    pool(api, outsider, "theirs")
    prove_by_dns(api, outsider, dns_zone, "shop.example.com")
    assert api.as_(outsider).post("/api/routes", {"host": "shop.example.com", "pool": "theirs"}).status_code == 201
    # Twice is harmless, and it never frees a claim another tenant now holds.
    services.purge_tenant(tenant_a["id"])
    assert get_redis().get(keys.host_claim("shop.example.com")) == outsider.tenant_id


def test_it_purges_before_the_tenant_keys_are_deleted_too(api, member, tenant_a):
    pool(api, member)
    route(api, member, "early.example.com")
    services.purge_tenant(tenant_a["id"])
    assert fragment(tenant_a["id"]) is None
    assert get_redis().get(keys.host_claim("early.example.com")) is None


def test_it_creates_a_demo_setup_once(tenant_a):
    first = services.ensure_demo_setup(tenant_a["id"], host="acme-corp.localhost",
                                       backend_addresses=["127.0.0.1:9001", "127.0.0.1:9002"])
    assert first["pool"].name == "demo" and len(first["backends"]) == 2
    assert first["route"].host == "acme-corp.localhost" and first["config_version"] == 1
    assert fragment(tenant_a["id"])["routes"][0]["host"] == "acme-corp.localhost"  # the platform name: served
    table = fragment(tenant_a["id"])
    assert [b["address"] for b in table["pools"]["demo"]["backends"]] == ["127.0.0.1:9001", "127.0.0.1:9002"]
    again = services.ensure_demo_setup(tenant_a["id"], host="acme-corp.localhost",
                                       backend_addresses=["127.0.0.1:9001", "127.0.0.1:9002"])
    assert again["config_version"] == 1 and [b.id for b in again["backends"]] == [b.id for b in first["backends"]]


def test_it_refuses_a_bad_demo_setup_with_a_clear_error(tenant_a):
    with pytest.raises(ItemError) as caught:
        services.ensure_demo_setup(tenant_a["id"], host="acme-corp.localhost", backend_addresses=["nope"])
    assert "address" in caught.value.fields


def test_it_applies_plan_limits_to_the_demo_setup():
    from tests.support.actors import make_tenant

    tenant_id, _ = make_tenant("Tiny", "tiny@example.test", plan="free")
    with pytest.raises(LimitExceeded):
        services.ensure_demo_setup(tenant_id, host="tiny.localhost",
                                   backend_addresses=[f"127.0.0.1:{9000 + n}" for n in range(7)])
