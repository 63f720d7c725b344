"""Who a Centrifugo ``connect``/``refresh`` token stands for.

Accepted: a hub connection token (POST /api/realtime/token) or an API access token. Expired ->
error 109 (the SDK fetches a new token by itself and reconnects); anything else that does not
give access -> ConnectRefused (disconnect 3500 "invalid token": the SDK stops).
"""

from __future__ import annotations

from veloflux_site.realtime import auth
from veloflux_site.realtime import centrifugo as cf
from veloflux_site.realtime.commands import CommandError, run_sync
from veloflux_site.realtime.tokens import CONNECTION, HubTokenError, peek_type, verify


class ConnectRefused(Exception):
    pass


def _claims(token: str) -> dict:
    if peek_type(token) == "access":
        try:
            return auth.verify_access_token(token)
        except auth.AccessTokenExpired:
            raise CommandError(cf.TOKEN_EXPIRED, "token expired")
        except auth.AccessTokenInvalid:
            raise ConnectRefused("invalid token")
    try:
        return verify(token, CONNECTION)
    except HubTokenError as exc:
        if exc.expired:
            raise CommandError(cf.TOKEN_EXPIRED, "token expired")
        raise ConnectRefused("invalid token")


def _principal(token: str):
    claims = _claims(token)
    principal = auth.principal_for_claims(claims)  # None: tenant gone or suspended, account disabled
    if principal is None:
        raise ConnectRefused("invalid token: this account no longer has access")
    return principal, claims


async def principal_for_token(token: str):
    """(principal, claims); raises CommandError(109) when expired, ConnectRefused when invalid."""
    return await run_sync(_principal, token)
