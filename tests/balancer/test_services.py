"""The entry point other apps call: ensure_demo_setup (demo bootstrap). A tenant's deletion and suspension
reach the balancer through tenants/lifecycle.py: tests/test_tenant_lifecycle.py."""

from __future__ import annotations

import pytest

from balancer import services
from balancer.workspace import ItemError
from tests.balancer.helpers import fragment
from veloflux_site.storage.errors import LimitExceeded


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
