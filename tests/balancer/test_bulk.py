"""POST /api/bulk: all-or-nothing, per-item results and errors, idempotency, concurrency."""

from __future__ import annotations

from balancer.models import ALGORITHMS
from tests.balancer.helpers import audit_actions, backend, error, fragment, pool, routing_version
from tests.support.actors import Api
from tests.support.parallel import run_parallel


def ops(*items):
    return {"operations": list(items)}


def test_it_applies_creates_updates_and_deletes_together(api, member, tenant_a):
    pool(api, member, "old")
    doomed = backend(api, member, "10.0.0.9:80", "old")
    response = api.as_(member).post("/api/bulk", ops(
        {"op": "create", "type": "pool", "data": {"name": "web", "algorithm": "least_conn"}},
        {"op": "create", "type": "backend", "data": {"address": "10.0.0.1:80", "pool": "web"}},
        {"op": "create", "type": "route", "data": {"host": "acme-corp.localhost", "pool": "web"}},
        {"op": "update", "type": "pool", "id": "old", "data": {"sticky_sessions": True}},
        {"op": "delete", "type": "backend", "id": doomed["id"]},
    ))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["applied"] == 5 and body["config_version"] == 3
    assert [r["status"] for r in body["results"]] == [201, 201, 201, 200, 200]
    assert body["results"][1]["object"]["healthy"] is None
    assert body["results"][4]["id"] == doomed["id"]
    assert fragment(tenant_a["id"])["routes"][0]["host"] == "acme-corp.localhost"  # the platform name: served
    assert sorted(audit_actions(tenant_a["id"])[-6:]) == ["backend.create", "backend.delete", "bulk", "pool.create",
                                                          "pool.update", "route.create"]
    assert api.as_(member).get("/api/backends").json()["total_count"] == 1


def test_it_rejects_the_whole_batch_when_one_item_is_invalid(api, member, tenant_a):
    version = routing_version()
    response = api.as_(member).post("/api/bulk", ops(
        {"op": "create", "type": "pool", "data": {"name": "web"}},
        {"op": "create", "type": "backend", "data": {"address": "10.0.0.1:99999", "pool": "web"}},
        {"op": "create", "type": "route", "data": {"host": "ok.example.com", "pool": "web"}},
        {"op": "explode", "type": "pool"},
    ))
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "bulk_rejected" and "nothing was changed" in body["message"]
    assert [item["index"] for item in body["items"]] == [1, 3]
    assert "operations[1].address" in body["fields"] and "operations[3].op" in body["fields"]
    assert routing_version() == version
    assert api.as_(member).get("/api/pools").json()["total_count"] == 0


def test_it_reports_conflicts_and_missing_objects_per_item(api, member):
    pool(api, member)
    response = api.as_(member).post("/api/bulk", ops(
        {"op": "update", "type": "pool", "id": "web", "version": 9, "data": {"algorithm": "random"}},
        {"op": "delete", "type": "route", "id": "rt_missing"},
    ))
    assert response.status_code == 400
    statuses = [item["status"] for item in error(response)["items"]]
    assert statuses == [409, 404]
    assert api.as_(member).get("/api/pools/web").json()["algorithm"] == "round_robin"


def test_it_sees_earlier_items_of_the_same_batch(api, member):
    response = api.as_(member).post("/api/bulk", ops(
        {"op": "create", "type": "pool", "data": {"name": "a"}},
        {"op": "create", "type": "route", "data": {"host": "a.example.com", "pool": "a"}},
        {"op": "delete", "type": "pool", "id": "a", "force": True},
        {"op": "create", "type": "pool", "data": {"name": "a", "algorithm": "random"}},
    ))
    assert response.status_code == 200
    assert api.as_(member).get("/api/pools/a").json()["algorithm"] == "random"
    assert api.as_(member).get("/api/routes").json()["total_count"] == 0


def test_it_lets_one_batch_free_a_host_and_take_it_again(api, member):
    pool(api, member)
    first = api.as_(member).post("/api/routes", {"host": "x.example.com", "pool": "web"}).json()
    response = api.as_(member).post("/api/bulk", ops(
        {"op": "delete", "type": "route", "id": first["id"]},
        {"op": "create", "type": "route", "data": {"host": "x.example.com", "pool": "web", "max_body_bytes": 10}},
    ))
    assert response.status_code == 200, response.json()
    routes = api.as_(member).get("/api/routes").json()["items"]
    assert len(routes) == 1 and routes[0]["max_body_bytes"] == 10


