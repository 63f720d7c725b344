"""Input validation for the auth, profile, tenant, user and invitation endpoints, and the shapes of their
answers (the OpenAPI schema's response bodies: one serializer per answer shape)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from tenants.audit import is_stream_id
from tenants.models import ROLES
from tenants.plans import PLANS
from veloflux_site.api.schema import ErrorDetailSerializer
from veloflux_site.storage import keys


class PasswordField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("write_only", True)
        kwargs.setdefault("max_length", 256)
        kwargs.setdefault("style", {"input_type": "password"})
        super().__init__(**kwargs)


class NewPasswordField(PasswordField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) < settings.AUTH_PASSWORD_MIN_LENGTH:
            raise serializers.ValidationError(f"must be at least {settings.AUTH_PASSWORD_MIN_LENGTH} characters")
        if value.isdigit():
            raise serializers.ValidationError("cannot be only digits")
        return value


# Shared with the web login form (tenants/views.py): the same rules, the same words.
TENANT_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
TENANT_ID_INVALID = "is not a tenant id (letters, digits, _ and -)"
KEY_UNSAFE = "cannot contain braces or spaces"


class EmailField(serializers.EmailField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data).strip().lower()
        # RFC 5322 allows braces in an address, but an email is part of Redis keys (its unique index).
        if not keys.is_safe_part(value):
            raise serializers.ValidationError(KEY_UNSAFE)
        return value


class TenantIdField(serializers.RegexField):
    """A tenant id as the API hands them out (``tn_…``): anything else cannot name a tenant."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        super().__init__(TENANT_ID_PATTERN, **kwargs)
        self.error_messages["invalid"] = TENANT_ID_INVALID


PLAN_CHOICES = [(plan_id, plan.name) for plan_id, plan in PLANS.items()]


class LoginSerializer(serializers.Serializer):
    email = EmailField(max_length=254)
    password = PasswordField()
    tenant_id = TenantIdField(required=False, allow_blank=True)


class RegisterSerializer(serializers.Serializer):
    email = EmailField(max_length=254)
    password = NewPasswordField()
    first_name = serializers.CharField(max_length=100, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=100, allow_blank=True, default="")
    tenant_name = serializers.CharField(max_length=100)
    plan = serializers.ChoiceField(choices=PLAN_CHOICES, default="free")


class RefreshSerializer(serializers.Serializer):
    # Without it, existing VeloFlux clients refresh with "Authorization: Bearer <access token>" and no body.
    refresh_token = serializers.CharField(max_length=4096, required=False)


class LogoutSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=4096, required=False)


class ProfileSerializer(serializers.Serializer):
    email = EmailField(max_length=254, required=False)
    first_name = serializers.CharField(max_length=100, allow_blank=True, required=False)
    last_name = serializers.CharField(max_length=100, allow_blank=True, required=False)
    current_password = PasswordField(required=False)
    new_password = NewPasswordField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=ROLES, default="viewer")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class TenantCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    plan = serializers.ChoiceField(choices=PLAN_CHOICES, default="free")
    owner_email = EmailField(max_length=254)
    owner_name = serializers.CharField(max_length=200, allow_blank=True, default="")
    owner_password = NewPasswordField(required=False)


class TenantUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    contact_email = EmailField(max_length=254, required=False, allow_blank=True)
    contact_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    plan = serializers.ChoiceField(choices=PLAN_CHOICES, required=False)
    active = serializers.BooleanField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)


def split_name(data: dict) -> tuple[str, str]:
    """``name`` ("Ada Lovelace") or ``first_name``/``last_name``, as VeloFlux clients send either."""
    first, last = data.get("first_name", ""), data.get("last_name", "")
    if not (first or last) and data.get("name"):
        first, _, last = data["name"].strip().partition(" ")
    return first, last


class MemberCreateSerializer(serializers.Serializer):
    email = EmailField(max_length=254)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=ROLES, default="member")
    password = NewPasswordField(required=False)


class MemberUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=ROLES, required=False)
    active = serializers.BooleanField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)


class AuditQuerySerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["tenant", "platform"], required=False, default="tenant",
                                    help_text="platform: the platform's own log (tenant deletions), platform admins")
    actor = serializers.CharField(required=False, max_length=254)
    object_type = serializers.CharField(required=False, max_length=64)
    object_id = serializers.CharField(required=False, max_length=128)
    action = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False, max_length=64)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)

    def validate_cursor(self, value: str) -> str:
        if not is_stream_id(value):
            raise serializers.ValidationError("not a cursor this endpoint returned (use next_cursor)")
        return value

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"since": ["must be before until"]})
        return attrs


class InvitationCreateSerializer(serializers.Serializer):
    email = EmailField(max_length=254)
    role = serializers.ChoiceField(choices=ROLES, default="member")


