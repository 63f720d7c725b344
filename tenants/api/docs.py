"""Response shapes of the tenants endpoints, for the OpenAPI schema only (views build plain dicts)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from tenants.models import ROLES


class TenantsErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class TenantsErrorSerializer(serializers.Serializer):
    error = TenantsErrorDetailSerializer()


class InvitationSerializer(serializers.Serializer):
    id = serializers.CharField()
    tenant_id = serializers.CharField()
    tenant_name = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=ROLES)
    status = serializers.ChoiceField(choices=["pending", "expired"])
    invited_by = serializers.CharField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


class InvitationPageSerializer(serializers.Serializer):
    items = InvitationSerializer(many=True)
    total_count = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    has_more = serializers.BooleanField()


class TenantMemberSerializer(serializers.Serializer):
    id = serializers.CharField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    active = serializers.BooleanField(help_text="the membership of this tenant is on (and the account too)")
    last_login_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    version = serializers.IntegerField()
    temporary_password = serializers.CharField(required=False, help_text="only when a new account was created "
                                                                         "without a password: shown once")


class TenantMemberPageSerializer(serializers.Serializer):
    items = TenantMemberSerializer(many=True)
    total_count = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    has_more = serializers.BooleanField()


class ProfileMembershipSerializer(serializers.Serializer):
    tenant_id = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    active = serializers.BooleanField()


class ProfileUserSerializer(serializers.Serializer):
    id = serializers.CharField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    name = serializers.CharField()
    tenant_id = serializers.CharField(allow_null=True)
    role = serializers.ChoiceField(choices=ROLES, allow_null=True)
    tenants = ProfileMembershipSerializer(many=True)
    last_tenant_id = serializers.CharField(allow_null=True)
    is_platform_admin = serializers.BooleanField()
    active = serializers.BooleanField()
    must_change_password = serializers.BooleanField()
    last_login_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    version = serializers.IntegerField()


class InvitationTenantSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class InvitationAcceptedSerializer(serializers.Serializer):
    tenant = InvitationTenantSerializer()
    role = serializers.ChoiceField(choices=ROLES)
    user = ProfileUserSerializer()


class InvitationAcceptedNewAccountSerializer(InvitationAcceptedSerializer):
    token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_at = serializers.DateTimeField()


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(TenantsErrorSerializer, description=description)


# The answers every authenticated endpoint can give besides its own.
COMMON_ERRORS = {
    401: error("not authenticated, or the credential is no longer valid"),
    503: error("the data store (Redis) is unreachable; nothing changed"),
}
