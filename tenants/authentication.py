"""DRF authentication, one class per mechanism: JWT bearer, API key, session (+CSRF)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from rest_framework import authentication, exceptions

from tenants import tokens
from tenants.accounts import API_KEY_PREFIX, hash_api_key, touch_api_key
from tenants.models import ApiKey
from tenants.principal import Principal
from tenants.store import TenantStore, UserStore, lookup_api_key
from veloflux_site.api.errors import ApiError, csrf_message
from veloflux_site.storage.connection import get_redis


def bearer_token(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _acting_tenant(requested: str | None, user_tenant: str | None, is_platform_admin: bool) -> str | None:
    """The tenant a call acts in: the credential's, or X-Tenant-ID for platform admins."""
    if not requested or requested == user_tenant:
        return user_tenant
    if not is_platform_admin:
        raise ApiError(404, "not_found", f"tenant {requested!r} not found")
    if TenantStore().find(requested) is None:
        raise ApiError(404, "not_found", f"tenant {requested!r} not found")
    return requested


def check_tenant_active(tenant_id: str | None, is_platform_admin: bool) -> None:
    """A suspended (or deleted) tenant locks its users out at once, not when their token expires."""
    if tenant_id is None or is_platform_admin:
        return
    tenant = TenantStore().find(tenant_id)
    if tenant is None:
        raise exceptions.AuthenticationFailed("This tenant no longer exists; log in again.")
    if not tenant.active:
        raise ApiError(403, "tenant_suspended", "This tenant is suspended; contact support.")


def load_principal(user_id: str, tenant_id: str | None, method: str, *, auth_epoch: int = 0,
                   requested_tenant: str | None = None, claims: dict | None = None) -> Principal | None:
    """The principal a user credential stands for, or None when it no longer gives access.

    Raises (404, 401, 403) when the tenant asked for or acted in is hidden, gone or suspended.
    """
    user = UserStore().find(user_id)
    if user is None or not user.active:
        return None
    if auth_epoch != user.auth_epoch:
        return None  # issued before a password change
    if tenant_id and not user.active_in(tenant_id) and not user.is_platform_admin:
        return None  # removed from the tenant, or switched off there, since the credential was issued
    acting = _acting_tenant(requested_tenant, tenant_id, user.is_platform_admin)
    check_tenant_active(acting, user.is_platform_admin)
    return Principal(auth_method=method, tenant_id=acting, role=user.role_in(acting), user=user,
                     is_platform_admin=user.is_platform_admin, claims=claims or {})


def principal_for_user(request, user_id: str, tenant_id: str | None, method: str, claims: dict | None = None,
                       auth_epoch: int = 0) -> Principal | None:
    return load_principal(user_id, tenant_id, method, auth_epoch=auth_epoch, claims=claims,
                          requested_tenant=request.META.get("HTTP_X_TENANT_ID", "").strip() or None)


class JWTAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or token.startswith(API_KEY_PREFIX):
            return None
        try:
            claims = tokens.verify_access(token)
        except tokens.TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc), code=exc.code)
        principal = principal_for_user(request, claims["sub"], claims.get("tid"), "jwt", claims, claims.get("ae", 0))
        if principal is None:
            raise exceptions.AuthenticationFailed("This account no longer has access; log in again.")
        return principal, claims

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="veloflux"'


def valid_api_key(raw: str) -> ApiKey:
    """The key record for a raw key that is known, unexpired and of an active tenant (HTTP and WebSocket)."""
    record = lookup_api_key(hash_api_key(raw), get_redis())
    if record is None:
        raise exceptions.AuthenticationFailed("Unknown or revoked API key.", code="invalid_api_key")
    if record.expires_at and datetime.fromisoformat(record.expires_at.replace("Z", "+00:00")) <= datetime.now(UTC):
        raise exceptions.AuthenticationFailed("This API key has expired.", code="api_key_expired")
    tenant = TenantStore().find(record.tenant_id)
    if tenant is None or not tenant.active:
        raise exceptions.AuthenticationFailed("This API key's tenant is not active.")
    touch_api_key(record)
    return record


class APIKeyAuthentication(authentication.BaseAuthentication):
    """``X-API-Key: vfk_...``, ``Authorization: Api-Key vfk_...`` or ``Bearer vfk_...``."""

    def authenticate(self, request):
        raw = request.META.get("HTTP_X_API_KEY", "").strip()
        if not raw:
            header = request.META.get("HTTP_AUTHORIZATION", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() in ("api-key", "bearer") and value.strip().startswith(API_KEY_PREFIX):
                raw = value.strip()
        if not raw:
            return None
        record = valid_api_key(raw)
        if request.META.get("HTTP_X_TENANT_ID", record.tenant_id) != record.tenant_id:
            raise ApiError(404, "not_found", "tenant not found")
        return Principal(auth_method="api_key", tenant_id=record.tenant_id, role=record.role, api_key=record), record


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:
        # The reason itself: the failure view's answer is already a JSON error body, and
        # wrapping it again encoded the message twice.
        return reason


class SessionAuthentication(authentication.BaseAuthentication):
    """The web UI's session (set by the login page), with Django's CSRF check on writes."""

    def authenticate(self, request):
        from tenants.middleware import SESSION_EPOCH, SESSION_TENANT, SESSION_USER

        session = getattr(request._request, "session", None)
        user_id = session.get(SESSION_USER) if session is not None else None
        if not user_id:
            return None
        principal = principal_for_user(request, user_id, session.get(SESSION_TENANT), "session",
                                       auth_epoch=session.get(SESSION_EPOCH, 0))
        if principal is None:
            return None
        self.enforce_csrf(request)
        return principal, None

    def enforce_csrf(self, request) -> None:
        # Same approach as DRF's own SessionAuthentication.
        check = _CsrfCheck(lambda req: None)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise ApiError(403, "csrf_failed", csrf_message(reason))
