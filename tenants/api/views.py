"""/api/tenants/*, tenant users, per-tenant monitoring and /api/audit."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from tenants import audit, invitations, monitoring, services
from tenants.api.serializers import (
    AuditPageOutSerializer,
    AuditQuerySerializer,
    InvitationOutSerializer,
    LogPageOutSerializer,
    MemberCreateSerializer,
    MemberOutSerializer,
    MemberUpdateSerializer,
    TenantConfigOutSerializer,
    TenantCreatedOutSerializer,
    TenantCreateSerializer,
    TenantOutSerializer,
    TenantUpdateSerializer,
    split_name,
)
from tenants.models import Invitation, Tenant
from tenants.permissions import (
    AdminOnly,
    IsPlatformAdmin,
    ViewerReadsAdminWrites,
    role_required,
)
from tenants.store import TenantStore, UserStore
from veloflux_site.api.errors import ApiError
from veloflux_site.api.pagination import page_params, paginate_list
from veloflux_site.api.schema import answers, error, list_endpoint
from veloflux_site.api.views import ApiView


def _epoch_ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def tenant_payload(tenant: Tenant) -> dict:
    return {**tenant.public_dict(), "limits": tenant.limits}


def member_payload(user, tenant_id: str, temporary_password: str | None = None) -> dict:
    data = {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "name": user.full_name,
        "role": user.memberships.get(tenant_id),
        "active": user.active_in(tenant_id),
        "last_login_at": user.last_login_at,
        "created_at": user.created_at,
        "version": user.version,
    }
    if temporary_password:
        data["temporary_password"] = temporary_password
    return data


class TenantListView(ApiView):
    serializer_class = TenantCreateSerializer

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsPlatformAdmin()]
        return super().get_permissions()

    @list_endpoint("tenants_list", "TenantPage", TenantOutSerializer)
    def get(self, request):
        principal = self.principal
        if principal.is_platform_admin:
            page, limit = page_params(request)
            result = TenantStore().list_page(page, limit)
            return Response({"items": [tenant_payload(t) for t in result.items], "total_count": result.total,
                             "page": page, "page_size": limit, "has_more": page * limit < result.total})
        ids = principal.user.active_tenant_ids() if principal.user else [principal.tenant_id]
        tenants = TenantStore().get_many(ids)
        return Response(paginate_list(request, [tenant_payload(t) for t in tenants]))

    @answers(201, TenantCreatedOutSerializer)
    def post(self, request):
        data = self.validated()
        first, _, last = data["owner_name"].strip().partition(" ")
        tenant, owner, temporary = services.create_tenant_with_owner(
            name=data["name"], plan=data["plan"], owner_email=data["owner_email"], owner_first_name=first,
            owner_last_name=last, owner_password=data.get("owner_password"), actor=self.actor(),
        )
        body = tenant_payload(tenant)
        body["owner"] = member_payload(owner, tenant.id, temporary)
        return Response(body, status=status.HTTP_201_CREATED)


class TenantUrlView(ApiView):
    """A view whose URL names the tenant (/api/tenants/<id>...).

    A platform admin acts in the tenant the URL names (no X-Tenant-ID needed);
    anyone else only ever reaches their own tenant (see ``url_tenant``).
    """

    def initial(self, request, *args, **kwargs):
        # Resolve the URL's tenant before the role check: another tenant is a 404 whatever the
        # caller's role, never a 403 that would tell them the tenant exists.
        self.perform_authentication(request)
        principal, tenant_id = request.user, kwargs.get("tenant_id")
        if principal.is_authenticated and tenant_id and principal.tenant_id != tenant_id:
            if not principal.is_platform_admin or TenantStore().find(tenant_id) is None:
                raise ApiError(404, "not_found", f"tenant {tenant_id!r} not found")
            principal.tenant_id = tenant_id
            principal.role = principal.user.role_in(tenant_id) if principal.user else principal.role
        super().initial(request, *args, **kwargs)


class TenantDetailView(TenantUrlView):
    permission_classes = (role_required("viewer", "owner"),)
    serializer_class = TenantUpdateSerializer

    @answers(200, TenantOutSerializer)
    def get(self, request, tenant_id: str):
        return Response(tenant_payload(TenantStore().get(self.url_tenant(tenant_id))))

    @answers(200, TenantOutSerializer)
    def put(self, request, tenant_id: str):
        tenant_id = self.url_tenant(tenant_id)
        data = self.validated(partial=True)
        expected = data.pop("version", None)
        for admin_only in ("active", "plan"):
            if admin_only in data and not self.principal.is_platform_admin:
                hint = " Change plans through /api/billing/subscriptions." if admin_only == "plan" else ""
                raise ApiError(403, "permission_denied", f"Only platform administrators may change {admin_only}."
                               + hint, {admin_only: ["platform administrators only"]})
        tenant = services.update_tenant(tenant_id, data, self.actor(), expected)
        return Response(tenant_payload(tenant))

    patch = put

    def delete(self, request, tenant_id: str):
        tenant = TenantStore().get(self.url_tenant(tenant_id))
        # Takes it off the data plane too, in the same write (tenants/lifecycle.py).
        services.delete_tenant(tenant, self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


class TenantScopedView(TenantUrlView):
    """A view under /api/tenants/<id>/: resolves the URL tenant for the caller."""

    def tenant(self, tenant_id: str) -> Tenant:
        return TenantStore().get(self.url_tenant(tenant_id))


# Inviting (/invitations, or adding a person who has an account to /users): the errors of its own.
INVITE_ERRORS = {
    409: error("already a member (conflict) or already invited (invitation_pending)"),
    429: error("too many invitations from this tenant in the last hour (Retry-After)"),
    503: error("the mail could not be sent (email_unavailable: nothing was kept) or the store is down"),
}


class MemberListView(TenantScopedView):
    permission_classes = (ViewerReadsAdminWrites,)
    serializer_class = MemberCreateSerializer

    @list_endpoint("tenants_users_list", "MemberPage", MemberOutSerializer, errors={
        403: error("no role in the tenant"), 404: error("no such tenant (or not the caller's)")})
    def get(self, request, tenant_id: str):
        tenant = self.tenant(tenant_id)
        members = sorted(UserStore().members(tenant.id), key=lambda u: (u.created_at, u.id))
        return Response(paginate_list(request, [member_payload(u, tenant.id) for u in members]))

    @extend_schema(operation_id="tenants_users_create", request=MemberCreateSerializer, responses={
        201: OpenApiResponse(MemberOutSerializer, description="a new account, in this tenant"),
        202: OpenApiResponse(InvitationOutSerializer, description="the address has an account: that person was "
                                                                  "invited by mail instead, and is not a member yet"),
        403: error("below admin, a role above the caller's, or the plan's user limit"),
        404: error("no such tenant (or not the caller's)"), **INVITE_ERRORS})
    def post(self, request, tenant_id: str):
        tenant = self.tenant(tenant_id)
        data = self.validated()
        first, last = split_name(data)
        added = services.add_or_invite(
            tenant, email=data["email"], role=data["role"], first_name=first, last_name=last,
            password=data.get("password"), actor=self.actor(), actor_role=self.principal.role,
            actor_is_admin=self.principal.is_platform_admin)
        if isinstance(added, Invitation):
            return Response(invitations.payload(added, tenant.name), status=status.HTTP_202_ACCEPTED)
        user, temporary = added
        return Response(member_payload(user, tenant.id, temporary), status=status.HTTP_201_CREATED)


def _refuse_profile_fields(request, is_platform_admin: bool) -> None:
    """A tenant manages memberships, not people: names, e-mail and password are the person's."""
    sent = [name for name in services.PROFILE_FIELDS if isinstance(request.data, dict) and name in request.data]
    if not sent:
        return
    if not is_platform_admin:
        raise ApiError(403, "permission_denied", f"{', '.join(sent)}: these belong to the person, who changes them "
                                                 "in /api/profile; here only role and active (in this tenant) change.",
                       {name: ["only the person (/api/profile) or a platform admin"] for name in sent})
    account = [name for name in sent if name not in ("name", "first_name", "last_name")]
    if account:
        raise ApiError(400, "validation_error", f"{', '.join(account)} cannot be changed here; the person changes "
                                                "them in /api/profile.",
                       {name: ["not changeable here"] for name in account})


