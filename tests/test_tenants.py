"""/api/tenants and /api/tenants/<id>: list, create (platform admins), read, update, delete."""

from __future__ import annotations

import json

import pytest

from tests.support.actors import PASSWORD, make_tenant
from tests.support.assertions import assert_error, assert_ok, audit_actions, redis_dump
from tests.support.invites import join_by_invitation
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

NEW_TENANT = {"name": "Globex", "plan": "starter", "owner_email": "hank@globex.test", "owner_name": "Hank Scorpio"}


def tenant_url(tenant_id: str) -> str:
    return f"/api/tenants/{tenant_id}"


def test_it_lists_only_the_callers_tenants(api, owner, outsider):
    body = assert_ok(api.as_(owner).get("/api/tenants"))
    assert [t["id"] for t in body["items"]] == [owner.tenant_id]
    assert body["total_count"] == 1 and body["has_more"] is False
    assert body["items"][0]["limits"]["max_users"] > 0


def test_it_lists_every_tenant_for_a_platform_admin(api, owner, outsider, platform_admin):
    body = assert_ok(api.as_(platform_admin).get("/api/tenants", {"limit": 1}))
    assert body["total_count"] == 2 and len(body["items"]) == 1 and body["has_more"] is True
    second = assert_ok(api.as_(platform_admin).get("/api/tenants", {"limit": 1, "page": 2}))
    assert {body["items"][0]["id"], second["items"][0]["id"]} == {owner.tenant_id, outsider.tenant_id}


@pytest.mark.parametrize("query", [{"page": "0"}, {"page": "x"}, {"limit": "100000"}, {"limit": "-1"}])
def test_it_validates_pagination(api, owner, query):
    error = assert_error(api.as_(owner).get("/api/tenants", query), 400, "validation_error")
    assert set(error["fields"]) <= {"page", "limit"}


def test_it_lets_a_platform_admin_create_a_tenant_with_its_owner(api, platform_admin):
    body = assert_ok(api.as_(platform_admin).post("/api/tenants", NEW_TENANT), 201)
    assert body["name"] == "Globex" and body["plan"] == "starter" and body["version"] == 1
    owner = body["owner"]
    assert owner["email"] == "hank@globex.test" and owner["role"] == "owner"
    assert owner["first_name"] == "Hank" and owner["last_name"] == "Scorpio"
    # A new owner without a password gets a one-time temporary one and must change it.
    temporary = owner["temporary_password"]
    login = assert_ok(api.post("/api/auth/login", {"email": "hank@globex.test", "password": temporary}))
    assert login["user"]["must_change_password"] is True
    assert temporary not in repr(redis_dump())
    assert audit_actions(body["id"]) == ["tenant.create", "user.add"]


def test_it_adds_an_existing_user_as_owner_of_a_new_tenant(api, owner, platform_admin):
    body = assert_ok(api.as_(platform_admin).post("/api/tenants", {**NEW_TENANT, "owner_email": owner.email}), 201)
    assert "temporary_password" not in body["owner"]
    login = assert_ok(api.post("/api/auth/login", {"email": owner.email, "password": PASSWORD,
                                                   "tenant_id": body["id"]}))
    assert login["user"]["role"] == "owner"
    assert {t["tenant_id"] for t in login["user"]["tenants"]} == {owner.tenant_id, body["id"]}


@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
def test_it_refuses_tenant_creation_to_tenant_users(api, tenant_a, role):
    assert_error(api.as_(tenant_a[role]).post("/api/tenants", NEW_TENANT), 403, "permission_denied")
    assert get_redis().zcard(keys.tenant_index()) == 1


@pytest.mark.parametrize("change, field", [
    ({"name": ""}, "name"),
    ({"plan": "gold"}, "plan"),
    ({"owner_email": "nope"}, "owner_email"),
    ({"owner_password": "short"}, "owner_password"),
])
def test_it_validates_a_new_tenant(api, platform_admin, change, field):
    error = assert_error(api.as_(platform_admin).post("/api/tenants", {**NEW_TENANT, **change}), 400,
                         "validation_error")
    assert field in error["fields"]
    assert get_redis().zcard(keys.tenant_index()) == 0


def test_it_shows_the_callers_tenant(api, viewer):
    body = assert_ok(api.as_(viewer).get(tenant_url(viewer.tenant_id)))
    assert body["id"] == viewer.tenant_id and body["name"] == "Acme Corp"


def test_it_lets_the_owner_rename_the_tenant(api, owner):
    body = assert_ok(api.as_(owner).put(tenant_url(owner.tenant_id), {"name": "Acme Inc", "version": 1}))
    assert body["name"] == "Acme Inc" and body["version"] == 2
    assert audit_actions(owner.tenant_id)[-1] == "tenant.update"