def test_it_refuses_malformed_bulk_bodies(api, member, viewer):
    assert api.as_(viewer).post("/api/bulk", ops({"op": "create", "type": "pool", "data": {"name": "x"}})
                                ).status_code == 403
    assert api.as_(member).post("/api/bulk", {"operations": []}).status_code == 400
    assert api.as_(member).post("/api/bulk", {"operations": "all"}).status_code == 400
    assert api.as_(member).post("/api/bulk", {"operations": [1]}).status_code == 400
    assert api.as_(member).post("/api/bulk", {"operations": [{"op": "update", "type": "pool"}]}).status_code == 400


def test_it_replays_a_bulk_sent_again_with_the_same_idempotency_key(api, member, tenant_a):
    body = ops({"op": "create", "type": "pool", "data": {"name": "web"}},
               {"op": "create", "type": "backend", "data": {"address": "10.0.0.1:80", "pool": "web"}})
    client = api.as_(member).with_headers(HTTP_IDEMPOTENCY_KEY="bulk-1")
    first = client.post("/api/bulk", body)
    version = routing_version()
    again = client.post("/api/bulk", body)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert routing_version() == version
    assert api.as_(member).get("/api/backends").json()["total_count"] == 1
    reused = client.post("/api/bulk", ops({"op": "create", "type": "pool", "data": {"name": "other"}}))
    assert reused.status_code == 422 and error(reused)["code"] == "idempotency_key_reused"


def _run_parallel(bodies: list[dict], actor) -> list:
    clients = [Api().as_(actor) for _ in bodies]
    return run_parallel(len(bodies), lambda i: clients[i].post("/api/bulk", bodies[i]))


def test_it_serialises_20_parallel_conflicting_bulks(api, member, tenant_a):
    pool(api, member)
    shared = backend(api, member, "10.0.0.1:80")
    algorithms = [ALGORITHMS[i % len(ALGORITHMS)] for i in range(20)]
    bodies = [ops(
        {"op": "update", "type": "pool", "id": "web", "data": {"algorithm": algorithms[i]}},
        {"op": "update", "type": "backend", "id": shared["id"], "data": {"weight": i + 1}},
        {"op": "create", "type": "backend", "data": {"address": f"10.0.1.{i + 1}:80", "pool": "web"}},
    ) for i in range(20)]
    responses = _run_parallel(bodies, member)
    assert [r.status_code for r in responses] == [200] * 20
    versions = sorted(r.json()["config_version"] for r in responses)
    assert versions == list(range(3, 23))  # one distinct version each: a serial order
    # Every intermediate version is exactly one whole bulk applied on top of the previous one.
    history = {v["version"]: v for v in api.as_(member).get("/api/config/versions?limit=100").json()["items"]}
    assert set(range(3, 23)) <= set(history)
    for version in range(3, 23):
        document = api.as_(member).get(f"/api/config/versions/{version}").json()["document"]
        web = document["pools"][0]
        weights = {b["address"]: b["weight"] for b in web["backends"]}
        which = weights["10.0.0.1:80"] - 1
        assert web["algorithm"] == algorithms[which]
        assert f"10.0.1.{which + 1}:80" in weights and len(weights) == version - 1
    final = api.as_(member).get("/api/config").json()
    table = fragment(tenant_a["id"])
    assert table["config_version"] == final["config_version"] == 22
    assert len(table["pools"]["web"]["backends"]) == 21


def test_it_lets_exactly_one_of_20_versioned_bulks_win(api, member):
    pool(api, member)
    bodies = [ops(
        {"op": "update", "type": "pool", "id": "web", "version": 1, "data": {"sticky_sessions": True}},
        {"op": "create", "type": "backend", "data": {"address": f"10.0.2.{i + 1}:80", "pool": "web"}},
    ) for i in range(20)]
    responses = _run_parallel(bodies, member)
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1 and codes.count(409) == 19
    assert api.as_(member).get("/api/backends").json()["total_count"] == 1