MEMBER_404 = error("no such tenant, or no such member in it")
MEMBER_UPDATE_ERRORS = {
    400: error("invalid input, or (platform admins) email/password, which only the person changes"),
    403: error("below admin, touching an owner without being one, or profile fields (name, first_name, "
               "last_name, email, password) sent by anyone but a platform admin"),
    404: MEMBER_404,
    409: error("the last active owner (last_owner), or a stale version (version_conflict)"),
}


class MemberDetailView(TenantScopedView):
    permission_classes = (ViewerReadsAdminWrites,)
    serializer_class = MemberUpdateSerializer

    @answers(200, MemberOutSerializer, operation_id="tenants_users_retrieve", errors={
        403: error("no role in the tenant"), 404: MEMBER_404})
    def get(self, request, tenant_id: str, user_id: str):
        tenant = self.tenant(tenant_id)
        return Response(member_payload(services.member_of(tenant.id, user_id), tenant.id))

    @answers(200, MemberOutSerializer, operation_id="tenants_users_update", request=MemberUpdateSerializer,
             errors=MEMBER_UPDATE_ERRORS)
    def put(self, request, tenant_id: str, user_id: str):
        tenant = self.tenant(tenant_id)
        services.member_of(tenant.id, user_id)  # someone who is not a member here is a 404, whatever was sent
        _refuse_profile_fields(request, self.principal.is_platform_admin)
        data = self.validated(partial=True)
        if "name" in data or "first_name" in data or "last_name" in data:
            data["first_name"], data["last_name"] = split_name(data)
        data.pop("name", None)
        expected = data.pop("version", None)
        user = services.update_member(tenant, user_id, data, self.actor(), self.principal.role,
                                      self.principal.is_platform_admin, expected)
        return Response(member_payload(user, tenant.id))

    @answers(200, MemberOutSerializer, operation_id="tenants_users_partial_update", request=MemberUpdateSerializer,
             errors=MEMBER_UPDATE_ERRORS)
    def patch(self, request, tenant_id: str, user_id: str):
        return self.put(request, tenant_id, user_id)

    @answers(204, OpenApiResponse(description="the membership is gone; the account too only when it belonged "
                                             "nowhere else"),
             operation_id="tenants_users_destroy", errors={
                 403: error("below admin, or removing an owner without being one"), 404: MEMBER_404,
                 409: error("the last active owner (last_owner)")})
    def delete(self, request, tenant_id: str, user_id: str):
        tenant = self.tenant(tenant_id)
        services.remove_member(tenant, user_id, self.actor(), self.principal.role, self.principal.is_platform_admin)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TenantMetricsView(TenantScopedView):
    def get(self, request, tenant_id: str):
        return Response(monitoring.traffic(self.tenant(tenant_id).id))


