"""Channels middleware: authenticate a WebSocket the same way as the API —
a JWT (``?token=``), an API key (``?api_key=``) or the session cookie."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.utils.module_loading import import_string
from rest_framework.exceptions import AuthenticationFailed

from tenants import tokens
from tenants.authentication import valid_api_key
from tenants.middleware import SESSION_TENANT, SESSION_USER
from tenants.principal import AnonymousPrincipal, Principal
from tenants.store import TenantStore, UserStore


def _user_principal(user_id: str, tenant_id: str | None, method: str, claims: dict | None = None):
    user = UserStore().find(user_id)
    if user is None or not user.active:
        return AnonymousPrincipal()
    if tenant_id and tenant_id not in user.memberships and not user.is_platform_admin:
        return AnonymousPrincipal()
    if tenant_id and not user.is_platform_admin:
        tenant = TenantStore().find(tenant_id)
        if tenant is None or not tenant.active:
            return AnonymousPrincipal()
    return Principal(auth_method=method, tenant_id=tenant_id, role=user.role_in(tenant_id), user=user,
                     is_platform_admin=user.is_platform_admin, claims=claims or {})


def resolve_principal(query_string: bytes, headers: list[tuple[bytes, bytes]]):
    params = parse_qs(query_string.decode("latin-1"))
    token = (params.get("token") or [None])[0]
    if token:
        try:
            claims = tokens.verify_access(token)
        except tokens.TokenError:
            return AnonymousPrincipal()
        return _user_principal(claims["sub"], claims.get("tid"), "jwt", claims)
    raw_key = (params.get("api_key") or [None])[0]
    if raw_key:
        try:
            record = valid_api_key(raw_key)
        except AuthenticationFailed:
            return AnonymousPrincipal()
        return Principal(auth_method="api_key", tenant_id=record.tenant_id, role=record.role, api_key=record)
    cookie_header = b"; ".join(value for name, value in headers if name == b"cookie").decode("latin-1")
    morsel = SimpleCookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return AnonymousPrincipal()
    session: SessionBase = import_string(settings.SESSION_ENGINE + ".SessionStore")(morsel.value)
    user_id = session.get(SESSION_USER)
    if not user_id:
        return AnonymousPrincipal()
    return _user_principal(user_id, session.get(SESSION_TENANT), "session")


class PrincipalAuthMiddleware:
    """Puts ``scope["principal"]`` (and ``scope["user"]``) on every WebSocket connection."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            principal = await sync_to_async(resolve_principal, thread_sensitive=False)(
                scope.get("query_string", b""), scope.get("headers", []))
            scope = {**scope, "principal": principal, "user": principal}
        return await self.app(scope, receive, send)
