"""A tenant's suspension and deletion reach the balancer without tenants importing it
(tenants/lifecycle.py, balancer/lifecycle.py): the balancer's part is staged into the tenant's own
atomic write, so both commit together or not at all."""

from __future__ import annotations

import pytest

from balancer.snapshot import ROUTING_RACE
from tenants import lifecycle
from tenants.audit import Actor
from tenants.services import delete_tenant
from tenants.store import TenantStore
from tests.balancer.helpers import audit_actions, fragment, pool, route, routing_version
from tests.support.domains import prove_by_dns
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.errors import Conflict, NotFound


def test_it_takes_a_deleted_tenant_off_the_data_plane_in_the_same_write(api, member, outsider, tenant_a,
                                                                        dns_zone):
    pool(api, member)
    prove_by_dns(api, member, dns_zone, "shop.example.com")
    route(api, member, "shop.example.com")
    version = routing_version()
    delete_tenant(TenantStore().get(tenant_a["id"]), Actor.system())
    # One write: the record, the fragment, the claim and the pending check go; the version moves once.
    assert TenantStore().find(tenant_a["id"]) is None
    assert fragment(tenant_a["id"]) is None and routing_version() == version + 1
    assert get_redis().get(keys.host_claim("shop.example.com")) is None
    assert not [m for m in get_redis().zrange(keys.domains_pending(), 0, -1) if m.startswith(tenant_a["id"])]
    # The host is free for another tenant to prove and route.
    pool(api, outsider, "theirs")
    prove_by_dns(api, outsider, dns_zone, "shop.example.com")
    assert api.as_(outsider).post("/api/routes", {"host": "shop.example.com", "pool": "theirs"}).status_code == 201


def test_it_deletes_through_the_api_and_takes_the_fragment_with_it(api, member, platform_admin, tenant_a):
    pool(api, member)
    route(api, member, "early.example.com")
    assert fragment(tenant_a["id"]) is not None
    assert api.as_(platform_admin).delete(f"/api/tenants/{tenant_a['id']}").status_code == 204
    assert fragment(tenant_a["id"]) is None


def test_it_keeps_the_fragment_when_the_tenant_delete_fails(api, member, tenant_a):
    pool(api, member)
    route(api, member, "kept.example.com")
    tenant = TenantStore().get(tenant_a["id"])
    before, version = fragment(tenant.id), routing_version()
    get_redis().delete(keys.tenant_record(tenant.id))  # the tenant's own part cannot commit now
    with pytest.raises(NotFound):
        delete_tenant(tenant, Actor.system())
    assert fragment(tenant.id) == before and routing_version() == version


def test_it_suspends_and_reactivates_the_routing_fragment_in_the_same_write(api, member, platform_admin,
                                                                             tenant_a):
    pool(api, member)
    route(api, member, "paused.example.com")
    version = routing_version()
    url = f"/api/tenants/{tenant_a['id']}"
    assert api.as_(platform_admin).put(url, {"active": False}).status_code == 200
    assert fragment(tenant_a["id"])["active"] is False and routing_version() == version + 1
    assert audit_actions(tenant_a["id"])[-2:] == ["tenant.update", "config.reload"]
    assert api.as_(platform_admin).put(url, {"active": True}).status_code == 200
    assert fragment(tenant_a["id"])["active"] is True and routing_version() == version + 2
    # A change that leaves ``active`` alone does not touch the routing table.
    assert api.as_(platform_admin).put(url, {"name": "Renamed"}).status_code == 200
    assert routing_version() == version + 2


def test_it_retries_a_lifecycle_write_that_lost_a_registered_race():
    attempts = []

    def attempt_once() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise Conflict(ROUTING_RACE)  # registered by balancer at startup
        return "done"

    assert lifecycle.run(attempt_once) == "done" and len(attempts) == 3


def test_it_does_not_retry_a_conflict_that_is_not_a_race():
    attempts = []

    def attempt_once() -> None:
        attempts.append(1)
        raise Conflict("tenant 't1' not found")

    with pytest.raises(Conflict):
        lifecycle.run(attempt_once)
    assert len(attempts) == 1


def test_it_refuses_an_unknown_lifecycle_event():
    with pytest.raises(ValueError, match="unknown tenant lifecycle event"):
        lifecycle.register("tenant.renamed", lambda batch, tenant, actor, client: None)
