"""JWT access tokens, rotating refresh tokens with reuse detection, logout revocation."""

from __future__ import annotations

import jwt
from django.conf import settings as django_settings

from tenants import tokens
from tests.support.actors import PASSWORD, actor_for
from tests.support.assertions import assert_error, assert_ok
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def refresh(api, refresh_token: str):
    return api.post("/api/auth/refresh", {"refresh_token": refresh_token})


def test_it_rotates_a_refresh_token_into_a_new_pair(api, owner):
    body = assert_ok(refresh(api, owner.refresh_token))
    assert body["refresh_token"] != owner.refresh_token
    assert body["token"] != owner.token
    assert body["user"]["id"] == owner.id and body["user"]["tenant_id"] == owner.tenant_id
    assert_ok(api.get("/api/profile", **bearer(body["token"])))
    # The new refresh token works once more.
    assert_ok(refresh(api, body["refresh_token"]))


def test_it_refuses_a_used_refresh_token_and_revokes_the_whole_family(api, owner):
    newer = assert_ok(refresh(api, owner.refresh_token))
    assert_error(refresh(api, owner.refresh_token), 401, "token_reused")
    # Everything of that login is now dead: the newest refresh token and every access token.
    assert_error(refresh(api, newer["refresh_token"]), 401, "token_revoked")
    assert_error(api.get("/api/profile", **bearer(newer["token"])), 401, "authentication_failed")
    assert_error(api.get("/api/profile", **bearer(owner.token)), 401, "authentication_failed")


def test_it_keeps_other_logins_alive_when_one_family_is_revoked(api, owner):
    other = actor_for(owner.id, owner.tenant_id)
    refresh(api, owner.refresh_token)
    refresh(api, owner.refresh_token)  # reuse: revokes the first family only
    assert_ok(api.as_(other).get("/api/profile"))


def test_it_refuses_an_access_token_as_a_refresh_token(api, owner):
    assert_error(refresh(api, owner.token), 401, "token_invalid")


def test_it_refuses_a_refresh_token_as_an_access_token(api, owner):
    assert_error(api.get("/api/profile", **bearer(owner.refresh_token)), 401, "authentication_failed")


def test_it_refuses_a_tampered_or_garbage_token(api, owner):
    header, payload, signature = owner.token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert_error(api.get("/api/profile", **bearer(tampered)), 401, "authentication_failed")
    assert_error(api.get("/api/profile", **bearer("garbage")), 401, "authentication_failed")
    assert_error(refresh(api, "garbage"), 401, "token_invalid")


