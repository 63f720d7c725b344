"""/api/auth/* and /api/profile."""

from __future__ import annotations

from datetime import UTC, datetime

from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from tenants import accounts, tokens
from tenants.api.serializers import (
    ApiKeyCreateSerializer,
    ApiKeyOutSerializer,
    LoginErrorSerializer,
    LoginSerializer,
    LogoutSerializer,
    ProfileOutSerializer,
    ProfileSerializer,
    RefreshOutSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenOutSerializer,
    UserOutSerializer,
)
from tenants.authentication import bearer_token, load_principal
from tenants.middleware import SESSION_EPOCH
from tenants.models import ROLE_RANK
from tenants.permissions import AdminOnly
from tenants.store import ApiKeyStore, TenantStore, UserStore
from veloflux_site.api.client_ip import client_ip
from veloflux_site.api.errors import ApiError
from veloflux_site.api.pagination import paginate_list
from veloflux_site.api.schema import answers, error, list_endpoint
from veloflux_site.api.views import ApiView


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def token_response(user, tenant_id, pair: tokens.TokenPair, status_code: int = 200) -> Response:
    return Response({
        "token": pair.access,
        "refresh_token": pair.refresh,
        "token_type": "Bearer",
        "expires_at": _iso(pair.access_expires_at),
        "user": accounts.user_payload(user, tenant_id),
    }, status=status_code)


