"""Who a Centrifugo ``connect``/``refresh`` token stands for.

Accepted: a hub connection token (POST /api/realtime/token) or an API access token. Expired ->
error 109 (the SDK fetches a new token by itself and reconnects); anything else that does not
give access -> ConnectRefused (disconnect 3500 "invalid token": the SDK stops).
"""

from __future__ import annotations

from rest_framework.exceptions import APIException

from tenants import tokens as access_tokens
from tenants.authentication import load_principal
from veloflux_site.realtime import centrifugo as cf
from veloflux_site.realtime.commands import CommandError, run_sync
from veloflux_site.realtime.tokens import CONNECTION, HubTokenError, peek_type, verify


class ConnectRefused(Exception):
    pass


def _claims(token: str) -> dict:
    if peek_type(token) == "access":
        try:
            return access_tokens.verify_access(token)
        except access_tokens.TokenError as exc:
            if exc.code == "token_expired":
                raise CommandError(cf.TOKEN_EXPIRED, "token expired")
            raise ConnectRefused("invalid token")
    try:
        return verify(token, CONNECTION)
    except HubTokenError as exc:
        if exc.expired:
            raise CommandError(cf.TOKEN_EXPIRED, "token expired")
        raise ConnectRefused("invalid token")


def _principal(token: str):
    claims = _claims(token)
    try:
        principal = load_principal(claims["sub"], claims.get("tid"), "jwt", auth_epoch=claims.get("ae", 0),
                                   claims=claims)
    except APIException:  # tenant gone or suspended
        principal = None
    if principal is None:
        raise ConnectRefused("invalid token: this account no longer has access")
    return principal, claims


async def principal_for_token(token: str):
    """(principal, claims); raises CommandError(109) when expired, ConnectRefused when invalid."""
    return await run_sync(_principal, token)
