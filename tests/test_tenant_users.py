"""/api/tenants/<id>/users[/<user_id>]: admins manage members, only owners touch owners, one owner stays."""

from __future__ import annotations

import pytest

from tests.support.actors import PASSWORD
from tests.support.assertions import assert_error, assert_ok, audit_actions, redis_dump


def users_url(tenant_id: str, user_id: str | None = None) -> str:
    return f"/api/tenants/{tenant_id}/users" + (f"/{user_id}" if user_id else "")


def test_it_lists_the_tenants_members(api, tenant_a):
    body = assert_ok(api.as_(tenant_a["viewer"]).get(users_url(tenant_a["id"])))
    assert body["total_count"] == 4
    assert {u["role"] for u in body["items"]} == {"owner", "admin", "member", "viewer"}
    assert all("password_hash" not in u for u in body["items"])
    page = assert_ok(api.as_(tenant_a["viewer"]).get(users_url(tenant_a["id"]), {"limit": 3, "page": 2}))
    assert len(page["items"]) == 1 and page["has_more"] is False


def test_it_shows_one_member(api, tenant_a):
    member = tenant_a["member"]
    body = assert_ok(api.as_(tenant_a["viewer"]).get(users_url(tenant_a["id"], member.id)))
    assert body["email"] == member.email and body["role"] == "member"


def test_it_adds_a_new_user_with_a_temporary_password(api, admin):
    body = assert_ok(api.as_(admin).post(users_url(admin.tenant_id),
                                         {"email": "Nora@Acme.test", "name": "Nora Nobody", "role": "viewer"}), 201)
    assert body["email"] == "nora@acme.test" and body["first_name"] == "Nora" and body["last_name"] == "Nobody"
    login = assert_ok(api.post("/api/auth/login", {"email": "nora@acme.test", "password": body["temporary_password"]}))
    assert login["user"]["role"] == "viewer" and login["user"]["must_change_password"] is True
    assert audit_actions(admin.tenant_id)[-1] == "user.add"


def test_it_adds_a_user_with_a_chosen_password(api, admin):
    body = assert_ok(api.as_(admin).post(users_url(admin.tenant_id), {
        "email": "pat@acme.test", "first_name": "Pat", "last_name": "P", "password": "chosen-secret"}), 201)
    assert "temporary_password" not in body and body["role"] == "member"
    assert_ok(api.post("/api/auth/login", {"email": "pat@acme.test", "password": "chosen-secret"}))


def test_it_adds_an_existing_user_of_another_tenant_without_touching_their_password(api, admin, outsider):
    body = assert_ok(api.as_(admin).post(users_url(admin.tenant_id), {"email": outsider.email, "role": "member"}), 201)
    assert "temporary_password" not in body
    login = assert_ok(api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD,
                                                   "tenant_id": admin.tenant_id}))
    assert login["user"]["role"] == "member"


def test_it_refuses_a_member_twice(api, admin, member):
    error = assert_error(api.as_(admin).post(users_url(admin.tenant_id), {"email": member.email}), 409, "conflict")
    assert "email" in error["fields"]


@pytest.mark.parametrize("body, field", [
    ({}, "email"),
    ({"email": "nope"}, "email"),
    ({"email": "a@acme.test", "role": "superuser"}, "role"),
    ({"email": "a@acme.test", "password": "short"}, "password"),
])
def test_it_validates_a_new_member(api, admin, body, field):
    before = redis_dump()
    error = assert_error(api.as_(admin).post(users_url(admin.tenant_id), body), 400, "validation_error")
    assert field in error["fields"]
    assert redis_dump() == before


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_it_refuses_user_management_below_admin(api, tenant_a, role):
    actor, target = tenant_a[role], tenant_a["viewer"]
    before = redis_dump()
    assert_error(api.as_(actor).post(users_url(actor.tenant_id), {"email": "z@acme.test"}), 403, "permission_denied")
    assert_error(api.as_(actor).put(users_url(actor.tenant_id, target.id), {"role": "admin"}), 403)
    assert_error(api.as_(actor).delete(users_url(actor.tenant_id, target.id)), 403)
    assert redis_dump() == before


def test_it_lets_an_admin_change_a_role_and_deactivate(api, admin, member):
    body = assert_ok(api.as_(admin).put(users_url(admin.tenant_id, member.id), {"role": "viewer", "active": False}))
    assert body["role"] == "viewer" and body["active"] is False and body["version"] == 2
    assert audit_actions(admin.tenant_id)[-1] == "user.update"


def test_it_renames_a_member_with_a_single_name(api, admin, member):
    body = assert_ok(api.as_(admin).put(users_url(admin.tenant_id, member.id), {"name": "Max Mustermann"}))
    assert (body["first_name"], body["last_name"]) == ("Max", "Mustermann")


@pytest.mark.parametrize("body", [{"role": "owner"}])
def test_it_lets_only_owners_grant_the_owner_role(api, admin, member, owner, body):
    assert_error(api.as_(admin).put(users_url(admin.tenant_id, member.id), body), 403, "permission_denied")
    assert_error(api.as_(admin).post(users_url(admin.tenant_id), {"email": "o@acme.test", "role": "owner"}), 403)
    assert_ok(api.as_(owner).put(users_url(owner.tenant_id, member.id), body))


