"""RBAC over every endpoint of the tenants app: no credentials is a 401; a role below the endpoint's
minimum is a 403 that changes nothing; the minimum role succeeds. Platform admins act in any tenant."""

from __future__ import annotations

import pytest

from tests.support.assertions import assert_error, assert_ok, redis_dump

ROLES = ["viewer", "member", "admin", "owner"]

# (method, path, body, minimum role, success status). {tid}: tenant A, {uid}: its member, {key}: an API key.
ENDPOINTS = [
    ("GET", "/api/profile", None, "viewer", 200),
    ("PUT", "/api/profile", {"first_name": "Changed"}, "viewer", 200),
    ("GET", "/api/tenants", None, "viewer", 200),
    ("GET", "/api/tenants/{tid}", None, "viewer", 200),
    ("PUT", "/api/tenants/{tid}", {"name": "Renamed"}, "owner", 200),
    ("PATCH", "/api/tenants/{tid}", {"name": "Renamed"}, "owner", 200),
    ("DELETE", "/api/tenants/{tid}", None, "owner", 204),
    ("GET", "/api/tenants/{tid}/users", None, "viewer", 200),
    ("POST", "/api/tenants/{tid}/users", {"email": "new@acme.test", "role": "viewer"}, "admin", 201),
    ("GET", "/api/tenants/{tid}/users/{uid}", None, "viewer", 200),
    ("PUT", "/api/tenants/{tid}/users/{uid}", {"role": "viewer"}, "admin", 200),
    ("PATCH", "/api/tenants/{tid}/users/{uid}", {"role": "member"}, "admin", 200),
    ("DELETE", "/api/tenants/{tid}/users/{uid}", None, "admin", 204),
    ("GET", "/api/tenants/{tid}/metrics", None, "viewer", 200),
    ("GET", "/api/tenants/{tid}/logs", None, "admin", 200),
    ("GET", "/api/tenants/{tid}/usage", None, "viewer", 200),
    ("GET", "/api/tenants/{tid}/alerts", None, "viewer", 200),
    ("GET", "/api/tenants/{tid}/status", None, "viewer", 200),
    ("GET", "/api/tenants/{tid}/billing", None, "admin", 200),
    ("GET", "/api/tenants/{tid}/config", None, "viewer", 200),
    ("GET", "/api/auth/api-keys", None, "admin", 200),
    ("POST", "/api/auth/api-keys", {"name": "k", "role": "viewer"}, "admin", 201),
    ("GET", "/api/auth/api-keys/{key}", None, "admin", 200),
    ("DELETE", "/api/auth/api-keys/{key}", None, "admin", 204),
    ("GET", "/api/audit", None, "admin", 200),
]
IDS = [f"{method} {path}" for method, path, *_ in ENDPOINTS]


@pytest.fixture
def ids(api, tenant_a) -> dict:
    key = assert_ok(api.as_(tenant_a["owner"]).post("/api/auth/api-keys", {"name": "k0"}), 201)
    return {"tid": tenant_a["id"], "uid": tenant_a["member"].id, "key": key["id"]}


@pytest.mark.parametrize("method, path, body, minimum, success", ENDPOINTS, ids=IDS)
def test_it_requires_credentials(api, ids, method, path, body, minimum, success):
    before = redis_dump()
    response = api.request(method, path.format(**ids), body)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"]
    assert redis_dump() == before


@pytest.mark.parametrize("method, path, body, minimum, success", ENDPOINTS, ids=IDS)
def test_it_enforces_the_minimum_role(api, tenant_a, ids, method, path, body, minimum, success):
    before = redis_dump()
    for role in ROLES[:ROLES.index(minimum)]:
        response = api.as_(tenant_a[role]).request(method, path.format(**ids), body)
        assert response.status_code == 403, (role, response.content[:300])
        error = assert_error(response, 403, "permission_denied")
        assert minimum in error["message"]
        assert redis_dump() == before, role
    assert_ok(api.as_(tenant_a[minimum]).request(method, path.format(**ids), body), success)


@pytest.mark.parametrize("method, path, body, minimum, success", ENDPOINTS[2:], ids=IDS[2:])
def test_it_lets_a_platform_admin_act_in_the_tenant(api, platform_admin, ids, method, path, body, minimum,
                                                     success):
    as_root = api.as_(platform_admin, tenant_header=ids["tid"])
    assert_ok(as_root.request(method, path.format(**ids), body), success)
