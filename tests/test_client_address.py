"""The client's address comes from X-Forwarded-For only when a trusted proxy sent it.

These run the Procfile's own web command (a real uvicorn). Before the fix uvicorn trusted
X-Forwarded-For from 127.0.0.1 by default, so a caller on the same host (or behind any local
reverse proxy) could rotate the header to escape the per-IP login limit and forge the audit IP;
registration recorded no IP at all.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.actors import PASSWORD
from tests.support.procfile_web import ProcfileWeb
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

LOGIN_LIMIT = 3
LIMIT = {"VF_LOGIN_RATE_PER_IP": str(LOGIN_LIMIT)}


@pytest.fixture(scope="module")
def untrusting_web(redis_server):
    server = ProcfileWeb(redis_server.url, trusted_proxies="", extra_env=LIMIT).wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def trusting_web(redis_server):
    server = ProcfileWeb(redis_server.url, trusted_proxies="127.0.0.1", extra_env=LIMIT).wait_ready()
    yield server
    server.stop()


def login(web: ProcfileWeb, email: str, forwarded_for: str) -> httpx.Response:
    return httpx.post(f"{web.url}/api/auth/login", json={"email": email, "password": PASSWORD},
                      headers={"X-Forwarded-For": forwarded_for}, timeout=10)


def audit_ips(tenant_id: str) -> list[str]:
    return [fields["ip"] for _, fields in get_redis().xrange(keys.audit_stream(tenant_id))]


def rate_limited_addresses() -> set[str]:
    return {key.split(":")[3] for key in get_redis().scan_iter(match="vf:rl:login:*")}


# --- no trusted proxy (the default) ------------------------------------------------------------
def test_it_counts_logins_against_the_real_address_whatever_x_forwarded_for_says(untrusting_web, owner):
    for index in range(LOGIN_LIMIT):
        assert login(untrusting_web, owner.email, f"203.0.113.{index}").status_code == 200
    refused = login(untrusting_web, owner.email, "203.0.113.99")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert rate_limited_addresses() == {"127.0.0.1"}


def test_it_audits_the_real_address_not_a_spoofed_one(untrusting_web, owner):
    response = httpx.post(f"{untrusting_web.url}/api/pools", json={"name": "web"}, timeout=10, headers={
        "Authorization": f"Bearer {owner.token}", "X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 201, response.text
    assert audit_ips(owner.tenant_id)[-1] == "127.0.0.1"
    assert "198.51.100.7" not in audit_ips(owner.tenant_id)


def test_it_records_the_address_of_a_registration(untrusting_web):
    response = httpx.post(f"{untrusting_web.url}/api/auth/register", timeout=10, headers={
        "X-Forwarded-For": "198.51.100.8"}, json={"email": "new@example.test", "password": PASSWORD,
                                                  "tenant_name": "Newcomer"})
    assert response.status_code == 201, response.text
    tenant_id = response.json()["user"]["tenant_id"]
    assert audit_ips(tenant_id) == ["127.0.0.1", "127.0.0.1"]  # tenant.create, user.add
    assert [fields["ip"] for _, fields in get_redis().xrange(keys.audit_stream(None))] == ["127.0.0.1"]


# --- behind a trusted proxy ---------------------------------------------------------------------
def test_it_believes_x_forwarded_for_from_a_trusted_proxy(trusting_web, owner):
    for _ in range(LOGIN_LIMIT):
        assert login(trusting_web, owner.email, "203.0.113.5").status_code == 200
    assert login(trusting_web, owner.email, "203.0.113.5").status_code == 429
    # Another client behind the proxy has its own count; a spoofed left-most hop does not help.
    assert login(trusting_web, owner.email, "203.0.113.6").status_code == 200
    assert login(trusting_web, owner.email, "1.2.3.4, 203.0.113.5").status_code == 429
    assert rate_limited_addresses() == {"203.0.113.5", "203.0.113.6"}


def test_it_audits_the_forwarded_address_from_a_trusted_proxy(trusting_web, owner):
    response = httpx.post(f"{trusting_web.url}/api/pools", json={"name": "web"}, timeout=10, headers={
        "Authorization": f"Bearer {owner.token}", "X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 201, response.text
    assert audit_ips(owner.tenant_id)[-1] == "198.51.100.7"