def test_it_stops_an_admin_from_touching_an_owner(api, admin, owner):
    assert_error(api.as_(admin).put(users_url(admin.tenant_id, owner.id), {"role": "viewer"}), 403, "permission_denied")
    assert_error(api.as_(admin).delete(users_url(admin.tenant_id, owner.id)), 403, "permission_denied")


def test_it_keeps_at_least_one_owner(api, owner):
    assert_error(api.as_(owner).put(users_url(owner.tenant_id, owner.id), {"role": "admin"}), 409, "last_owner")
    assert_error(api.as_(owner).delete(users_url(owner.tenant_id, owner.id)), 409, "last_owner")


def test_it_lets_an_owner_step_down_once_there_is_another(api, owner, admin):
    assert_ok(api.as_(owner).put(users_url(owner.tenant_id, admin.id), {"role": "owner"}))
    assert_ok(api.as_(owner).put(users_url(owner.tenant_id, owner.id), {"role": "member"}))


def test_it_removes_a_member(api, admin, viewer):
    assert api.as_(admin).delete(users_url(admin.tenant_id, viewer.id)).status_code == 204
    assert_error(api.as_(admin).get(users_url(admin.tenant_id, viewer.id)), 404, "not_found")
    assert_error(api.post("/api/auth/login", {"email": viewer.email, "password": PASSWORD}), 401)
    assert audit_actions(admin.tenant_id)[-1] == "user.remove"


def test_it_removes_only_the_membership_of_a_user_with_another_tenant(api, admin, outsider):
    added = assert_ok(api.as_(admin).post(users_url(admin.tenant_id), {"email": outsider.email}), 201)
    assert api.as_(admin).delete(users_url(admin.tenant_id, added["id"])).status_code == 204
    assert_ok(api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD}))


def test_it_answers_404_for_an_unknown_member(api, admin, outsider):
    for user_id in ("usr_missing", outsider.id):  # a real user of another tenant is unknown here too
        assert_error(api.as_(admin).get(users_url(admin.tenant_id, user_id)), 404, "not_found")
        assert_error(api.as_(admin).put(users_url(admin.tenant_id, user_id), {"role": "viewer"}), 404, "not_found")
        assert_error(api.as_(admin).delete(users_url(admin.tenant_id, user_id)), 404, "not_found")


@pytest.mark.parametrize("body, field", [({"role": "chief"}, "role"), ({"active": "maybe"}, "active"),
                                         ({"first_name": "x" * 101}, "first_name")])
def test_it_validates_member_changes(api, admin, member, body, field):
    error = assert_error(api.as_(admin).put(users_url(admin.tenant_id, member.id), body), 400, "validation_error")
    assert field in error["fields"]


def test_it_enforces_the_plans_user_limit(api, owner, platform_admin):
    assert_ok(api.as_(platform_admin).put(f"/api/tenants/{owner.tenant_id}", {"plan": "free"}))
    # Free allows 3 users; the fixture tenant already has 4, so no one more.
    error = assert_error(api.as_(owner).post(users_url(owner.tenant_id), {"email": "n@acme.test"}), 403,
                         "limit_exceeded")
    assert error["limit"] == "max_users"


def test_it_lets_a_platform_admin_manage_members_of_any_tenant(api, owner, platform_admin):
    body = assert_ok(api.as_(platform_admin).post(users_url(owner.tenant_id), {"email": "r@acme.test",
                                                                               "role": "owner"}), 201)
    assert body["role"] == "owner"
    entries = assert_ok(api.as_(owner).get("/api/audit", {"action": "user.add"}))["items"]
    assert entries[0]["actor"] == "root@veloflux.test"


def test_it_refuses_to_deactivate_an_account_another_tenant_shares(api, admin, outsider):
    added = assert_ok(api.as_(admin).post(users_url(admin.tenant_id), {"email": outsider.email}), 201)
    error = assert_error(api.as_(admin).put(users_url(admin.tenant_id, added["id"]), {"active": False}), 409,
                         "shared_account")
    assert "active" in error["fields"]
    # The outsider still works in their own tenant.
    assert_ok(api.as_(outsider).get(f"/api/tenants/{outsider.tenant_id}"))


def test_it_refuses_to_deactivate_the_last_active_owner(api, owner, admin, platform_admin):
    url = users_url(owner.tenant_id, owner.id)
    assert_error(api.as_(owner).put(url, {"active": False}), 409, "last_owner")
    assert_error(api.as_(platform_admin).put(url, {"active": False}), 409, "last_owner")
    # With a second active owner it is fine; then that one is the last active owner.
    assert_ok(api.as_(owner).put(users_url(owner.tenant_id, admin.id), {"role": "owner"}))
    assert_ok(api.as_(owner).put(url, {"active": False}))
    assert_error(api.as_(admin).put(users_url(owner.tenant_id, admin.id), {"role": "admin"}), 409, "last_owner")
    # Removing the deactivated owner is allowed: an active owner remains.
    assert api.as_(admin).delete(url).status_code == 204


def test_it_refuses_a_stale_member_version(api, admin, member):
    url = users_url(admin.tenant_id, member.id)
    assert_ok(api.as_(admin).put(url, {"role": "viewer", "version": 1}))
    assert_error(api.as_(admin).put(url, {"role": "admin", "version": 1}), 409, "version_conflict")
    assert assert_ok(api.as_(admin).get(url))["role"] == "viewer"
