"""GET/PUT /api/profile: the caller's own profile; email and password need the current password."""

from __future__ import annotations

import pytest

from tests.support.actors import PASSWORD
from tests.support.assertions import assert_error, assert_ok, audit_actions
from tests.support.invites import join_by_invitation

PROFILE = "/api/profile"


def test_it_shows_the_callers_profile(api, member):
    body = assert_ok(api.as_(member).get(PROFILE))
    assert body["id"] == member.id and body["email"] == member.email
    assert body["role"] == "member" and body["tenant_id"] == member.tenant_id
    assert "password_hash" not in body


def test_it_updates_names(api, member):
    body = assert_ok(api.as_(member).put(PROFILE, {"first_name": "Mia", "last_name": "Moss"}))
    assert body["name"] == "Mia Moss"
    assert body["version"] == 2
    assert assert_ok(api.as_(member).get(PROFILE))["first_name"] == "Mia"
    assert audit_actions(member.tenant_id)[-1] == "profile.update"


def test_it_changes_the_password_with_the_current_one(api, member):
    assert_ok(api.as_(member).put(PROFILE, {"current_password": PASSWORD, "new_password": "brand-new-secret"}))
    assert_error(api.post("/api/auth/login", {"email": member.email, "password": PASSWORD}), 401)
    assert_ok(api.post("/api/auth/login", {"email": member.email, "password": "brand-new-secret"}))


def test_it_never_writes_a_password_into_the_audit_log(api, member, admin):
    api.as_(member).put(PROFILE, {"current_password": PASSWORD, "new_password": "brand-new-secret"})
    entries = assert_ok(api.as_(admin).get("/api/audit", {"action": "profile.update"}))["items"]
    assert "password" in entries[0]["changes"]  # recorded as changed, its value redacted
    assert "brand-new-secret" not in repr(entries) and "md5$" not in repr(entries)


@pytest.mark.parametrize("body", [
    {"new_password": "brand-new-secret"},
    {"current_password": "wrong", "new_password": "brand-new-secret"},
    {"email": "moved@acme.test"},
])
def test_it_requires_the_current_password_for_sensitive_changes(api, member, body):
    error = assert_error(api.as_(member).put(PROFILE, body), 400, "validation_error")
    assert "current_password" in error["fields"]
    assert assert_ok(api.as_(member).get(PROFILE))["version"] == 1


def test_it_changes_the_email(api, member):
    body = assert_ok(api.as_(member).put(PROFILE, {"email": "Moved@Acme.test", "current_password": PASSWORD}))
    assert body["email"] == "moved@acme.test"
    assert_ok(api.post("/api/auth/login", {"email": "moved@acme.test", "password": PASSWORD}))
    assert_error(api.post("/api/auth/login", {"email": member.email, "password": PASSWORD}), 401)


def test_it_refuses_an_email_someone_else_uses(api, member, owner):
    error = assert_error(api.as_(member).put(PROFILE, {"email": owner.email, "current_password": PASSWORD}),
                         409, "email_taken")
    assert "email" in error["fields"]


@pytest.mark.parametrize("body, field", [
    ({"email": "nope", "current_password": PASSWORD}, "email"),
    ({"new_password": "short", "current_password": PASSWORD}, "new_password"),
    ({"first_name": "x" * 101}, "first_name"),
])
def test_it_validates_profile_changes(api, member, body, field):
    error = assert_error(api.as_(member).put(PROFILE, body), 400, "validation_error")
    assert field in error["fields"]


def test_it_refuses_the_profile_without_credentials(api):
    assert_error(api.get(PROFILE), 401, "not_authenticated")
    assert_error(api.put(PROFILE, {"first_name": "x"}), 401, "not_authenticated")


def test_it_gives_a_platform_admin_a_profile_without_a_tenant(api, platform_admin):
    body = assert_ok(api.as_(platform_admin).get(PROFILE))
    assert body["is_platform_admin"] is True and body["tenant_id"] is None
    assert_ok(api.as_(platform_admin).put(PROFILE, {"first_name": "Root"}))


def test_it_refuses_a_stale_profile_version(api, member):
    assert_ok(api.as_(member).put(PROFILE, {"first_name": "One", "version": 1}))
    error = assert_error(api.as_(member).put(PROFILE, {"first_name": "Two", "version": 1}), 409, "version_conflict")
    assert error["current_version"] == 2
    assert assert_ok(api.as_(member).get(PROFILE))["first_name"] == "One"


def test_it_ends_every_other_session_when_the_password_changes(api, client, member):
    other_login = assert_ok(api.post("/api/auth/login", {"email": member.email, "password": PASSWORD}))
    assert client.post("/login", {"email": member.email, "password": PASSWORD}).status_code == 302
    assert assert_ok(client.get(PROFILE))["id"] == member.id  # the web session works before

    body = assert_ok(api.as_(member).put(PROFILE, {"current_password": PASSWORD, "new_password": "brand-new-secret"}))

    assert_error(api.with_headers(HTTP_AUTHORIZATION=f"Bearer {other_login['token']}").get(PROFILE), 401)
    assert_error(api.post("/api/auth/refresh", {"refresh_token": other_login["refresh_token"]}), 401)
    assert_error(api.post("/api/auth/refresh", {"refresh_token": member.refresh_token}), 401)
    assert_error(api.as_(member).get(PROFILE), 401)  # the token used for the change is replaced...
    assert client.get(PROFILE).status_code in (401, 403)  # ...and the web session is over
    # ...by the fresh pair the answer carries, which keeps this client signed in.
    fresh = api.with_headers(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert assert_ok(fresh.get(PROFILE))["id"] == member.id
    assert assert_ok(api.post("/api/auth/refresh", {"refresh_token": body["refresh_token"]}))["token"]


def test_it_keeps_the_web_session_that_changed_the_password(client, member):
    assert client.post("/login", {"email": member.email, "password": PASSWORD}).status_code == 302
    csrf = client.cookies["csrftoken"].value
    response = client.put(PROFILE, {"current_password": PASSWORD, "new_password": "brand-new-secret"},
                          content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200, response.content
    assert "token" not in response.json()
    assert assert_ok(client.get(PROFILE))["id"] == member.id


def test_it_lets_only_the_person_rename_themselves_in_every_tenant(api, owner, outsider):
    join_by_invitation(api, owner, outsider)
    # The tenant that invited them cannot rename them; they can, and every tenant sees it.
    assert_error(api.as_(owner).put(f"/api/tenants/{owner.tenant_id}/users/{outsider.id}", {"name": "Pwned"}), 403)
    assert_ok(api.as_(outsider).put(PROFILE, {"first_name": "Oscar", "last_name": "Out"}))
    for tenant_id, actor in ((owner.tenant_id, owner), (outsider.tenant_id, outsider)):
        member = assert_ok(api.as_(actor).get(f"/api/tenants/{tenant_id}/users/{outsider.id}"))
        assert member["name"] == "Oscar Out"
