"""Every change: tenant config version, routing version, compiled fragment, event and audit, together."""

from __future__ import annotations

import json
import time

from balancer.models import PLATFORM_HEALTH_CHECK
from tests.balancer.helpers import audit_actions, backend, fragment, pool, route, routing_version
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def test_it_compiles_the_fragment_of_the_contract(api, member, tenant_a):
    pool(api, member, health_check={"path": "/ping", "interval": "10s"})
    be = backend(api, member, weight=7, region="eu-west", health_check={"timeout": "1s", "expected_status": [200, 204]})
    rt = route(api, member, "acme-corp.localhost", max_body_bytes=2048)
    route(api, member, "unproved.example.com")  # stored, not served: the tenant has not proved the domain
    table = fragment(tenant_a["id"])
    assert table["tenant_id"] == tenant_a["id"] and table["active"] is True and table["config_version"] == 4
    assert table["hosts"] == ["acme-corp.localhost"]
    assert table["routes"] == [{"id": rt["id"], "host": "acme-corp.localhost", "path_prefix": "/", "pool": "web",
                                "max_body_bytes": 2048}]
    web = table["pools"]["web"]
    assert web["name"] == "web" and web["algorithm"] == "round_robin" and web["sticky_sessions"] is False
    assert web["backends"] == [{
        "id": be["id"], "address": "10.0.0.1:8080", "weight": 7, "enabled": True, "state": "active",
        "region": "eu-west",
        "health_check": {**PLATFORM_HEALTH_CHECK, "path": "/ping", "interval": 10.0, "timeout": 1.0,
                         "expected_status": [200, 204]},
    }]


def test_it_bumps_both_versions_with_every_change(api, member, tenant_a):
    before = routing_version()
    pool(api, member)
    assert routing_version() == before + 1
    api.as_(member).put("/api/pools/web", {"algorithm": "random"})
    assert routing_version() == before + 2
    assert api.as_(member).get("/api/config").json()["config_version"] == 2
    assert fragment(tenant_a["id"])["pools"]["web"]["algorithm"] == "random"


def test_it_writes_nothing_for_a_change_that_changes_nothing(api, member):
    pool(api, member)
    before = routing_version()
    assert api.as_(member).put("/api/pools/web", {"algorithm": "round_robin"}).status_code == 200
    assert routing_version() == before


def test_it_publishes_a_routing_event_with_the_new_version(api, member, tenant_a):
    pubsub = get_redis().pubsub()
    pubsub.subscribe(keys.events_channel("routing"))
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    pool(api, member)
    deadline = time.time() + 5
    message = None
    while message is None and time.time() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
    pubsub.close()
    assert json.loads(message["data"]) == {"type": "routing.changed", "version": routing_version(),
                                           "tenant_id": tenant_a["id"]}


def test_it_records_every_change_in_the_audit_log(api, member, tenant_a):
    pool(api, member)
    be = backend(api, member)
    rt = route(api, member)
    api.as_(member).put(f"/api/backends/{be['id']}", {"weight": 3})
    api.as_(member).delete(f"/api/routes/{rt['id']}")
    actions = audit_actions(tenant_a["id"])
    assert actions[-5:] == ["pool.create", "backend.create", "route.create", "backend.update", "route.delete"]
    entries = api.as_(tenant_a["admin"]).get("/api/audit?object_type=backend").json()
    assert any(e["changes"].get("weight") == [100, 3] for e in entries["items"])


def test_it_leaves_no_trace_of_a_refused_change(api, member, tenant_a):
    pool(api, member)
    version, audit_length = routing_version(), len(audit_actions(tenant_a["id"]))
    assert api.as_(member).post("/api/backends", {"address": "nope", "pool": "web"}).status_code == 400
    assert routing_version() == version and len(audit_actions(tenant_a["id"])) == audit_length


def test_it_keeps_each_tenant_in_its_own_fragment(api, member, outsider, tenant_a):
    pool(api, member)
    pool(api, outsider, "theirs")
    table = get_redis().hgetall(keys.routing_table())
    assert set(table) == {tenant_a["id"], outsider.tenant_id}
    assert list(json.loads(table[outsider.tenant_id])["pools"]) == ["theirs"]


def test_it_recompiles_and_wakes_proxies_on_reload(api, member, tenant_a):
    pool(api, member)
    before = routing_version()
    response = api.as_(member).post("/api/reload")
    assert response.status_code == 200 and response.json()["routing_version"] == before + 1
    assert response.json()["config_version"] == 1
    assert "config.reload" in audit_actions(tenant_a["id"])
    assert api.as_(tenant_a["viewer"]).post("/api/reload").status_code == 403


def test_it_adds_one_summary_entry_for_a_bulk_or_an_import(api, member, tenant_a):
    api.as_(member).post("/api/bulk", {"operations": [
        {"op": "create", "type": "pool", "data": {"name": "a"}},
        {"op": "create", "type": "pool", "data": {"name": "b"}}]})
    api.as_(member).post("/api/config/import", {"pools": [{"name": "a"}], "routes": []})
    api.as_(member).post("/api/config/versions/1/rollback")
    entries = api.as_(tenant_a["admin"]).get("/api/audit?object_type=config").json()["items"]
    by_action = {e["action"]: e["changes"] for e in entries}
    assert by_action["bulk"]["objects_changed"] == [None, 2]
    assert by_action["config.import"]["config_version"] == [1, 2]
    assert by_action["config.rollback"]["rolled_back_to"] == [None, 1]
    assert [a for a in audit_actions(tenant_a["id"]) if a.startswith("pool.")] == [
        "pool.create", "pool.create", "pool.delete", "pool.create"]
