"""Odd identifiers and headers: a clear 4xx, never a 500."""

from __future__ import annotations

import pytest

from tests.support.assertions import assert_error

ODD_IDS = ["a%20b", "%7Bt%3Ax%7D", "x" * 300, "%E2%98%83", "..", "%00"]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_it_answers_404_for_odd_ids_in_urls(api, owner, platform_admin, odd):
    tid = owner.tenant_id
    for caller in (api.as_(owner), api.as_(platform_admin)):
        assert_error(caller.get(f"/api/tenants/{tid}/users/{odd}"), 404, "not_found")
        assert_error(caller.delete(f"/api/tenants/{tid}/users/{odd}"), 404, "not_found")
        assert_error(caller.get(f"/api/auth/api-keys/{odd}", HTTP_X_TENANT_ID=tid), 404, "not_found")
    assert_error(api.as_(platform_admin).get(f"/api/tenants/{odd}"), 404, "not_found")
    assert_error(api.as_(platform_admin).get(f"/api/tenants/{odd}/status"), 404, "not_found")


@pytest.mark.parametrize("odd", ["a b", "{t:x}", "x" * 300, "☃"])
def test_it_answers_404_for_an_odd_x_tenant_id(api, platform_admin, odd):
    header = odd.encode("utf-8").decode("latin-1")
    assert_error(api.as_(platform_admin).get("/api/audit", HTTP_X_TENANT_ID=header), 404, "not_found")


@pytest.mark.parametrize("odd", ["a b", "{t:x}", "x" * 64])
def test_it_refuses_an_odd_tenant_at_login(api, platform_admin, odd):
    response = api.post("/api/auth/login", {"email": platform_admin.email, "password": "correct-horse-battery",
                                            "tenant_id": odd})
    assert response.status_code in (400, 403, 404), response.content
    assert_error(response, response.status_code)


def test_it_filters_the_audit_log_by_odd_values_without_failing(api, owner):
    response = api.as_(owner).get("/api/audit", {"object_id": "{x} y", "actor": "☃"})
    assert response.status_code == 200 and response.json()["items"] == []