class InvitationAcceptSerializer(serializers.Serializer):
    """Only for a person without an account: the password (and name) of the account accepting creates."""

    password = NewPasswordField(required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)


# --- answers (the OpenAPI schema's response bodies) ---------------------------------------------------
class TenantOutSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    plan = serializers.CharField()
    active = serializers.BooleanField()
    contact_email = serializers.CharField(allow_blank=True)
    contact_name = serializers.CharField(allow_blank=True)
    limits = serializers.DictField(child=serializers.IntegerField())
    version = serializers.IntegerField()
    created_at = serializers.CharField()
    updated_at = serializers.CharField()


class PersonOutSerializer(serializers.Serializer):
    """What every answer about a person says (a member, a profile)."""

    id = serializers.CharField()
    email = serializers.EmailField()
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)
    name = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField()
    last_login_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    version = serializers.IntegerField()


class MemberOutSerializer(PersonOutSerializer):
    """A person as a member of one tenant (/api/tenants/<id>/users)."""

    role = serializers.ChoiceField(choices=ROLES)
    active = serializers.BooleanField(help_text="the membership of this tenant is on (and the account too)")
    temporary_password = serializers.CharField(required=False, help_text="only when a new account was created "
                                                                         "without a password: shown once")


class TenantCreatedOutSerializer(TenantOutSerializer):
    owner = MemberOutSerializer()


class MembershipOutSerializer(serializers.Serializer):
    tenant_id = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    active = serializers.BooleanField()


class UserOutSerializer(PersonOutSerializer):
    """A person as they see themselves (/api/profile, login), in the tenant they act in."""

    tenant_id = serializers.CharField(allow_null=True)
    role = serializers.ChoiceField(choices=ROLES, allow_null=True)
    tenants = MembershipOutSerializer(many=True)
    last_tenant_id = serializers.CharField(allow_null=True)
    is_platform_admin = serializers.BooleanField()
    must_change_password = serializers.BooleanField()


class TokenOutSerializer(serializers.Serializer):
    token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_at = serializers.CharField()
    user = UserOutSerializer()


class RefreshOutSerializer(TokenOutSerializer):
    """A login's answer; renewing an access token (Bearer header, no refresh_token) gives only token and expiry."""

    refresh_token = serializers.CharField(required=False, help_text="absent when an access token was renewed")
    token_type = serializers.CharField(required=False)
    user = UserOutSerializer(required=False)


class ProfileOutSerializer(UserOutSerializer):
    # After a password change over a token, the call's credentials are replaced (the old ones end).
    token = serializers.CharField(required=False)
    refresh_token = serializers.CharField(required=False)
    token_type = serializers.CharField(required=False)
    expires_at = serializers.CharField(required=False)


class TenantNameOutSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class LoginErrorDetailSerializer(ErrorDetailSerializer):
    tenants = TenantNameOutSerializer(many=True, required=False,
                                      help_text="tenant_required: the caller's tenants; log in again with one's id")


class LoginErrorSerializer(serializers.Serializer):
    error = LoginErrorDetailSerializer()


class InvitationOutSerializer(serializers.Serializer):
    id = serializers.CharField()
    tenant_id = serializers.CharField()
    tenant_name = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=ROLES)
    status = serializers.ChoiceField(choices=["pending", "expired"])
    invited_by = serializers.CharField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


class InvitationAcceptedOutSerializer(serializers.Serializer):
    tenant = TenantNameOutSerializer()
    role = serializers.ChoiceField(choices=ROLES)
    user = UserOutSerializer()


class InvitationAcceptedNewAccountOutSerializer(TokenOutSerializer, InvitationAcceptedOutSerializer):
    """The new account is signed in: the answer of a login, and what it joined."""


class ApiKeyOutSerializer(serializers.Serializer):
    id = serializers.CharField()
    tenant_id = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    prefix = serializers.CharField()
    created_by = serializers.CharField(allow_blank=True)
    last_used_at = serializers.CharField(allow_null=True)
    expires_at = serializers.CharField(allow_null=True)
    version = serializers.IntegerField()
    created_at = serializers.CharField()
    updated_at = serializers.CharField()
    key = serializers.CharField(required=False, help_text="the secret, shown once: only in the POST answer")


class CursorPageOutSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.DictField())
    next_cursor = serializers.CharField(allow_null=True, help_text="send it back as ?cursor= for the next page")


class AuditPageOutSerializer(CursorPageOutSerializer):
    has_more = serializers.BooleanField()


class LogPageOutSerializer(CursorPageOutSerializer):
    type = serializers.ChoiceField(choices=["audit", "access"])


class TenantConfigOutSerializer(serializers.Serializer):
    tenant_id = serializers.CharField()
    plan = serializers.CharField()
    limits = serializers.DictField(child=serializers.IntegerField())
    resources = serializers.DictField(child=serializers.IntegerField(), help_text="what the tenant uses now")
