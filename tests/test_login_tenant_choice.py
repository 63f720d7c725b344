"""A login without tenant_id goes to the tenant the person last used, or asks which one: it never
picks one of several by itself (that once sent another tenant's owner into the tenant that added them)."""

from __future__ import annotations

import json

from tests.support.actors import PASSWORD, make_tenant
from tests.support.assertions import assert_error, assert_ok
from tests.support.invites import join_by_invitation
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def login(api, email, tenant_id=None):
    return api.post("/api/auth/login", {"email": email, "password": PASSWORD,
                                        **({"tenant_id": tenant_id} if tenant_id else {})})


def as_record_from_before(user_id: str, memberships: dict[str, str]) -> None:
    """Rewrite a user as the code before this change stored it: no last-used tenant, no per-tenant
    flags, and memberships it may have gained without consent."""
    client = get_redis()
    data = json.loads(client.get(keys.user_record(user_id)))
    for name in ("last_tenant_id", "inactive_in"):
        data.pop(name)
    data["memberships"] = memberships
    client.set(keys.user_record(user_id), json.dumps(data))
    for tenant_id in memberships:
        client.zadd(keys.tenant_members(tenant_id), {user_id: 0})


def test_it_logs_in_to_the_tenant_last_used(api, owner, outsider):
    join_by_invitation(api, owner, outsider)
    assert assert_ok(login(api, outsider.email))["user"]["tenant_id"] == outsider.tenant_id
    assert assert_ok(login(api, outsider.email, owner.tenant_id))["user"]["tenant_id"] == owner.tenant_id
    body = assert_ok(login(api, outsider.email))
    assert body["user"]["tenant_id"] == owner.tenant_id and body["user"]["last_tenant_id"] == owner.tenant_id
    assert_ok(login(api, outsider.email, outsider.tenant_id))
    assert assert_ok(login(api, outsider.email))["user"]["tenant_id"] == outsider.tenant_id


def test_it_asks_which_tenant_when_several_and_none_last_used(api, owner, outsider):
    _, third = make_tenant("Third Party", "third@third.test")  # a tenant the person is not in
    as_record_from_before(outsider.id, {outsider.tenant_id: "owner", owner.tenant_id: "member"})
    error = assert_error(login(api, outsider.email), 400, "tenant_required")
    assert "tenant_id" in error["fields"]
    assert sorted(error["tenants"], key=lambda t: t["name"]) == [
        {"id": owner.tenant_id, "name": "Acme Corp"}, {"id": outsider.tenant_id, "name": "Outsider Inc"}]
    assert third.tenant_id not in json.dumps(error)
    assert "Acme Corp" in error["message"] and "Outsider Inc" in error["message"]
    # Choosing one answers, and is remembered.
    assert_ok(login(api, outsider.email, outsider.tenant_id))
    assert assert_ok(login(api, outsider.email))["user"]["tenant_id"] == outsider.tenant_id


def test_it_loads_a_user_record_from_before_the_change(api, member):
    as_record_from_before(member.id, {member.tenant_id: "member"})
    body = assert_ok(api.as_(member).get("/api/profile"))
    assert body["last_tenant_id"] is None and body["tenants"] == [
        {"tenant_id": member.tenant_id, "role": "member", "active": True}]
    assert assert_ok(login(api, member.email))["user"]["tenant_id"] == member.tenant_id


def test_it_forgets_the_last_used_tenant_when_it_is_deleted(api, owner, outsider):
    join_by_invitation(api, outsider, owner)
    assert_ok(login(api, owner.email, outsider.tenant_id))
    assert api.as_(outsider).delete(f"/api/tenants/{outsider.tenant_id}").status_code == 204
    assert assert_ok(login(api, owner.email))["user"]["tenant_id"] == owner.tenant_id


def test_it_asks_the_web_login_too_and_remembers_its_choice(api, client, owner, outsider):
    as_record_from_before(outsider.id, {outsider.tenant_id: "owner", owner.tenant_id: "member"})
    page = client.post("/login", {"email": outsider.email, "password": PASSWORD})
    assert page.status_code == 400 and b"Acme Corp" in page.content and owner.tenant_id.encode() in page.content
    assert client.post("/login", {"email": outsider.email, "password": PASSWORD,
                                  "tenant_id": owner.tenant_id}).status_code == 302
    assert assert_ok(client.get("/api/profile"))["tenant_id"] == owner.tenant_id
    assert assert_ok(login(api, outsider.email))["user"]["tenant_id"] == owner.tenant_id