class TenantLogsView(TenantScopedView):
    permission_classes = (AdminOnly,)

    @extend_schema(parameters=[OpenApiParameter("type", str, enum=["audit", "access"]), OpenApiParameter("cursor", str),
                               OpenApiParameter("limit", int)], responses={200: LogPageOutSerializer})
    def get(self, request, tenant_id: str):
        tenant = self.tenant(tenant_id)
        kind = request.query_params.get("type", "audit")
        _, limit = page_params(request)
        before = request.query_params.get("cursor") or None
        if before is not None and not audit.is_stream_id(before):
            raise ApiError(400, "validation_error", "cursor must be a next_cursor from a previous page.",
                           {"cursor": ["not a cursor this endpoint returned"]})
        if kind == "audit":
            entries, cursor = audit.query(tenant.id, limit=limit, before_id=before)
        elif kind == "access":
            entries, cursor = monitoring.access_log(tenant.id, limit, before)
        else:
            raise ApiError(400, "validation_error", "type must be audit or access.", {"type": ["audit or access"]})
        return Response({"type": kind, "items": entries, "next_cursor": cursor})


class TenantUsageView(TenantScopedView):
    def get(self, request, tenant_id: str):
        return Response(monitoring.usage(self.tenant(tenant_id)))


class TenantAlertsView(TenantScopedView):
    @list_endpoint("tenants_alerts_list", "AlertPage",
                   parameters=[OpenApiParameter("state", str, enum=["active", "resolved"])])
    def get(self, request, tenant_id: str):
        tenant = self.tenant(tenant_id)
        state = request.query_params.get("state")
        if state not in (None, "active", "resolved"):
            raise ApiError(400, "validation_error", "state must be active or resolved.",
                           {"state": ["active or resolved"]})
        return Response(paginate_list(request, monitoring.alerts(tenant.id, state)))


class TenantStatusView(TenantScopedView):
    def get(self, request, tenant_id: str):
        return Response(monitoring.status(self.tenant(tenant_id)))


class TenantBillingView(TenantScopedView):
    permission_classes = (AdminOnly,)

    def get(self, request, tenant_id: str):
        return Response(monitoring.billing(self.tenant(tenant_id)))


class TenantConfigView(TenantScopedView):
    @answers(200, TenantConfigOutSerializer)
    def get(self, request, tenant_id: str):
        tenant = self.tenant(tenant_id)
        return Response({"tenant_id": tenant.id, "plan": tenant.plan, "limits": tenant.limits,
                         "resources": services.tenant_counts(tenant.id)})


class AuditView(ApiView):
    permission_classes = (AdminOnly,)
    serializer_class = AuditQuerySerializer

    def get_permissions(self):
        if self.request.query_params.get("scope") == "platform":
            return [IsPlatformAdmin()]  # the platform's log needs no tenant, only the platform role
        return super().get_permissions()

    @extend_schema(parameters=[AuditQuerySerializer], responses={200: AuditPageOutSerializer})
    def get(self, request):
        query = self.validated(data=request.query_params.dict())
        entries, cursor = audit.query(
            self.tenant_id() if query["scope"] == "tenant" else None,
            actor=query.get("actor"), object_type=query.get("object_type"),
            object_id=query.get("object_id"), action=query.get("action"),
            since_ms=_epoch_ms(query["since"]) if query.get("since") else None,
            until_ms=_epoch_ms(query["until"]) if query.get("until") else None,
            before_id=query.get("cursor"), limit=query["limit"],
        )
        return Response({"items": entries, "next_cursor": cursor, "has_more": cursor is not None})

