"""The hub's server API: publish, broadcast, presence, history."""

from __future__ import annotations

from tenants import accounts
from tenants.store import TenantStore
from tests.support.assertions import assert_error
from veloflux_site.realtime import hub
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def test_it_publishes_through_the_api_idempotently(api, member):
    channel = f"tenant:{member.tenant_id}:deploys"
    body = {"channel": channel, "data": {"v": 2}, "idempotency_key": "deploy-2"}
    first = api.as_(member).post("/api/realtime/publish", body)
    again = api.as_(member).post("/api/realtime/publish", body)
    assert first.status_code == 200 and again.status_code == 200
    assert first.json()["offset"] == again.json()["offset"] == 1
    assert again.json()["duplicate"] is True
    assert [p["data"] for p in hub.history(channel)] == [{"v": 2}]


def test_it_publishes_with_an_api_key(api, owner):
    tenant = TenantStore().get(owner.tenant_id)
    _, raw = accounts.create_api_key(tenant, "ci", "member", None, accounts.Actor("t", "t"))
    response = api.post("/api/realtime/publish", {"channel": f"tenant:{tenant.id}:ci", "data": 1},
                        HTTP_X_API_KEY=raw)
    assert response.status_code == 200, response.content


def test_it_refuses_a_viewer_publishing(api, viewer):
    response = api.as_(viewer).post("/api/realtime/publish",
                                    {"channel": f"tenant:{viewer.tenant_id}:x", "data": 1})
    assert_error(response, 403, "permission_denied")


def test_it_hides_another_tenants_channels(api, owner, outsider):
    channel = f"tenant:{owner.tenant_id}:secret"
    hub.publish(channel, {"s": 1})
    for response in (
        api.as_(outsider).post("/api/realtime/publish", {"channel": channel, "data": 1}),
        api.as_(outsider).get("/api/realtime/history", {"channel": channel}),
        api.as_(outsider).get("/api/realtime/presence", {"channel": channel}),
        api.as_(outsider).post("/api/realtime/broadcast", {"channels": [channel], "data": 1}),
    ):
        assert_error(response, 404, "not_found")
    assert len(hub.history(channel)) == 1


def test_it_broadcasts_all_or_nothing(api, member, outsider):
    mine = f"tenant:{member.tenant_id}:a"
    theirs = f"tenant:{outsider.tenant_id}:a"
    refused = api.as_(member).post("/api/realtime/broadcast", {"channels": [mine, theirs], "data": 1})
    assert_error(refused, 404, "not_found")
    assert hub.history(mine) == []
    done = api.as_(member).post("/api/realtime/broadcast", {"channels": [mine, f"tenant:{member.tenant_id}:b"],
                                                            "data": {"x": 1}})
    assert done.status_code == 200
    assert [r["offset"] for r in done.json()["results"]] == [1, 1]


def test_it_rejects_a_malformed_channel_with_a_clear_message(api, owner):
    response = api.as_(owner).post("/api/realtime/publish", {"channel": "tenant:{bad}", "data": 1})
    error = assert_error(response, 400, "validation_error")
    assert "tenant:<tenant_id>:<topic>" in error["message"]


def test_it_returns_history_and_presence(api, owner):
    channel = f"tenant:{owner.tenant_id}:h"
    for n in range(3):
        hub.publish(channel, n)
    hub.presence_join(channel, "c1", {"client": "c1", "user": owner.id})
    history = api.as_(owner).get("/api/realtime/history", {"channel": channel, "since_offset": 1}).json()
    presence = api.as_(owner).get("/api/realtime/presence", {"channel": channel}).json()
    assert [p["data"] for p in history["publications"]] == [1, 2]
    assert presence["num_clients"] == 1 and presence["clients"]["c1"]["user"] == owner.id


def test_it_keeps_refreshed_presence_and_drops_stale_entries(owner):
    channel = f"tenant:{owner.tenant_id}:p"
    hub.presence_join(channel, "stale", {"client": "stale", "user": "u1"})
    hub.presence_join(channel, "live", {"client": "live", "user": "u2"})
    # "stale" stopped refreshing long ago; "live" is refreshed by its process's registry.
    get_redis().zadd(keys.hub_channel(channel, "presence:exp"), {"stale": 1, "live": 1})
    hub.presence_refresh({channel: ["live"]})
    assert list(hub.presence(channel)) == ["live"]


def test_it_refreshes_presence_in_bounded_chunks_covering_every_client():
    from veloflux_site.realtime.presence import PresenceRegistry

    registry = PresenceRegistry()
    registry.entries = {f"admin:c{c}": {f"cl{c}-{i}" for i in range(400)} for c in range(3)}
    chunks = registry.chunks()
    assert all(sum(len(ids) for ids in chunk.values()) <= PresenceRegistry.CHUNK for chunk in chunks)
    seen = {(channel, cid) for chunk in chunks for channel, ids in chunk.items() for cid in ids}
    assert seen == {(channel, cid) for channel, ids in registry.entries.items() for cid in ids}
