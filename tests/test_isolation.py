"""Tenant isolation: a user of another tenant, whatever their role, gets 404 on every tenant-scoped
endpoint and method of tenant A, and tenant A's Redis state does not change by a single byte."""

from __future__ import annotations

import pytest

from tests.support.actors import add_actor
from tests.support.assertions import assert_error, assert_ok, redis_dump

# Every tenant-scoped endpoint and method of the tenants app, addressed at tenant A.
# {tid}: tenant A's id, {uid}: a member of tenant A, {key}: an API key of tenant A,
# {inv}: a pending invitation of tenant A.
TENANT_A_ENDPOINTS = [
    ("GET", "/api/tenants/{tid}", None),
    ("PUT", "/api/tenants/{tid}", {"name": "Pwned"}),
    ("PATCH", "/api/tenants/{tid}", {"name": "Pwned"}),
    ("DELETE", "/api/tenants/{tid}", None),
    ("GET", "/api/tenants/{tid}/users", None),
    ("POST", "/api/tenants/{tid}/users", {"email": "spy@evil.test", "role": "owner"}),
    ("GET", "/api/tenants/{tid}/users/{uid}", None),
    ("PUT", "/api/tenants/{tid}/users/{uid}", {"role": "viewer", "active": False}),
    ("PATCH", "/api/tenants/{tid}/users/{uid}", {"role": "viewer"}),
    ("DELETE", "/api/tenants/{tid}/users/{uid}", None),
    ("GET", "/api/tenants/{tid}/invitations", None),
    ("POST", "/api/tenants/{tid}/invitations", {"email": "spy@evil.test", "role": "owner"}),
    ("GET", "/api/tenants/{tid}/invitations/{inv}", None),
    ("DELETE", "/api/tenants/{tid}/invitations/{inv}", None),
    ("GET", "/api/tenants/{tid}/metrics", None),
    ("GET", "/api/tenants/{tid}/logs", None),
    ("GET", "/api/tenants/{tid}/logs?type=access", None),
    ("GET", "/api/tenants/{tid}/usage", None),
    ("GET", "/api/tenants/{tid}/alerts", None),
    ("GET", "/api/tenants/{tid}/status", None),
    ("GET", "/api/tenants/{tid}/billing", None),
    ("GET", "/api/tenants/{tid}/config", None),
    ("GET", "/api/auth/api-keys/{key}", None),
    ("DELETE", "/api/auth/api-keys/{key}", None),
]

# Endpoints whose tenant comes from the credential: pointing X-Tenant-ID at tenant A must not switch it.
HEADER_ENDPOINTS = [
    ("GET", "/api/audit", None),
    ("GET", "/api/auth/api-keys", None),
    ("POST", "/api/auth/api-keys", {"name": "spy", "role": "viewer"}),
    ("GET", "/api/profile", None),
    ("PUT", "/api/profile", {"first_name": "Spy"}),
    ("GET", "/api/tenants", None),
    *TENANT_A_ENDPOINTS,
]

OUTSIDER_ROLES = ["owner", "admin", "member", "viewer", "api_key"]


@pytest.fixture
def world(api, tenant_a, outsider):
    """Tenant A with a member and an API key; tenant B with an actor of every role."""
    key = assert_ok(api.as_(tenant_a["owner"]).post("/api/auth/api-keys", {"name": "a-key", "role": "admin"}), 201)
    invitation = assert_ok(api.as_(tenant_a["owner"]).post(f"/api/tenants/{tenant_a['id']}/invitations",
                                                           {"email": "invitee@elsewhere.test"}), 201)
    b = outsider.tenant_id
    b_key = assert_ok(api.as_(outsider).post("/api/auth/api-keys", {"name": "b-key", "role": "owner"}), 201)
    # The key's first use records its last_used_at (in tenant B); later uses within a minute write nothing.
    assert_ok(api.with_headers(HTTP_X_API_KEY=b_key["key"]).get(f"/api/tenants/{b}"))
    return {
        "tid": tenant_a["id"], "uid": tenant_a["member"].id, "key": key["id"], "inv": invitation["id"],
        "outsiders": {
            "owner": api.as_(outsider),
            "admin": api.as_(add_actor(b, "admin@outsider.test", "admin")),
            "member": api.as_(add_actor(b, "member@outsider.test", "member")),
            "viewer": api.as_(add_actor(b, "viewer@outsider.test", "viewer")),
            "api_key": api.with_headers(HTTP_X_API_KEY=b_key["key"]),
        },
    }


def _call(client, method, template, body, world):
    path = template.format(**world)
    return client.request(method, path, body)


def _assert_hidden(response, role: str):
    assert response.status_code == 404, (role, response.status_code, response.content[:300])
    assert_error(response, 404, "not_found")
    # The answer says nothing about tenant A beyond what the caller sent.
    assert b"Acme" not in response.content and b"acme.test" not in response.content


# The roles are walked inside one test per endpoint (not parametrized) to keep the suite fast:
# the world fixture is the expensive part.
@pytest.mark.parametrize("method, template, body", TENANT_A_ENDPOINTS,
                         ids=[f"{m} {t}" for m, t, _ in TENANT_A_ENDPOINTS])
def test_it_hides_tenant_a_from_every_outsider(world, method, template, body):
    before = redis_dump()
    for role in OUTSIDER_ROLES:
        _assert_hidden(_call(world["outsiders"][role], method, template, body, world), role)
        assert redis_dump() == before, role


@pytest.mark.parametrize("method, template, body", HEADER_ENDPOINTS,
                         ids=[f"{m} {t}" for m, t, _ in HEADER_ENDPOINTS])
def test_it_ignores_x_tenant_id_pointing_at_tenant_a(world, method, template, body):
    before = redis_dump()
    for role in OUTSIDER_ROLES:
        client = world["outsiders"][role].with_headers(HTTP_X_TENANT_ID=world["tid"])
        _assert_hidden(_call(client, method, template, body, world), role)
        assert redis_dump() == before, role


def test_it_lists_only_the_outsiders_own_tenant(world):
    body = assert_ok(world["outsiders"]["owner"].get("/api/tenants"))
    assert world["tid"] not in {t["id"] for t in body["items"]}
    audit = assert_ok(world["outsiders"]["owner"].get("/api/audit", {"object_id": world["tid"]}))
    assert audit["items"] == []


def test_it_lets_tenant_a_still_reach_everything_afterwards(api, world, tenant_a):
    for role in OUTSIDER_ROLES:
        for method, template, body in TENANT_A_ENDPOINTS:
            _call(world["outsiders"][role], method, template, body, world)
    owner = api.as_(tenant_a["owner"])
    assert assert_ok(owner.get(f"/api/tenants/{world['tid']}"))["name"] == "Acme Corp"
    assert assert_ok(owner.get(f"/api/tenants/{world['tid']}/users"))["total_count"] == 4
    assert_ok(owner.get(f"/api/auth/api-keys/{world['key']}"))
    assert assert_ok(owner.get(f"/api/tenants/{world['tid']}/invitations"))["total_count"] == 1


def test_it_keeps_tenant_a_invitations_from_outsiders_profiles(world):
    before = redis_dump()
    for role in ("owner", "admin", "member", "viewer"):
        client = world["outsiders"][role]
        assert assert_ok(client.get("/api/profile/invitations"))["items"] == []
        _assert_hidden(client.delete(f"/api/profile/invitations/{world['inv']}"), role)
    assert_error(world["outsiders"]["api_key"].delete(f"/api/profile/invitations/{world['inv']}"), 403)
    assert redis_dump() == before
