"""Invitations: /api/tenants/<id>/invitations[/<id>] (the inviter), /api/invitations/<token>/accept and
/api/profile/invitations[/<id>] (the invitee)."""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from tenants import accounts, invitations, tokens
from tenants.api.serializers import (
    InvitationAcceptedNewAccountOutSerializer,
    InvitationAcceptedOutSerializer,
    InvitationAcceptSerializer,
    InvitationCreateSerializer,
    InvitationOutSerializer,
    split_name,
)
from tenants.api.views import INVITE_ERRORS, TenantScopedView
from tenants.permissions import AdminOnly
from veloflux_site.api.client_ip import client_ip
from veloflux_site.api.errors import ApiError
from veloflux_site.api.pagination import paginate_list
from veloflux_site.api.schema import answers, error, list_endpoint
from veloflux_site.api.views import ApiView


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


ADMIN_403 = error("the caller is not an admin or owner of the tenant (or asked for a role above their own)")
TENANT_404 = error("no such tenant (or not the caller's), or no such invitation in it")
NO_PERSON_403 = error("an API key: invitations belong to people")


class InvitationListView(TenantScopedView):
    permission_classes = (AdminOnly,)
    serializer_class = InvitationCreateSerializer

    @list_endpoint("tenants_invitations_list", "InvitationPage", InvitationOutSerializer,
                   errors={403: ADMIN_403, 404: TENANT_404})
    def get(self, request, tenant_id: str):
        tenant = self.tenant(tenant_id)
        items = [invitations.payload(i, tenant.name) for i in invitations.pending_for_tenant(tenant)]
        return Response(paginate_list(request, items))

    @answers(201, OpenApiResponse(InvitationOutSerializer, description="invited; the token went to the address "
                                                                      "by mail"),
             operation_id="tenants_invitations_create", request=InvitationCreateSerializer, errors={
                 403: error("not an admin or owner, a role above the caller's, or too many pending invitations"),
                 404: TENANT_404, **INVITE_ERRORS})
    def post(self, request, tenant_id: str):
        tenant = self.tenant(tenant_id)
        data = self.validated()
        invitation = invitations.invite(tenant, email=data["email"], role=data["role"], actor=self.actor(),
                                        actor_role=self.principal.role,
                                        actor_is_admin=self.principal.is_platform_admin)
        return Response(invitations.payload(invitation, tenant.name), status=status.HTTP_201_CREATED)


class InvitationDetailView(TenantScopedView):
    permission_classes = (AdminOnly,)

    @answers(200, InvitationOutSerializer, operation_id="tenants_invitations_retrieve",
             errors={403: ADMIN_403, 404: TENANT_404})
    def get(self, request, tenant_id: str, invitation_id: str):
        tenant = self.tenant(tenant_id)
        return Response(invitations.payload(invitations.of_tenant(tenant.id, invitation_id), tenant.name))

    @answers(204, OpenApiResponse(description="revoked: its link no longer works"),
             operation_id="tenants_invitations_destroy", errors={403: ADMIN_403, 404: TENANT_404})
    def delete(self, request, tenant_id: str, invitation_id: str):
        tenant = self.tenant(tenant_id)
        invitations.revoke(tenant.id, invitation_id, self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _accepted_body(accepted: invitations.Accepted) -> dict:
    return {"tenant": {"id": accepted.tenant.id, "name": accepted.tenant.name}, "role": accepted.role,
            "user": accounts.user_payload(accepted.user, accepted.tenant.id)}


class InvitationAcceptView(ApiView):
    """Signed in as the invited person: joins the tenant. Nobody signed in and no account for the
    invited address: creates it with the password sent (and signs it in)."""

    permission_classes = (AllowAny,)
    serializer_class = InvitationAcceptSerializer

    @extend_schema(operation_id="invitations_accept", request=InvitationAcceptSerializer, responses={
        200: OpenApiResponse(InvitationAcceptedOutSerializer, description="the signed-in invitee joined the tenant"),
        201: OpenApiResponse(InvitationAcceptedNewAccountOutSerializer,
                             description="a new account was made, in the tenant, and signed in"),
        400: error("no account yet and no (valid) password sent"),
        401: error("an account has the invited address: sign in as that person first (or the credentials sent "
                   "are not valid)"),
        403: error("an API key (wrong_account: invitations are accepted by people), or the tenant is full "
                   "(limit_exceeded)"),
        404: error("unknown token, one sent to someone other than the signed-in person, or an invitation "
                   "already used, declined or revoked"),
        409: error("already a member of the tenant"),
        410: error("the invitation expired")})
    def post(self, request, token: str):
        principal = request.user
        if principal.is_authenticated:
            if principal.user is None:
                raise ApiError(403, "wrong_account", "API keys cannot accept invitations; sign in as the invited "
                                                     "person.")
            accepted = invitations.accept_as(token, principal.user, self.actor())
            return Response(_accepted_body(accepted))
        data = self.validated()
        first, last = split_name(data)
        accepted = invitations.accept_new(token, password=data.get("password"), first_name=first, last_name=last,
                                          ip=client_ip(request))
        pair = tokens.issue_pair(accepted.user.id, accepted.tenant.id, accepted.user.auth_epoch)
        body = {**_accepted_body(accepted), "token": pair.access, "refresh_token": pair.refresh,
                "token_type": "Bearer", "expires_at": _iso(pair.access_expires_at)}
        return Response(body, status=status.HTTP_201_CREATED)


class _InviteeView(ApiView):
    def person(self):
        user = self.principal.user
        if user is None:
            raise ApiError(403, "permission_denied", "API keys have no invitations; use a person's credentials.")
        return user


class ProfileInvitationListView(_InviteeView):
    @list_endpoint("profile_invitations_list", "InvitationPage", InvitationOutSerializer, errors={
        403: NO_PERSON_403, 404: error("X-Tenant-ID names a tenant the caller cannot act in")})
    def get(self, request):
        user = self.person()
        items = [invitations.payload(i, name) for i, name in invitations.pending_for_person(user)]
        return Response(paginate_list(request, items))


class ProfileInvitationDetailView(_InviteeView):
    @answers(204, OpenApiResponse(description="declined: the invitation is gone"),
             operation_id="profile_invitations_decline",
             errors={403: NO_PERSON_403, 404: error("no pending invitation with this id for the caller")})
    def delete(self, request, invitation_id: str):
        user = self.person()
        invitations.decline(user, invitation_id, self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