def test_it_refuses_a_token_signed_with_another_key(api, owner):
    claims = jwt.decode(owner.token, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-our-key-but-long-enough-for-hmac-sha256", algorithm="HS256")
    assert_error(api.get("/api/profile", **bearer(forged)), 401, "authentication_failed")


def test_it_refuses_an_expired_access_token(api, owner, settings):
    settings.JWT_ACCESS_TTL = -10
    expired = tokens.issue_pair(owner.id, owner.tenant_id).access
    error = assert_error(api.get("/api/profile", **bearer(expired)), 401, "authentication_failed")
    assert "expired" in error["message"]


def test_it_refuses_a_refresh_token_unknown_to_the_store(api, owner):
    claims = jwt.decode(owner.refresh_token, options={"verify_signature": False})
    get_redis().delete(keys.refresh_token(claims["jti"]))
    assert_error(refresh(api, owner.refresh_token), 401, "token_invalid")


def test_it_validates_the_refresh_body(api):
    error = assert_error(api.post("/api/auth/refresh", {}), 400, "validation_error")
    assert "refresh_token" in error["fields"]


def test_it_answers_401_with_a_challenge_without_credentials(api):
    response = api.get("/api/profile")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_logs_out_the_access_token_and_its_refresh_token(api, owner):
    assert api.as_(owner).post("/api/auth/logout", {"refresh_token": owner.refresh_token}).status_code == 204
    assert_error(api.as_(owner).get("/api/profile"), 401, "authentication_failed")
    assert_error(refresh(api, owner.refresh_token), 401, "token_revoked")


def test_it_logs_out_without_a_body(api, owner):
    assert api.as_(owner).post("/api/auth/logout").status_code == 204
    assert_error(api.as_(owner).get("/api/profile"), 401)
    # The pair shares one family: its refresh token is dead too.
    assert_error(refresh(api, owner.refresh_token), 401, "token_revoked")


def test_it_keeps_the_deny_list_entry_only_as_long_as_the_token_lives(api, owner):
    claims = jwt.decode(owner.token, options={"verify_signature": False})
    api.as_(owner).post("/api/auth/logout")
    ttl = get_redis().pttl(keys.access_denylist(claims["jti"]))
    assert 0 < ttl <= django_settings.JWT_ACCESS_TTL * 1000


def test_it_refuses_logout_without_credentials(api, owner):
    assert_error(api.post("/api/auth/logout", {"refresh_token": owner.refresh_token}), 401, "not_authenticated")
    assert_ok(refresh(api, owner.refresh_token))


def test_it_refuses_logout_with_a_garbage_refresh_token(api, owner):
    error = assert_error(api.as_(owner).post("/api/auth/logout", {"refresh_token": "garbage"}), 400)
    assert "refresh_token" in error["fields"]


def test_it_refuses_to_revoke_another_users_refresh_token_on_logout(api, owner, member):
    response = api.as_(owner).post("/api/auth/logout", {"refresh_token": member.refresh_token})
    assert_error(response, 400, "token_invalid")
    assert_ok(refresh(api, member.refresh_token))


def test_it_cuts_off_a_user_removed_from_the_tenant(api, owner, member):
    assert api.as_(owner).delete(f"/api/tenants/{owner.tenant_id}/users/{member.id}").status_code == 204
    assert_error(api.as_(member).get("/api/profile"), 401, "authentication_failed")
    assert_error(refresh(api, member.refresh_token), 401)


def test_it_cuts_off_a_deactivated_user(api, owner, member):
    assert_ok(api.as_(owner).put(f"/api/tenants/{owner.tenant_id}/users/{member.id}", {"active": False}))
    assert_error(api.as_(member).get("/api/profile"), 401, "authentication_failed")
    assert_error(refresh(api, member.refresh_token), 401)
    error = assert_error(api.post("/api/auth/login", {"email": member.email, "password": PASSWORD}), 403)
    assert error["code"] == "account_disabled"


def test_it_changes_nothing_when_logout_gets_a_bad_refresh_token(api, owner, member):
    assert_error(api.as_(owner).post("/api/auth/logout", {"refresh_token": member.refresh_token}), 400)
    assert_ok(api.as_(owner).get("/api/profile"))


def test_it_refuses_an_unsigned_token(api, owner):
    claims = jwt.decode(owner.token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert_error(api.get("/api/profile", **bearer(unsigned)), 401, "authentication_failed")


def test_it_issues_short_lived_access_tokens(owner):
    claims = jwt.decode(owner.token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == django_settings.JWT_ACCESS_TTL <= 3600
    assert claims["typ"] == "access" and claims["tid"] == owner.tenant_id


# --- API.md: existing clients refresh with the access token itself (Bearer header, no body) ----------
def renew(api, access_token: str):
    return api.post("/api/auth/refresh", None, **bearer(access_token))


def test_it_renews_a_valid_access_token_for_existing_clients(api, owner):
    body = assert_ok(renew(api, owner.token))
    assert set(body) == {"token", "expires_at"} and body["token"] != owner.token
    assert_ok(api.get("/api/profile", **bearer(body["token"])))
    # Same family: signing out with the renewed token ends the login's refresh token too.
    assert api.post("/api/auth/logout", None, **bearer(body["token"])).status_code == 204
    assert_error(refresh(api, owner.refresh_token), 401, "token_revoked")


def test_it_renews_no_revoked_expired_or_refresh_token(api, owner, settings):
    assert_error(renew(api, owner.refresh_token), 401, "token_invalid")
    assert_error(renew(api, "garbage"), 401, "token_invalid")
    settings.JWT_ACCESS_TTL = -10
    assert_error(renew(api, tokens.issue_pair(owner.id, owner.tenant_id).access), 401, "token_expired")
    settings.JWT_ACCESS_TTL = 900
    assert api.post("/api/auth/logout", None, **bearer(owner.token)).status_code == 204
    assert_error(renew(api, owner.token), 401, "token_revoked")


def test_it_renews_nothing_for_a_user_cut_off_since(api, owner, member):
    assert_ok(api.as_(owner).delete(f"/api/tenants/{owner.tenant_id}/users/{member.id}"), 204)
    assert_error(renew(api, member.token), 401, "token_invalid")
