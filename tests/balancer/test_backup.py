"""Backup and restore of every key the app owns (platform admins only)."""

from __future__ import annotations

import copy
import json

import pytest

from tests.balancer.helpers import backend, error, pool, route
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def take_backup(api, admin) -> dict:
    response = api.as_(admin).get("/api/backup/create")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    return json.loads(response.content)


def test_it_round_trips_every_key_the_app_owns(api, member, platform_admin):
    pool(api, member)
    backend(api, member)
    route(api, member)
    client = get_redis()
    client.zadd(keys.heartbeat("proxy"), {"node-1": 1.5})
    client.sadd(keys.platform("test", "set"), "a", "b")
    client.rpush(keys.platform("test", "list"), "x", "y")
    client.set(keys.platform("test", "ttl"), "v", px=600_000)
    client.set("not-ours", "kept out of the backup")
    document = take_backup(api, platform_admin)
    before = {entry["key"]: (entry["type"], entry["value"]) for entry in document["keys"]}
    assert "not-ours" not in before
    assert {"string", "hash", "zset", "set", "list", "stream"} <= {kind for kind, _ in before.values()}
    # Wreck the state, then restore.
    api.as_(member).delete("/api/pools/web?force=true")
    client.set(keys.platform("test", "junk"), "1")
    restored = api.as_(platform_admin).post("/api/backup/restore", document)
    assert restored.status_code == 200, restored.json()
    assert restored.json()["key_count"] == len(document["keys"])
    again = take_backup(api, platform_admin)
    after = {entry["key"]: (entry["type"], entry["value"]) for entry in again["keys"]}
    assert after == before
    assert 0 < client.pttl(keys.platform("test", "ttl")) <= 600_000
    assert api.as_(member).get("/api/pools/web").status_code == 200


def test_it_accepts_the_backup_wrapped_in_an_object(api, platform_admin, member):
    pool(api, member)
    document = take_backup(api, platform_admin)
    assert api.as_(platform_admin).post("/api/backup/restore", {"backup": document}).status_code == 200


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.update(format="redis-dump"), "not a VeloFlux backup"),
    (lambda d: d.update(format_version=99), "not supported"),
    (lambda d: d["keys"][0].update(value="tampered"), "checksum"),
    (lambda d: d.pop("keys"), "no key list"),
])
def test_it_refuses_a_corrupt_or_foreign_backup_without_touching_data(api, member, platform_admin, damage, message):
    pool(api, member)
    document = take_backup(api, platform_admin)
    api.as_(member).post("/api/pools", {"name": "after-backup"})
    broken = copy.deepcopy(document)
    damage(broken)
    response = api.as_(platform_admin).post("/api/backup/restore", broken)
    assert response.status_code == 400 and message in error(response)["message"]
    assert api.as_(member).get("/api/pools/after-backup").status_code == 200


def test_it_refuses_keys_that_are_not_ours_even_with_a_valid_checksum(api, member, platform_admin):
    from balancer.backup import _checksum

    document = take_backup(api, platform_admin)
    document["keys"].append({"key": "other:app", "type": "string", "ttl_ms": None, "value": "x"})
    document["checksum"] = _checksum(document["keys"])
    response = api.as_(platform_admin).post("/api/backup/restore", document)
    assert response.status_code == 400 and "not a VeloFlux key" in error(response)["message"]
    assert get_redis().get("other:app") is None


def test_it_refuses_a_stream_whose_ids_do_not_increase(api, member, platform_admin):
    from balancer.backup import _checksum

    document = take_backup(api, platform_admin)
    document["keys"].append({"key": "vf:test:stream", "type": "stream", "ttl_ms": None,
                             "value": [["5-0", {"a": "1"}], ["4-0", {"a": "2"}]]})
    document["checksum"] = _checksum(document["keys"])
    response = api.as_(platform_admin).post("/api/backup/restore", document)
    assert response.status_code == 400 and "increase" in error(response)["message"]


def test_it_lets_only_platform_admins_back_up_and_restore(api, owner):
    assert api.as_(owner).get("/api/backup/create").status_code == 403
    assert api.as_(owner).post("/api/backup/restore", {}).status_code == 403
    assert api.get("/api/backup/create").status_code == 401


def test_it_restores_a_backup_larger_than_the_usual_request_limit(api, member, platform_admin):
    client = get_redis()
    client.set(keys.platform("test", "big"), "x" * (3 * 2**20))
    document = take_backup(api, platform_admin)
    client.delete(keys.platform("test", "big"))
    response = api.as_(platform_admin).post("/api/backup/restore", document)
    assert response.status_code == 200, response.content[:200]
    assert client.strlen(keys.platform("test", "big")) == 3 * 2**20


def test_it_refuses_a_backup_that_is_not_json(api, platform_admin):
    response = api.as_(platform_admin).post("/api/backup/restore", "{not json", content_type="application/json",
                                            format=None)
    assert response.status_code == 400 and error(response)["code"] == "invalid_backup"