class LoginView(ApiView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    serializer_class = LoginSerializer

    @answers(200, TokenOutSerializer, errors={400: OpenApiResponse(LoginErrorSerializer, description=(
        "Invalid input (validation_error), or tenant_required: the person belongs to several tenants and "
        "none was used last; error.tenants lists them ({id, name}): log in again with tenant_id set.")),
        403: error("tenant_suspended (the tenant asked for), or account_disabled (switched off in every tenant)")})
    def post(self, request):
        data = self.validated()
        result = accounts.login(data["email"], data["password"], data.get("tenant_id") or None, client_ip(request))
        return token_response(result.user, result.tenant_id, result.pair)


class RegisterView(ApiView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    serializer_class = RegisterSerializer

    @answers(201, TokenOutSerializer, errors={
        409: error("email_taken: an account with this e-mail already exists (log in instead).")})
    def post(self, request):
        data = self.validated()
        tenant, owner, pair = accounts.register(data, client_ip(request))
        return token_response(owner, tenant.id, pair, status.HTTP_201_CREATED)


class RefreshView(ApiView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    serializer_class = RefreshSerializer

    @answers(200, RefreshOutSerializer, errors={
        400: error("neither a refresh_token in the body nor an access token in 'Authorization: Bearer'"),
        401: error("the refresh token (or, without one, the access token) is expired, revoked, reused or "
                   "unknown: log in again")})
    def post(self, request):
        data = self.validated()
        if "refresh_token" not in data:
            return self._renew_access(request)
        try:
            claims, pair = tokens.rotate(data["refresh_token"])
        except tokens.TokenError as exc:
            raise ApiError(401, exc.code, str(exc))
        principal = _principal_of(claims)
        return token_response(principal.user, claims.get("tid"), pair)

    @staticmethod
    def _renew_access(request) -> Response:
        """API.md's existing clients: the Bearer access token, no body -> {token, expires_at}, same family."""
        access = bearer_token(request)
        if access is None:
            raise ApiError(400, "validation_error", "Send {\"refresh_token\": ...}, or refresh an access token "
                           "that is still valid with 'Authorization: Bearer <access token>' and no body.",
                           {"refresh_token": ["required without a Bearer access token"]})
        try:
            claims, token, expires = tokens.renew_access(access)
        except tokens.TokenError as exc:
            raise ApiError(401, exc.code, str(exc))
        _principal_of(claims)
        return Response({"token": token, "expires_at": _iso(expires)})


def _principal_of(claims: dict):
    principal = load_principal(claims["sub"], claims.get("tid"), "jwt", auth_epoch=claims.get("ae", 0))
    if principal is None:
        raise ApiError(401, "token_invalid", "This account no longer has access; log in again.")
    return principal


class LogoutView(ApiView):
    serializer_class = LogoutSerializer

    @answers(204, None)
    def post(self, request):
        data = self.validated()
        # Check the refresh token first, so a bad one changes nothing (not even the access token).
        refresh_claims = None
        if data.get("refresh_token"):
            try:
                refresh_claims = tokens.refresh_claims_of(data["refresh_token"], getattr(request.user.user, "id", None))
            except tokens.TokenError as exc:
                raise ApiError(400, exc.code, str(exc), {"refresh_token": [str(exc)]})
        if request.auth and isinstance(request.auth, dict):
            tokens.revoke(request.auth)
        if refresh_claims is not None:
            tokens.revoke_family(refresh_claims["fam"])
        if request.user.auth_method == "session":
            request.session.flush()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileView(ApiView):
    serializer_class = ProfileSerializer

    def _user(self):
        user = self.principal.user
        if user is None:
            raise ApiError(403, "permission_denied", "API keys have no profile; use a user's credentials.")
        return user

    @answers(200, UserOutSerializer)
    def get(self, request):
        user = self._user()
        return Response(accounts.user_payload(UserStore().get(user.id), self.tenant_id()))

    @answers(200, ProfileOutSerializer)
    def put(self, request):
        user = self._user()
        data = self.validated(partial=True)
        if "email" in data and data["email"] != user.email and UserStore().find_by_email(data["email"]):
            raise ApiError(409, "email_taken", "Another account uses this email.", {"email": ["already in use"]})
        expected = data.pop("version", None)
        updated = accounts.update_profile(user.id, data, self.actor(), self.tenant_id(), expected)
        body = accounts.user_payload(updated, self.tenant_id())
        if updated.auth_epoch != user.auth_epoch:
            body.update(self._continue_after_password_change(request, updated))
        return Response(body)

    def _continue_after_password_change(self, request, updated) -> dict:
        """Every other session just ended; keep this one going with fresh credentials."""
        if self.principal.auth_method == "session":
            request.session.cycle_key()
            request.session[SESSION_EPOCH] = updated.auth_epoch
            return {}
        if isinstance(request.auth, dict):
            tokens.revoke(request.auth)
        pair = tokens.issue_pair(updated.id, self.tenant_id(), updated.auth_epoch)
        return {"token": pair.access, "refresh_token": pair.refresh, "token_type": "Bearer",
                "expires_at": _iso(pair.access_expires_at)}


def _key_payload(record, raw: str | None = None) -> dict:
    data = record.public_dict()
    if raw:
        data["key"] = raw
    return data


class ApiKeyListView(ApiView):
    permission_classes = (AdminOnly,)
    serializer_class = ApiKeyCreateSerializer

    @list_endpoint("auth_api_keys_list", "ApiKeyPage", ApiKeyOutSerializer)
    def get(self, request):
        keys = sorted(ApiKeyStore(self.tenant_id()).all(), key=lambda k: k.created_at)
        keys = accounts.api_keys_with_last_use(self.tenant_id(), keys)
        return Response(paginate_list(request, [_key_payload(k) for k in keys]))

    @answers(201, ApiKeyOutSerializer)
    def post(self, request):
        data = self.validated()
        if not self.principal.is_platform_admin and ROLE_RANK[data["role"]] > ROLE_RANK[self.principal.role]:
            raise ApiError(403, "permission_denied", f"You cannot create a key with more rights than yours "
                                                     f"({self.principal.role}).", {"role": ["above your own role"]})
        expires = data.get("expires_at")
        if expires and expires <= datetime.now(UTC):
            raise ApiError(400, "validation_error", "expires_at must be in the future.",
                           {"expires_at": ["must be in the future"]})
        tenant = TenantStore().get(self.tenant_id())
        record, raw = accounts.create_api_key(tenant, data["name"], data["role"],
                                              expires.isoformat().replace("+00:00", "Z") if expires else None,
                                              self.actor())
        return Response(_key_payload(record, raw), status=status.HTTP_201_CREATED)


class ApiKeyDetailView(ApiView):
    permission_classes = (AdminOnly,)

    def initial(self, request, *args, **kwargs):
        # A key that is not in the caller's tenant is a 404 whatever their role (as for any other
        # tenant's object); the role check only applies to the caller's own keys.
        self.perform_authentication(request)
        principal = request.user
        if principal.is_authenticated and principal.tenant_id and \
                ApiKeyStore(principal.tenant_id).find(kwargs["key_id"]) is None:
            raise ApiError(404, "not_found", f"API key {kwargs['key_id']!r} not found")
        super().initial(request, *args, **kwargs)

    @answers(200, ApiKeyOutSerializer)
    def get(self, request, key_id: str):
        record = ApiKeyStore(self.tenant_id()).get(key_id)
        return Response(_key_payload(accounts.api_keys_with_last_use(self.tenant_id(), [record])[0]))

    def delete(self, request, key_id: str):
        accounts.revoke_api_key(self.tenant_id(), key_id, self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)




class ApiRootView(ApiView):
    """/api/: where to go from here (the browsable API's front page). Public: it lists paths, no data."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    LINKS = ("auth-login", "auth-register", "auth-refresh", "auth-logout", "profile", "api-keys", "tenants", "audit",
             "pools", "backends", "routes", "config", "status", "readiness", "schema", "docs")

    @answers(200, {"type": "object", "description": "endpoint name -> URL",
                   "additionalProperties": {"type": "string", "format": "uri"}})
    def get(self, request):
        links = {}
        for name in self.LINKS:
            try:
                links[name] = request.build_absolute_uri(reverse(name))
            except NoReverseMatch:
                continue  # an endpoint another app has not shipped yet
        return Response(links)