def test_it_refuses_a_stale_version(api, owner):
    assert_ok(api.as_(owner).put(tenant_url(owner.tenant_id), {"name": "One", "version": 1}))
    error = assert_error(api.as_(owner).put(tenant_url(owner.tenant_id), {"name": "Two", "version": 1}), 409,
                         "version_conflict")
    assert error["current_version"] == 2 and "version" in error["fields"]
    assert assert_ok(api.as_(owner).get(tenant_url(owner.tenant_id)))["name"] == "One"


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_it_refuses_tenant_changes_below_owner(api, tenant_a, role):
    before = redis_dump()
    tid = tenant_a["id"]
    assert_error(api.as_(tenant_a[role]).put(tenant_url(tid), {"name": "Hacked"}), 403, "permission_denied")
    assert_error(api.as_(tenant_a[role]).delete(tenant_url(tid)), 403, "permission_denied")
    assert redis_dump() == before


@pytest.mark.parametrize("field, value", [("plan", "enterprise"), ("active", False)])
def test_it_keeps_plan_and_suspension_for_platform_admins(api, owner, field, value):
    error = assert_error(api.as_(owner).put(tenant_url(owner.tenant_id), {field: value}), 403, "permission_denied")
    assert field in error["fields"]


@pytest.mark.parametrize("change, field", [
    ({"name": ""}, "name"),
    ({"contact_email": "nope"}, "contact_email"),
    ({"version": 0}, "version"),
    ({"version": "x"}, "version"),
])
def test_it_validates_tenant_changes(api, owner, change, field):
    error = assert_error(api.as_(owner).put(tenant_url(owner.tenant_id), change), 400, "validation_error")
    assert field in error["fields"]


def test_it_lets_a_platform_admin_change_the_plan_and_suspend(api, owner, platform_admin):
    as_root = api.as_(platform_admin, tenant_header=owner.tenant_id)
    body = assert_ok(as_root.put(tenant_url(owner.tenant_id), {"plan": "enterprise", "active": False}))
    assert body["plan"] == "enterprise" and body["active"] is False
    assert body["limits"]["max_users"] == 1000
    # A suspended tenant's users cannot log in.
    error = assert_error(api.post("/api/auth/login", {"email": owner.email, "password": PASSWORD}), 403)
    assert error["code"] == "tenant_suspended"


def test_it_lets_a_platform_admin_read_a_tenant_by_its_url(api, owner, platform_admin):
    body = assert_ok(api.as_(platform_admin).get(tenant_url(owner.tenant_id)))
    assert body["id"] == owner.tenant_id


def test_it_answers_404_for_an_unknown_tenant(api, platform_admin):
    assert_error(api.as_(platform_admin).get(tenant_url("tn_missing")), 404, "not_found")
    assert_error(api.as_(platform_admin, tenant_header="tn_missing").get("/api/profile"), 404, "not_found")


def test_it_deletes_a_tenant_with_everything_it_owns(api, owner, member, outsider):
    assert_ok(api.as_(owner).post("/api/auth/api-keys", {"name": "k"}), 201)
    # A user who also belongs to another tenant keeps their account.
    join_by_invitation(api, outsider, member, "viewer")
    outsider_state = redis_dump(f"vf:{{t:{outsider.tenant_id}}}:*")
    assert api.as_(owner).delete(tenant_url(owner.tenant_id)).status_code == 204
    client = get_redis()
    assert list(client.scan_iter(match=f"*{owner.tenant_id}*")) == []
    assert not client.exists(keys.tenant_slug_index("acme-corp"))
    assert not client.exists(keys.user_email_index(owner.email))
    assert not client.exists(keys.user_email_index("viewer@acme.test"))
    assert list(client.scan_iter(match="vf:apikey:hash:*")) == []
    # The member survives in the outsider tenant, and the outsider's data is untouched.
    login = assert_ok(api.post("/api/auth/login", {"email": member.email, "password": PASSWORD}))
    assert login["user"]["tenant_id"] == outsider.tenant_id
    assert redis_dump(f"vf:{{t:{outsider.tenant_id}}}:*").keys() == outsider_state.keys()
    # Old credentials of the deleted tenant stop working.
    assert_error(api.as_(owner).get("/api/profile"), 401)


def test_it_lets_a_platform_admin_delete_a_tenant(api, owner, platform_admin):
    assert api.as_(platform_admin).delete(tenant_url(owner.tenant_id)).status_code == 204
    assert_error(api.as_(platform_admin).get(tenant_url(owner.tenant_id)), 404, "not_found")


