"""GET /api/audit: every mutation is recorded with actor, object, changes, IP, request id, time; filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.actors import PASSWORD
from tests.support.assertions import assert_error, assert_ok

AUDIT = "/api/audit"


def entries(api, caller, **query) -> list[dict]:
    return assert_ok(api.as_(caller).get(AUDIT, query))["items"]


def test_it_records_who_changed_what_from_where(api, owner, member):
    response = api.as_(owner).put(f"/api/tenants/{owner.tenant_id}/users/{member.id}", {"role": "viewer"},
                                  HTTP_X_REQUEST_ID="req-audit-1", REMOTE_ADDR="192.0.2.7")
    assert_ok(response)
    entry = entries(api, owner)[0]
    assert entry["action"] == "user.update"
    assert entry["actor_id"] == owner.id and entry["actor"] == owner.email
    assert (entry["object_type"], entry["object_id"]) == ("user", member.id)
    assert entry["changes"] == {"role": ["member", "viewer"]}
    assert entry["ip"] == "192.0.2.7" and entry["request_id"] == "req-audit-1"
    moment = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 30


def test_it_records_every_mutation_of_the_tenants_app(api, owner, member):
    tid = owner.tenant_id
    key = assert_ok(api.as_(owner).post("/api/auth/api-keys", {"name": "k"}), 201)
    api.as_(owner).delete(f"/api/auth/api-keys/{key['id']}")
    added = assert_ok(api.as_(owner).post(f"/api/tenants/{tid}/users", {"email": "q@acme.test"}), 201)
    api.as_(owner).put(f"/api/tenants/{tid}/users/{added['id']}", {"role": "viewer"})
    api.as_(owner).delete(f"/api/tenants/{tid}/users/{added['id']}")
    api.as_(owner).put(f"/api/tenants/{tid}", {"name": "Acme 2"})
    api.as_(member).put("/api/profile", {"first_name": "M"})
    actions = [e["action"] for e in entries(api, owner, limit=100)]
    for action in ("api_key.create", "api_key.revoke", "user.add", "user.update", "user.remove", "tenant.update",
                   "profile.update", "tenant.create"):
        assert action in actions, action


def test_it_never_records_secrets(api, owner, admin):
    created = assert_ok(api.as_(owner).post("/api/auth/api-keys", {"name": "k"}), 201)
    api.as_(owner).post(f"/api/tenants/{owner.tenant_id}/users", {"email": "s@acme.test", "password": "secret-pass-1"})
    # The password change replaces the owner's token, so another admin reads the log.
    api.as_(owner).put("/api/profile", {"current_password": PASSWORD, "new_password": "another-secret-2"})
    dump = repr(entries(api, admin, limit=100))
    for secret in (created["key"], "secret-pass-1", "another-secret-2", PASSWORD, "md5$", "key_hash"):
        assert secret not in dump, secret


def test_it_filters_by_actor_object_and_action(api, owner, admin, member, viewer):
    tid = owner.tenant_id
    api.as_(owner).put(f"/api/tenants/{tid}/users/{member.id}", {"role": "viewer"})
    api.as_(admin).put(f"/api/tenants/{tid}/users/{viewer.id}", {"role": "member"})
    by_admin = entries(api, owner, actor=admin.email)
    assert [(e["action"], e["object_id"]) for e in by_admin] == [("user.update", viewer.id)]
    assert entries(api, owner, actor=admin.id) == by_admin
    on_member = entries(api, owner, object_type="user", object_id=member.id)
    assert {e["action"] for e in on_member} == {"user.add", "user.update"}
    assert {e["object_id"] for e in entries(api, owner, action="user.update")} == {member.id, viewer.id}
    assert entries(api, owner, object_type="pool") == []


def test_it_filters_by_time(api, owner, member):
    api.as_(owner).put(f"/api/tenants/{owner.tenant_id}/users/{member.id}", {"role": "viewer"})
    now = datetime.now(UTC)
    assert entries(api, owner, since=(now + timedelta(minutes=1)).isoformat()) == []
    assert entries(api, owner, until=(now - timedelta(hours=1)).isoformat()) == []
    window = entries(api, owner, since=(now - timedelta(minutes=1)).isoformat(),
                     until=(now + timedelta(minutes=1)).isoformat())
    assert window and window[0]["action"] == "user.update"


def test_it_pages_newest_first_with_a_cursor(api, owner):
    body = assert_ok(api.as_(owner).get(AUDIT, {"limit": 2}))
    assert len(body["items"]) == 2 and body["has_more"] is True
    rest = assert_ok(api.as_(owner).get(AUDIT, {"limit": 100, "cursor": body["next_cursor"]}))
    everything = assert_ok(api.as_(owner).get(AUDIT, {"limit": 100}))["items"]
    assert body["items"] + rest["items"] == everything
    assert rest["has_more"] is False and rest["next_cursor"] is None
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True,
                                                   key=lambda i: tuple(map(int, i.split("-"))))


@pytest.mark.parametrize("query, field", [
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"cursor": "abc"}, "cursor"),
    ({"cursor": "99999999999999999999999-0"}, "cursor"),
    ({"since": "yesterday"}, "since"),
    ({"since": "2026-11-22T12:00:00Z", "until": "2026-11-22T11:00:00Z"}, "since"),
])
def test_it_validates_audit_queries(api, owner, query, field):
    error = assert_error(api.as_(owner).get(AUDIT, query), 400, "validation_error")
    assert field in error["fields"]


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_it_shows_the_audit_log_only_to_admins(api, tenant_a, role):
    assert_error(api.as_(tenant_a[role]).get(AUDIT), 403, "permission_denied")


def test_it_shows_only_the_callers_tenant(api, owner, outsider):
    assert {e["object_id"] for e in entries(api, outsider, object_type="tenant")} == {outsider.tenant_id}


def test_it_needs_a_tenant_for_a_platform_admin(api, owner, platform_admin):
    error = assert_error(api.as_(platform_admin).get(AUDIT), 403, "permission_denied")
    assert "X-Tenant-ID" in error["message"]
    body = assert_ok(api.as_(platform_admin, tenant_header=owner.tenant_id).get(AUDIT))
    assert body["items"]


def test_it_accepts_any_time_window(api, owner):
    assert entries(api, owner, until="1960-01-01T00:00:00Z") == []
    assert entries(api, owner, since="1000-01-01T00:00:00Z", until="9999-12-31T00:00:00Z")
