"""geo_proximity is not built (the proxy has no client region): the API, bulk and import refuse it with a 400
instead of storing a pool that would silently run round robin; a pool stored before keeps loading and says so."""

from __future__ import annotations

import json

import pytest

from tests.balancer.helpers import error, fragment, pool, routing_version
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

REFUSED = "geo_proximity"


def _refusal_names_it(message: str) -> bool:
    return "geo_proximity" in message and "not implemented" in message and "round_robin" in message


def test_it_refuses_geo_proximity_on_create_and_update(api, member):
    response = api.as_(member).post("/api/pools", {"name": "web", "algorithm": REFUSED})
    assert response.status_code == 400, response.json()
    assert _refusal_names_it(error(response)["fields"]["algorithm"][0])
    assert api.as_(member).get("/api/pools").json()["total_count"] == 0

    pool(api, member)
    version = routing_version()
    response = api.as_(member).put("/api/pools/web", {"algorithm": REFUSED})
    assert response.status_code == 400 and _refusal_names_it(error(response)["fields"]["algorithm"][0])
    assert api.as_(member).get("/api/pools/web").json()["algorithm"] == "round_robin"
    assert routing_version() == version


def test_it_refuses_geo_proximity_in_a_bulk_batch(api, member):
    version = routing_version()
    response = api.as_(member).post("/api/bulk", {"operations": [
        {"op": "create", "type": "pool", "data": {"name": "web", "algorithm": REFUSED}}]})
    assert response.status_code == 400
    assert _refusal_names_it(error(response)["fields"]["operations[0].algorithm"][0])
    assert routing_version() == version and api.as_(member).get("/api/pools").json()["total_count"] == 0


def test_it_refuses_geo_proximity_in_an_import(api, member):
    version = routing_version()
    response = api.as_(member).post("/api/config/import", {"routes": [], "pools": [
        {"name": "web", "algorithm": REFUSED, "backends": [{"address": "10.0.0.1:80"}]}]})
    assert response.status_code == 400
    assert _refusal_names_it(error(response)["fields"]["pools[0].algorithm"][0])
    assert routing_version() == version and api.as_(member).get("/api/pools").json()["total_count"] == 0


@pytest.fixture
def stored_geo_pool(api, member, tenant_a):
    """A pool stored before geo_proximity was refused: its record carries the algorithm as it was accepted."""
    created = pool(api, member)
    client = get_redis()
    record_key = keys.pool_record(tenant_a["id"], "web")
    record = json.loads(client.get(record_key))
    client.set(record_key, json.dumps({**record, "algorithm": REFUSED}))
    return created


def test_it_keeps_a_stored_geo_proximity_pool_loading_with_a_warning(api, member, stored_geo_pool):
    detail = api.as_(member).get("/api/pools/web")
    assert detail.status_code == 200
    body = detail.json()
    assert body["algorithm"] == REFUSED
    assert len(body["warnings"]) == 1 and _refusal_names_it(body["warnings"][0])
    listed = api.as_(member).get("/api/pools").json()["items"][0]
    assert listed["warnings"] == body["warnings"]
    # other changes to the pool still work; only choosing the algorithm again is refused
    changed = api.as_(member).patch("/api/pools/web", {"sticky_sessions": True, "version": body["version"]})
    assert changed.status_code == 200, changed.json()
    assert changed.json()["algorithm"] == REFUSED and changed.json()["sticky_sessions"] is True
    fixed = api.as_(member).patch("/api/pools/web", {"algorithm": "round_robin"})
    assert fixed.status_code == 200 and "warnings" not in fixed.json()


def test_it_answers_no_warnings_for_a_built_algorithm(api, member):
    assert "warnings" not in pool(api, member, algorithm="least_conn")


def test_it_publishes_a_stored_geo_proximity_pool_to_the_proxy_as_stored(api, member, tenant_a, stored_geo_pool):
    """The fragment keeps the stored name; the proxy runs it as round_robin and logs why (tests/proxy)."""
    api.as_(member).patch("/api/pools/web", {"sticky_sessions": True})
    assert fragment(tenant_a["id"])["pools"]["web"]["algorithm"] == REFUSED


def test_it_refuses_a_rollback_to_a_version_that_stored_geo_proximity(api, member, stored_geo_pool):
    """A rollback applies an old document as an import does, so it meets the same refusal (nothing changes)."""
    api.as_(member).patch("/api/pools/web", {"sticky_sessions": True})
    with_geo = api.as_(member).get("/api/config/versions").json()["items"][0]["version"]
    api.as_(member).patch("/api/pools/web", {"algorithm": "least_conn"})
    version = routing_version()
    response = api.as_(member).post(f"/api/config/versions/{with_geo}/rollback")
    assert response.status_code == 400
    assert any(_refusal_names_it(message) for messages in error(response)["fields"].values() for message in messages)
    assert routing_version() == version and api.as_(member).get("/api/pools/web").json()["algorithm"] == "least_conn"
