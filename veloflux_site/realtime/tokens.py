"""Centrifugo-style tokens for the hub: a connection JWT and subscription JWTs.

Connection token claims (as Centrifugo's SDKs expect): ``sub`` (the user), ``exp``, optional
``info`` (shown in presence as ``conn_info``) and ``channels`` (server-side subscriptions made
at connect). Ours add ``tid`` (the tenant acted in), ``ae`` (the user's auth epoch: a password
change invalidates the token) and ``typ``, so a hub token is never accepted as an API access
token, nor a subscription token as a connection token.

Subscription token claims: ``sub``, ``channel``, ``exp`` (plus ``tid`` and ``typ``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings

ALGORITHM = "HS256"
ISSUER = "veloflux"
CONNECTION = "hub-connection"
SUBSCRIPTION = "hub-subscription"


class HubTokenError(Exception):
    def __init__(self, expired: bool, message: str):
        super().__init__(message)
        self.expired = expired


@dataclass
class IssuedToken:
    token: str
    expires_at: int


def _key() -> str:
    return settings.REALTIME_TOKEN_SECRET or settings.JWT_SIGNING_KEY


def _issue(claims: dict, ttl: int) -> IssuedToken:
    now = int(time.time())
    claims = {"iss": ISSUER, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex, **claims}
    return IssuedToken(jwt.encode(claims, _key(), algorithm=ALGORITHM), claims["exp"])


def issue_connection(user_id: str, tenant_id: str | None, auth_epoch: int, ttl: int,
                     channels: list[str] | None = None, info: dict | None = None) -> IssuedToken:
    claims: dict = {"typ": CONNECTION, "sub": user_id, "tid": tenant_id, "ae": auth_epoch}
    if channels:
        claims["channels"] = channels
    if info is not None:
        claims["info"] = info
    return _issue(claims, ttl)


def issue_subscription(user_id: str, tenant_id: str | None, channel: str, ttl: int) -> IssuedToken:
    return _issue({"typ": SUBSCRIPTION, "sub": user_id, "tid": tenant_id, "channel": channel}, ttl)


def peek_type(token: str) -> str | None:
    """The ``typ`` claim, unverified: only to choose which verification applies."""
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("typ")
    except jwt.InvalidTokenError:
        return None


def verify(token: str, expected_type: str) -> dict:
    try:
        claims = jwt.decode(token, _key(), algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "sub", "typ"]})
    except jwt.ExpiredSignatureError:
        raise HubTokenError(True, "token expired")
    except jwt.InvalidTokenError as exc:
        raise HubTokenError(False, f"invalid token ({exc})")
    if claims.get("typ") != expected_type:
        raise HubTokenError(False, f"invalid token (expected a {expected_type} token)")
    return claims
