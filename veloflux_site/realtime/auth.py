"""How the hub learns who a connection is, without knowing any app.

The hub is platform infrastructure: it imports no app. The app that owns accounts (``tenants``)
provides the answers through the object named by ``settings.REALTIME_AUTH_PROVIDER`` (a dotted
path), with three methods:

- ``resolve_principal(query_string: bytes, headers: list[tuple[bytes, bytes]])`` -> principal
  (an anonymous one when the credentials give no access);
- ``verify_access_token(token: str) -> dict``: the claims of an API access token; raises
  :class:`AccessTokenExpired` or :class:`AccessTokenInvalid`;
- ``principal_for_claims(claims: dict)`` -> principal, or None when the account no longer has access;
- ``tenant_ids_for(principal, requested: str | None) -> list[str]``: the tenants a stream may show.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string


class AccessTokenExpired(Exception):
    pass


class AccessTokenInvalid(Exception):
    pass


@cache
def provider() -> Any:
    return import_string(settings.REALTIME_AUTH_PROVIDER)


def resolve_principal(query_string: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    return provider().resolve_principal(query_string, headers)


def verify_access_token(token: str) -> dict:
    return provider().verify_access_token(token)


def principal_for_claims(claims: dict) -> Any:
    return provider().principal_for_claims(claims)


def tenant_ids_for(principal: Any, requested: str | None = None) -> list[str]:
    return provider().tenant_ids_for(principal, requested)
