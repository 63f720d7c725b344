"""JWT access tokens, rotating refresh tokens with reuse detection, revocation.

Access tokens are short-lived JWTs. Refresh tokens are JWTs too, but each one
is also a Redis record that may be used once: using it marks it used and
issues the next one of the same *family*; presenting a used one again means it
leaked, so the whole family (and every access token of it) is revoked.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import jwt
import redis
from django.conf import settings

from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

ALGORITHM = "HS256"
ISSUER = "veloflux"

ROTATE_SCRIPT = r"""
local family = redis.call('GET', KEYS[2])
if not family then return 'unknown' end
if family == 'revoked' then return 'revoked' end
local raw = redis.call('GET', KEYS[1])
if not raw then return 'unknown' end
local state = cjson.decode(raw)
if state.used then
  redis.call('SET', KEYS[2], 'revoked', 'KEEPTTL')
  return 'reused'
end
state.used = true
redis.call('SET', KEYS[1], cjson.encode(state), 'KEEPTTL')
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 'ok'
"""


class TokenError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class TokenPair:
    access: str
    refresh: str
    access_expires_at: int
    family: str


def _encode(claims: dict) -> str:
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm=ALGORITHM)


def _decode(token: str, expected_type: str) -> dict:
    try:
        claims = jwt.decode(token, settings.JWT_SIGNING_KEY, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "iat", "jti", "sub", "typ", "fam"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "The token has expired; refresh it or log in again.")
    except jwt.InvalidTokenError as exc:
        raise TokenError("token_invalid", f"The token is not valid ({exc}).")
    if claims.get("typ") != expected_type:
        raise TokenError("token_invalid", f"Expected a {expected_type} token.")
    return claims


def _claims(user_id: str, tenant_id: str | None, family: str, token_type: str, ttl: float, epoch: int) -> dict:
    now = int(time.time())
    return {"iss": ISSUER, "sub": user_id, "tid": tenant_id, "fam": family, "typ": token_type, "ae": epoch,
            "jti": uuid.uuid4().hex, "iat": now, "exp": now + int(ttl)}


def _refresh_state(claims: dict) -> str:
    return json.dumps({"user_id": claims["sub"], "tenant_id": claims["tid"], "family": claims["fam"],
                       "used": False})


def issue_pair(user_id: str, tenant_id: str | None, auth_epoch: int = 0,
               client: redis.Redis | None = None) -> TokenPair:
    """A new login: a new family, an access token and its first refresh token."""
    client = client or get_redis()
    family = uuid.uuid4().hex
    access = _claims(user_id, tenant_id, family, "access", settings.JWT_ACCESS_TTL, auth_epoch)
    refresh = _claims(user_id, tenant_id, family, "refresh", settings.JWT_REFRESH_TTL, auth_epoch)
    ttl_ms = int(settings.JWT_REFRESH_TTL * 1000)
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.token_family(family), "active", px=ttl_ms)
    pipe.set(keys.refresh_token(refresh["jti"]), _refresh_state(refresh), px=ttl_ms)
    pipe.execute()
    return TokenPair(_encode(access), _encode(refresh), access["exp"], family)


def rotate(refresh_token: str, client: redis.Redis | None = None) -> tuple[dict, TokenPair]:
    """Use a refresh token once: returns its claims and the next pair of the same family."""
    client = client or get_redis()
    old = _decode(refresh_token, "refresh")
    epoch = old.get("ae", 0)
    access = _claims(old["sub"], old["tid"], old["fam"], "access", settings.JWT_ACCESS_TTL, epoch)
    refresh = _claims(old["sub"], old["tid"], old["fam"], "refresh", settings.JWT_REFRESH_TTL, epoch)
    result = client.eval(
        ROTATE_SCRIPT, 3,
        keys.refresh_token(old["jti"]), keys.token_family(old["fam"]), keys.refresh_token(refresh["jti"]),
        _refresh_state(refresh), int(settings.JWT_REFRESH_TTL * 1000),
    )
    if result == "reused":
        raise TokenError("token_reused", "This refresh token was already used. For safety every session of "
                                         "this login is now signed out; log in again.")
    if result == "revoked":
        raise TokenError("token_revoked", "This session was signed out; log in again.")
    if result != "ok":
        raise TokenError("token_invalid", "Unknown refresh token; log in again.")
    return old, TokenPair(_encode(access), _encode(refresh), access["exp"], old["fam"])


def verify_access(token: str, client: redis.Redis | None = None) -> dict:
    """Signature, expiry, type, and neither the token nor its family revoked."""
    claims = _decode(token, "access")
    client = client or get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.exists(keys.access_denylist(claims["jti"]))
    pipe.get(keys.token_family(claims["fam"]))
    denied, family = pipe.execute()
    if denied or family != "active":
        raise TokenError("token_revoked", "This token was revoked; log in again.")
    return claims


def renew_access(access_token: str, client: redis.Redis | None = None) -> tuple[dict, str, int]:
    """Existing clients' refresh: a valid access token buys a new one in the same family (no refresh token).

    Bounded like the refresh path: the family must still be active (logout and reuse detection end it), and
    the family key expires with the login's refresh lifetime, so a copied access token cannot live forever.
    Returns the old claims, the new access token and its expiry (epoch seconds).
    """
    old = verify_access(access_token, client)
    new = _claims(old["sub"], old["tid"], old["fam"], "access", settings.JWT_ACCESS_TTL, old.get("ae", 0))
    return old, _encode(new), new["exp"]


def revoke(claims: dict, client: redis.Redis | None = None) -> None:
    """Logout: deny this access token until it expires and end its family."""
    client = client or get_redis()
    remaining_ms = max(1, int((claims["exp"] - time.time()) * 1000))
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.access_denylist(claims["jti"]), "1", px=remaining_ms)
    pipe.set(keys.token_family(claims["fam"]), "revoked", keepttl=True, xx=True)
    pipe.execute()


def refresh_claims_of(refresh_token: str, user_id: str | None) -> dict:
    """A refresh token's claims, refused unless it belongs to ``user_id``."""
    claims = _decode(refresh_token, "refresh")
    if claims["sub"] != user_id:
        raise TokenError("token_invalid", "This refresh token belongs to another account; send your own.")
    return claims


def revoke_family(family: str, client: redis.Redis | None = None) -> None:
    (client or get_redis()).set(keys.token_family(family), "revoked", keepttl=True, xx=True)