def test_it_keeps_a_record_of_a_deleted_tenant_in_the_platform_audit_log(api, owner, platform_admin):
    assert api.as_(owner).delete(tenant_url(owner.tenant_id)).status_code == 204
    entries = assert_ok(api.as_(platform_admin).get("/api/audit?scope=platform&object_id=" + owner.tenant_id))
    assert [entry["action"] for entry in entries["items"]] == ["tenant.delete", "tenant.create"]
    deletion = entries["items"][0]
    assert deletion["actor"] == owner.email and deletion["changes"]["slug"] == ["acme-corp", None]


def test_it_shows_the_platform_audit_log_only_to_platform_admins(api, owner):
    assert_error(api.as_(owner).get("/api/audit?scope=platform"), 403, "permission_denied")
    assert_error(api.as_(owner).get("/api/audit?scope=everything"), 400, "validation_error")


def test_it_answers_405_for_a_method_the_tenant_endpoints_lack(api, owner, platform_admin):
    assert_error(api.as_(platform_admin).delete("/api/tenants"), 405, "method_not_allowed")
    assert_error(api.as_(owner).post(tenant_url(owner.tenant_id), {}), 405, "method_not_allowed")


def test_it_makes_tenant_slugs_unique(api, platform_admin):
    first = assert_ok(api.as_(platform_admin).post("/api/tenants", NEW_TENANT), 201)
    second = assert_ok(api.as_(platform_admin).post("/api/tenants", {**NEW_TENANT, "owner_email": "b@globex.test"}),
                       201)
    assert first["slug"] == "globex" and second["slug"] != "globex"


def test_it_gives_the_helper_tenant_a_plan(api):
    tenant_id, actor = make_tenant("Helper", "helper@x.test", plan="free")
    assert assert_ok(api.as_(actor).get(tenant_url(tenant_id)))["plan"] == "free"


def test_it_locks_out_logged_in_users_of_a_suspended_tenant_at_once(api, owner, platform_admin):
    assert_ok(api.as_(platform_admin).put(tenant_url(owner.tenant_id), {"active": False}))
    assert_error(api.as_(owner).get(tenant_url(owner.tenant_id)), 403, "tenant_suspended")
    assert_error(api.post("/api/auth/refresh", {"refresh_token": owner.refresh_token}), 403, "tenant_suspended")
    # Platform admins still reach it (to reactivate it).
    assert_ok(api.as_(platform_admin).put(tenant_url(owner.tenant_id), {"active": True}))
    assert_ok(api.as_(owner).get(tenant_url(owner.tenant_id)))


def test_it_locks_out_a_session_of_a_suspended_tenant(owner, platform_admin, api):
    from django.test import Client

    browser = Client()
    browser.post("/login", {"email": owner.email, "password": PASSWORD})
    assert browser.get("/api/profile", HTTP_ACCEPT="application/json").status_code == 200
    assert_ok(api.as_(platform_admin).put(tenant_url(owner.tenant_id), {"active": False}))
    assert_error(browser.get("/api/profile", HTTP_ACCEPT="application/json"), 403, "tenant_suspended")
    assert browser.get("/login").status_code == 200  # pages still render, as anonymous


@pytest.mark.parametrize("page", ["100000000000000000000", "10000001"])
def test_it_refuses_a_page_beyond_any_list(api, platform_admin, page):
    error = assert_error(api.as_(platform_admin).get("/api/tenants", {"page": page}), 400, "validation_error")
    assert "page" in error["fields"]


def routing_fragment(tenant_id: str) -> dict | None:
    raw = get_redis().hget(keys.routing_table(), tenant_id)
    return json.loads(raw) if raw else None


def serve_a_site(api, member, host: str) -> None:
    assert_ok(api.as_(member).post("/api/pools", {"name": "web"}), 201)
    assert_ok(api.as_(member).post("/api/backends", {"address": "10.0.0.1:8080", "pool": "web"}), 201)
    assert_ok(api.as_(member).post("/api/routes", {"host": host, "pool": "web"}), 201)


def test_it_takes_a_suspended_tenant_off_the_data_plane_and_back(api, member, platform_admin):
    serve_a_site(api, member, "shop.acme.test")
    assert routing_fragment(member.tenant_id)["active"] is True
    assert_ok(api.as_(platform_admin).put(tenant_url(member.tenant_id), {"active": False}))
    assert routing_fragment(member.tenant_id)["active"] is False
    assert_ok(api.as_(platform_admin).put(tenant_url(member.tenant_id), {"active": True}))
    assert routing_fragment(member.tenant_id)["active"] is True


def test_it_frees_a_deleted_tenants_hosts_for_others(api, owner, member, outsider):
    serve_a_site(api, member, "shop.acme.test")
    assert api.as_(owner).delete(tenant_url(owner.tenant_id)).status_code == 204
    assert routing_fragment(owner.tenant_id) is None
    assert get_redis().get(keys.route_claim("shop.acme.test", "/")) is None
    serve_a_site(api, outsider, "shop.acme.test")
