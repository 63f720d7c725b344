"""/api/tenants/<id>/users[/<user_id>]: admins manage members, only owners touch owners, one owner stays."""

from __future__ import annotations

import pytest

from tests.support.actors import PASSWORD
from tests.support.assertions import assert_error, assert_ok, audit_actions, redis_dump
from tests.support.invites import join_by_invitation


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


def test_it_invites_an_existing_user_of_another_tenant_without_touching_their_password(api, admin, outsider):
    # A person who has an account is invited (202), and belongs to the tenant only once they accept.
    join_by_invitation(api, admin, outsider, "member")
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


def test_it_lets_a_platform_admin_rename_a_member_with_a_single_name(api, platform_admin, member):
    body = assert_ok(api.as_(platform_admin).put(users_url(member.tenant_id, member.id), {"name": "Max Mustermann"}))
    assert (body["first_name"], body["last_name"]) == ("Max", "Mustermann")
    assert "user.update" in audit_actions(None)  # a change to the person shows in the platform's log too


@pytest.mark.parametrize("body", [{"name": "Pwned"}, {"first_name": "Pwned"}, {"last_name": "Pwned"},
                                  {"email": "pwned@evil.test"}, {"password": "pwned-password"},
                                  {"role": "viewer", "first_name": "Pwned"}])
@pytest.mark.parametrize("role", ["owner", "admin"])
def test_it_keeps_a_tenants_admins_off_the_persons_profile(api, tenant_a, role, body):
    """Names, e-mail and password are the person's: a tenant changes the membership only."""
    before = redis_dump()
    error = assert_error(api.as_(tenant_a[role]).put(users_url(tenant_a["id"], tenant_a["member"].id), body), 403,
                         "permission_denied")
    assert set(error["fields"]) == set(body) - {"role"} and "/api/profile" in error["message"]
    assert redis_dump() == before


@pytest.mark.parametrize("body", [{"email": "moved@acme.test"}, {"password": "new-password-1"}])
def test_it_sends_a_platform_admin_to_the_profile_for_email_and_password(api, platform_admin, member, body):
    before = redis_dump()
    error = assert_error(api.as_(platform_admin).put(users_url(member.tenant_id, member.id), body), 400,
                         "validation_error")
    assert set(error["fields"]) == set(body)
    assert redis_dump() == before


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
    join_by_invitation(api, admin, outsider)
    assert api.as_(admin).delete(users_url(admin.tenant_id, outsider.id)).status_code == 204
    login = assert_ok(api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD}))
    assert login["user"]["tenant_id"] == outsider.tenant_id
    assert [t["tenant_id"] for t in login["user"]["tenants"]] == [outsider.tenant_id]


def test_it_answers_404_for_an_unknown_member(api, admin, outsider):
    for user_id in ("usr_missing", outsider.id):  # a real user of another tenant is unknown here too
        assert_error(api.as_(admin).get(users_url(admin.tenant_id, user_id)), 404, "not_found")
        assert_error(api.as_(admin).put(users_url(admin.tenant_id, user_id), {"role": "viewer"}), 404, "not_found")
        assert_error(api.as_(admin).delete(users_url(admin.tenant_id, user_id)), 404, "not_found")


@pytest.mark.parametrize("body, field", [({"role": "chief"}, "role"), ({"active": "maybe"}, "active"),
                                         ({"version": 0}, "version")])
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


def test_it_deactivates_only_the_membership_in_this_tenant(api, admin, outsider):
    join_by_invitation(api, admin, outsider)
    in_a = api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD, "tenant_id": admin.tenant_id})
    in_a = api.with_headers(HTTP_AUTHORIZATION=f"Bearer {assert_ok(in_a)['token']}")
    body = assert_ok(api.as_(admin).put(users_url(admin.tenant_id, outsider.id), {"active": False}))
    assert body["active"] is False
    assert_error(in_a.get("/api/profile"), 401)  # cut off in A at once...
    assert_error(api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD,
                                              "tenant_id": admin.tenant_id}), 403, "account_disabled")
    # ...while the outsider still works in their own tenant, where a login without a tenant goes.
    assert_ok(api.as_(outsider).get(f"/api/tenants/{outsider.tenant_id}"))
    login = assert_ok(api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD}))
    assert login["user"]["tenant_id"] == outsider.tenant_id
    assert_ok(api.as_(admin).put(users_url(admin.tenant_id, outsider.id), {"active": True}))
    assert_ok(api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD,
                                           "tenant_id": admin.tenant_id}))


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
