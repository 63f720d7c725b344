"""/api/auth/login and /api/auth/register: happy paths, validation, lockout, per-IP rate limit."""

from __future__ import annotations

import time

import pytest

from tests.support.actors import PASSWORD
from tests.support.assertions import assert_error, assert_ok, audit_actions
from tests.support.invites import join_by_invitation
from veloflux_site.storage.connection import get_redis

REGISTRATION = {"email": "New.Owner@Example.test", "password": "s3cret-enough", "first_name": "Nina",
                "last_name": "New", "tenant_name": "Nina's Shop", "plan": "starter"}


def login(api, email, password=PASSWORD, tenant_id=None, **request_extra):
    body = {"email": email, "password": password, **({"tenant_id": tenant_id} if tenant_id else {})}
    return api.post("/api/auth/login", body, **request_extra)


def test_it_logs_in_with_the_documented_shape(api, owner):
    body = assert_ok(login(api, owner.email))
    assert set(body) >= {"token", "refresh_token", "user", "expires_at"}
    assert body["user"]["email"] == owner.email
    assert body["user"]["tenant_id"] == owner.tenant_id
    assert body["user"]["role"] == "owner"
    assert body["expires_at"].endswith("Z")
    assert "password_hash" not in body["user"]
    # The token works.
    me = api.get("/api/profile", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert assert_ok(me)["id"] == owner.id


def test_it_logs_in_case_insensitively_and_records_last_login(api, owner):
    body = assert_ok(login(api, owner.email.upper()))
    assert body["user"]["last_login_at"]


def test_it_logs_in_to_a_chosen_tenant(api, owner, outsider):
    # The outsider also joins tenant A as a viewer, then picks it at login.
    join_by_invitation(api, owner, outsider, "viewer")
    body = assert_ok(login(api, outsider.email, tenant_id=owner.tenant_id))
    assert body["user"]["tenant_id"] == owner.tenant_id
    assert body["user"]["role"] == "viewer"


def test_it_refuses_a_tenant_the_user_does_not_belong_to(api, owner, outsider):
    assert_error(login(api, owner.email, tenant_id=outsider.tenant_id), 403, "not_a_member")


def test_it_refuses_a_wrong_password_without_saying_whether_the_email_exists(api, owner):
    wrong = assert_error(login(api, owner.email, "wrong-password"), 401, "invalid_credentials")
    unknown = assert_error(login(api, "nobody@nowhere.test", "wrong-password"), 401, "invalid_credentials")
    assert wrong["message"] == unknown["message"]


@pytest.mark.parametrize("body, field", [
    ({}, "email"),
    ({"email": "not-an-email", "password": "x"}, "email"),
    ({"email": "a@b.test"}, "password"),
])
def test_it_validates_login_input(api, body, field):
    error = assert_error(api.post("/api/auth/login", body), 400, "validation_error")
    assert field in error["fields"]


def test_it_refuses_a_login_body_that_is_not_an_object(api):
    assert_error(api.post("/api/auth/login", ["email"]), 400, "validation_error")


def test_it_refuses_malformed_json(api):
    response = api.post("/api/auth/login", "{not json", content_type="application/json", format=None)
    assert_error(response, 400, "parse_error")


def test_it_locks_an_account_after_repeated_failures(api, owner, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert_error(login(api, owner.email, "wrong-password"), 401, "invalid_credentials")
    locked = login(api, owner.email)  # even the right password is refused while locked
    error = assert_error(locked, 429, "account_locked")
    assert int(locked["Retry-After"]) > 0
    assert error["retry_after"] > 0
    # Another account is not affected.
    other = api.post("/api/auth/register", {**REGISTRATION, "email": "other@example.test"})
    assert_ok(other, 201)
    assert_ok(login(api, "other@example.test", REGISTRATION["password"]))


def test_it_forgets_failures_after_a_successful_login(api, owner, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(2):
        assert_error(login(api, owner.email, "wrong-password"), 401)
    assert_ok(login(api, owner.email))
    for _ in range(2):
        assert_error(login(api, owner.email, "wrong-password"), 401)
    assert_ok(login(api, owner.email))


def test_it_unlocks_when_the_lockout_expires(api, owner, settings):
    settings.LOGIN_MAX_FAILURES = 2
    settings.LOGIN_LOCKOUT = 0.3  # seconds: Redis expires the lock by itself
    for _ in range(2):
        login(api, owner.email, "wrong-password")
    assert_error(login(api, owner.email), 429, "account_locked")
    time.sleep(0.35)
    assert_ok(login(api, owner.email))


def test_it_rate_limits_logins_per_ip(api, owner, settings):
    settings.LOGIN_RATE_PER_IP = 4
    for _ in range(4):
        assert_ok(login(api, owner.email))
    limited = login(api, owner.email)
    assert_error(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) >= 1
    # Another address still gets in.
    assert_ok(login(api, owner.email, REMOTE_ADDR="10.9.8.7"))


def test_it_counts_the_forwarded_client_only_behind_a_trusted_proxy(api, owner, settings):
    settings.LOGIN_RATE_PER_IP = 2
    # Untrusted peer: X-Forwarded-For is ignored, so rotating it does not escape the limit.
    for index in range(2):
        assert_ok(login(api, owner.email, HTTP_X_FORWARDED_FOR=f"203.0.113.{index}"))
    assert_error(login(api, owner.email, HTTP_X_FORWARDED_FOR="203.0.113.99"), 429, "rate_limited")


def test_it_registers_a_tenant_and_its_owner(api):
    response = api.post("/api/auth/register", REGISTRATION)
    body = assert_ok(response, 201)
    assert body["user"]["email"] == "new.owner@example.test"
    assert body["user"]["role"] == "owner"
    tenant_id = body["user"]["tenant_id"]
    caller = api.with_headers(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    tenant = assert_ok(caller.get(f"/api/tenants/{tenant_id}"))
    assert tenant["name"] == "Nina's Shop"
    assert tenant["plan"] == "starter"
    assert tenant["slug"] == "nina-s-shop"
    assert audit_actions(tenant_id) == ["tenant.create", "user.add"]
    # The new owner can log in with the password.
    assert_ok(login(api, REGISTRATION["email"], REGISTRATION["password"]))


def test_it_refuses_a_second_registration_with_the_same_email(api):
    assert_ok(api.post("/api/auth/register", REGISTRATION), 201)
    before = get_redis().dbsize()
    again = api.post("/api/auth/register", {**REGISTRATION, "email": REGISTRATION["email"].upper(),
                                            "tenant_name": "Another"})
    error = assert_error(again, 409, "email_taken")
    assert "email" in error["fields"]
    # Only the rate-limit counter may have moved.
    assert get_redis().dbsize() == before


def test_it_gives_a_second_tenant_with_the_same_name_its_own_slug(api):
    first = assert_ok(api.post("/api/auth/register", REGISTRATION), 201)
    second = assert_ok(api.post("/api/auth/register", {**REGISTRATION, "email": "b@example.test"}), 201)
    assert first["user"]["tenant_id"] != second["user"]["tenant_id"]


@pytest.mark.parametrize("change, field", [
    ({"email": "nope"}, "email"),
    ({"password": "short"}, "password"),
    ({"password": "1234567890"}, "password"),
    ({"tenant_name": ""}, "tenant_name"),
    ({"plan": "platinum"}, "plan"),
    ({"tenant_name": "x" * 101}, "tenant_name"),
])
def test_it_validates_registration(api, change, field):
    response = api.post("/api/auth/register", {**REGISTRATION, **change})
    error = assert_error(response, 400, "validation_error")
    assert field in error["fields"]
    assert get_redis().dbsize() == 0


def test_it_refuses_a_tenant_name_without_letters_or_digits_clearly(api):
    response = api.post("/api/auth/register", {**REGISTRATION, "tenant_name": "   "})
    assert_error(response, 400, "validation_error")


def test_it_rate_limits_the_forwarded_client_behind_a_trusted_proxy(api, owner, settings):
    settings.LOGIN_RATE_PER_IP = 2
    settings.TRUSTED_PROXIES = ["127.0.0.1/32", "10.0.0.0/8"]
    client = {"HTTP_X_FORWARDED_FOR": "203.0.113.5, 10.1.2.3"}  # client, then an inner trusted hop
    for _ in range(2):
        assert_ok(login(api, owner.email, **client))
    assert_error(login(api, owner.email, **client), 429, "rate_limited")
    # Another client behind the same proxy is not limited; a spoofed left-most hop does not help either.
    assert_ok(login(api, owner.email, HTTP_X_FORWARDED_FOR="203.0.113.6"))
    assert_error(login(api, owner.email, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.5"), 429, "rate_limited")
