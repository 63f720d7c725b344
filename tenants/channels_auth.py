"""Channels middleware: authenticate a WebSocket the same way as the API —
a JWT (``?token=``), an API key (``?api_key=``) or the session cookie."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.utils.module_loading import import_string
from rest_framework.exceptions import APIException, AuthenticationFailed

from tenants import tokens
from tenants.authentication import load_principal, valid_api_key
from tenants.middleware import SESSION_EPOCH, SESSION_TENANT, SESSION_USER
from tenants.principal import AnonymousPrincipal, Principal
from tenants.store import TenantStore
from veloflux_site.realtime.auth import AccessTokenExpired, AccessTokenInvalid
from veloflux_site.storage.errors import UNAVAILABLE_ERRORS

# RFC 6455 1013 "Try Again Later": the store cannot say who this is right now.
STORE_UNAVAILABLE_CLOSE = 1013


def _user_principal(user_id: str, tenant_id: str | None, method: str, claims: dict | None = None,
                    auth_epoch: int = 0):
    try:
        principal = load_principal(user_id, tenant_id, method, auth_epoch=auth_epoch, claims=claims)
    except APIException:
        return AnonymousPrincipal()  # tenant gone or suspended
    return principal or AnonymousPrincipal()


def resolve_principal(query_string: bytes, headers: list[tuple[bytes, bytes]]):
    params = parse_qs(query_string.decode("latin-1"))
    token = (params.get("token") or [None])[0]
    if token:
        try:
            claims = tokens.verify_access(token)
        except tokens.TokenError:
            return AnonymousPrincipal()
        return _user_principal(claims["sub"], claims.get("tid"), "jwt", claims, claims.get("ae", 0))
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
    return _user_principal(user_id, session.get(SESSION_TENANT), "session", auth_epoch=session.get(SESSION_EPOCH, 0))


class PrincipalAuthMiddleware:
    """Puts ``scope["principal"]`` (and ``scope["user"]``) on every WebSocket connection."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            try:
                principal = await sync_to_async(resolve_principal, thread_sensitive=False)(
                    scope.get("query_string", b""), scope.get("headers", []))
            except UNAVAILABLE_ERRORS:
                await receive()  # websocket.connect
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": STORE_UNAVAILABLE_CLOSE,
                            "reason": "store unavailable; retry in a few seconds"})
                return None
            scope = {**scope, "principal": principal, "user": principal}
        return await self.app(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Refuses a handshake from another site's page (cross-site WebSocket hijacking rides the session
    cookie). Browsers always send Origin; a handshake without one is an API client holding its own
    token or key, which no page can make a browser send, so it is let in (Channels' stock validator
    refuses it, which would lock out every non-browser client)."""

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)


def browser_origin_validator(application) -> BrowserOriginValidator:
    allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return BrowserOriginValidator(application, allowed)


class HubAuth:
    """The realtime hub's auth provider (settings.REALTIME_AUTH_PROVIDER, see
    veloflux_site/realtime/auth.py): the hub asks who a connection is through this, never importing tenants."""

    resolve_principal = staticmethod(resolve_principal)

    @staticmethod
    def verify_access_token(token: str) -> dict:
        try:
            return tokens.verify_access(token)
        except tokens.TokenError as exc:
            if exc.code == "token_expired":
                raise AccessTokenExpired(token) from exc
            raise AccessTokenInvalid(exc.code) from exc

    @staticmethod
    def tenant_ids_for(principal, requested: str | None = None) -> list[str]:
        """The tenants a stream may show: the caller's, or (platform admins) one asked for or all."""
        if principal.is_platform_admin:
            if requested:
                return [requested] if TenantStore().find(requested) else []
            return TenantStore().ids()
        return [principal.tenant_id] if principal.tenant_id else []

    @staticmethod
    def principal_for_claims(claims: dict):
        try:
            return load_principal(claims["sub"], claims.get("tid"), "jwt", auth_epoch=claims.get("ae", 0),
                                  claims=claims)
        except APIException:  # tenant gone or suspended
            return None
