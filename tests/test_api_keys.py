"""/api/auth/api-keys: shown once, stored hashed, scoped by role, revocable, expiring, limited by plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tenants.accounts import hash_api_key
from tests.support.assertions import assert_error, assert_ok, audit_actions, redis_dump
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

KEYS = "/api/auth/api-keys"


def create_key(api, actor, **body):
    return assert_ok(api.as_(actor).post(KEYS, {"name": "ci", "role": "viewer", **body}), 201)


def with_key(api, raw: str):
    return api.with_headers(HTTP_X_API_KEY=raw)


def test_it_shows_a_new_key_once_and_stores_only_its_hash(api, admin):
    created = create_key(api, admin, role="member")
    raw = created["key"]
    assert raw.startswith("vfk_") and len(raw) > 40
    assert created["prefix"] == raw[:12]
    assert created["role"] == "member"
    assert "key_hash" not in created
    listed = assert_ok(api.as_(admin).get(KEYS))
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert "key" not in listed["items"][0] and "key_hash" not in listed["items"][0]
    detail = assert_ok(api.as_(admin).get(f"{KEYS}/{created['id']}"))
    assert "key" not in detail
    # The raw key is nowhere in Redis; its audit entry has no secret either.
    assert raw not in repr(redis_dump())
    assert audit_actions(admin.tenant_id)[-1] == "api_key.create"


@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_AUTHORIZATION"])
def test_it_authenticates_with_a_key(api, admin, header):
    raw = create_key(api, admin)["key"]
    value = raw if header == "HTTP_X_API_KEY" else f"Api-Key {raw}"
    caller = api.with_headers(**{header: value})
    body = assert_ok(caller.get(f"/api/tenants/{admin.tenant_id}"))
    assert body["id"] == admin.tenant_id


def test_it_accepts_a_key_as_a_bearer_token(api, admin):
    raw = create_key(api, admin)["key"]
    assert_ok(api.with_headers(HTTP_AUTHORIZATION=f"Bearer {raw}").get(f"/api/tenants/{admin.tenant_id}"))


def test_it_scopes_a_key_by_its_role(api, admin, tenant_a):
    viewer_key = create_key(api, admin, role="viewer")["key"]
    admin_key = create_key(api, admin, name="ops", role="admin")["key"]
    users = f"/api/tenants/{admin.tenant_id}/users"
    assert_ok(with_key(api, viewer_key).get(users))
    assert_error(with_key(api, viewer_key).post(users, {"email": "x@acme.test"}), 403, "permission_denied")
    assert_ok(with_key(api, admin_key).post(users, {"email": "x@acme.test"}), 201)


def test_it_records_the_key_as_the_actor(api, admin):
    created = create_key(api, admin, role="admin")
    with_key(api, created["key"]).post(f"/api/tenants/{admin.tenant_id}/users", {"email": "x@acme.test"})
    entries = assert_ok(api.as_(admin).get("/api/audit", {"action": "user.add"}))["items"]
    assert entries[0]["actor_id"] == f"apikey:{created['id']}"


def test_it_refuses_a_key_above_the_callers_role(api, admin):
    error = assert_error(api.as_(admin).post(KEYS, {"name": "x", "role": "owner"}), 403, "permission_denied")
    assert "role" in error["fields"]


def test_it_lets_an_owner_create_an_owner_key(api, owner):
    assert create_key(api, owner, role="owner")["role"] == "owner"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_it_refuses_key_management_below_admin(api, tenant_a, role):
    actor = tenant_a[role]
    assert_error(api.as_(actor).get(KEYS), 403, "permission_denied")
    assert_error(api.as_(actor).post(KEYS, {"name": "x"}), 403, "permission_denied")


def test_it_refuses_key_management_without_credentials(api):
    assert_error(api.get(KEYS), 401, "not_authenticated")
    assert_error(api.post(KEYS, {"name": "x"}), 401, "not_authenticated")


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x", "role": "god"}, "role"),
    ({"name": "x", "expires_at": "tomorrow"}, "expires_at"),
    ({"name": "x" * 101}, "name"),
])
def test_it_validates_a_new_key(api, admin, body, field):
    error = assert_error(api.as_(admin).post(KEYS, body), 400, "validation_error")
    assert field in error["fields"]
    assert get_redis().zcard(keys.api_key_index(admin.tenant_id)) == 0


def test_it_refuses_an_expiry_in_the_past(api, admin):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    error = assert_error(api.as_(admin).post(KEYS, {"name": "x", "expires_at": past}), 400, "validation_error")
    assert "expires_at" in error["fields"]


def test_it_refuses_an_expired_key(api, admin):
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = create_key(api, admin, expires_at=soon)
    assert created["expires_at"].endswith("Z")
    # Move the expiry into the past, as time would.
    key = keys.api_key(admin.tenant_id, created["id"])
    client = get_redis()
    record = json.loads(client.get(key))
    record["expires_at"] = "2020-01-01T00:00:00Z"
    client.set(key, json.dumps(record))
    assert_error(with_key(api, created["key"]).get(f"/api/tenants/{admin.tenant_id}"), 401, "authentication_failed")


def test_it_revokes_a_key(api, admin):
    created = create_key(api, admin)
    assert api.as_(admin).delete(f"{KEYS}/{created['id']}").status_code == 204
    assert_error(with_key(api, created["key"]).get(f"/api/tenants/{admin.tenant_id}"), 401, "authentication_failed")
    assert_error(api.as_(admin).get(f"{KEYS}/{created['id']}"), 404, "not_found")
    assert_error(api.as_(admin).delete(f"{KEYS}/{created['id']}"), 404, "not_found")
    assert audit_actions(admin.tenant_id)[-1] == "api_key.revoke"
    assert not get_redis().exists(keys.api_key_hash_index(hash_api_key(created["key"])))


def test_it_refuses_an_unknown_key(api):
    assert_error(with_key(api, "vfk_not-a-real-key").get("/api/profile"), 401, "authentication_failed")


def test_it_gives_a_key_no_profile(api, admin):
    raw = create_key(api, admin)["key"]
    assert_error(with_key(api, raw).get("/api/profile"), 403, "permission_denied")


def test_it_keeps_a_key_inside_its_tenant(api, admin, outsider):
    raw = create_key(api, admin, role="admin")["key"]
    assert_error(with_key(api, raw).with_headers(HTTP_X_API_KEY=raw, HTTP_X_TENANT_ID=outsider.tenant_id)
                 .get(f"/api/tenants/{outsider.tenant_id}"), 404, "not_found")
    assert_error(with_key(api, raw).get(f"/api/tenants/{outsider.tenant_id}"), 404, "not_found")


def test_it_enforces_the_plans_key_limit(api, admin, platform_admin):
    api.as_(platform_admin, tenant_header=admin.tenant_id).put(f"/api/tenants/{admin.tenant_id}", {"plan": "free"})
    create_key(api, admin, name="one")
    create_key(api, admin, name="two")
    error = assert_error(api.as_(admin).post(KEYS, {"name": "three"}), 403, "limit_exceeded")
    assert error["limit"] == "max_api_keys" and error["maximum"] == 2


def test_it_paginates_keys(api, admin):
    for index in range(3):
        create_key(api, admin, name=f"k{index}")
    page = assert_ok(api.as_(admin).get(KEYS, {"page": 2, "limit": 2}))
    assert page["total_count"] == 3 and page["page"] == 2 and len(page["items"]) == 1 and not page["has_more"]


def test_it_records_when_a_key_was_last_used(api, admin):
    created = create_key(api, admin)
    assert created["last_used_at"] is None
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert_ok(with_key(api, created["key"]).get(f"/api/tenants/{admin.tenant_id}"))
    listed = assert_ok(api.as_(admin).get(KEYS))["items"][0]
    used_at = datetime.fromisoformat(listed["last_used_at"].replace("Z", "+00:00"))
    assert before <= used_at <= datetime.now(UTC)
    detail = assert_ok(api.as_(admin).get(f"{KEYS}/{created['id']}"))
    assert detail["last_used_at"] == listed["last_used_at"]
    # A use never bumps the key record's version (no write races with an admin's change).
    assert detail["version"] == created["version"]


def test_it_forgets_a_revoked_keys_last_use(api, admin):
    created = create_key(api, admin)
    assert_ok(with_key(api, created["key"]).get(f"/api/tenants/{admin.tenant_id}"))
    assert get_redis().hexists(keys.api_key_last_used(admin.tenant_id), created["id"])
    assert api.as_(admin).delete(f"{KEYS}/{created['id']}").status_code == 204
    assert not get_redis().hexists(keys.api_key_last_used(admin.tenant_id), created["id"])
