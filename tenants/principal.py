"""Who is calling: a user (JWT or session) or a machine (API key), acting in one tenant."""

from __future__ import annotations

from dataclasses import dataclass, field

from tenants.models import ApiKey, User, role_at_least


@dataclass
class Principal:
    auth_method: str  # "jwt" | "session" | "api_key"
    tenant_id: str | None
    role: str | None
    user: User | None = None
    api_key: ApiKey | None = None
    is_platform_admin: bool = False
    claims: dict = field(default_factory=dict)

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def actor_id(self) -> str:
        if self.user is not None:
            return self.user.id
        return f"apikey:{self.api_key.id}" if self.api_key else "anonymous"

    @property
    def actor_label(self) -> str:
        if self.user is not None:
            return self.user.email
        return f"API key {self.api_key.name}" if self.api_key else "anonymous"

    def has_role(self, minimum: str) -> bool:
        return self.is_platform_admin or role_at_least(self.role, minimum)

    def __str__(self) -> str:
        return self.actor_label


class AnonymousPrincipal:
    is_authenticated = False
    is_anonymous = True
    is_platform_admin = False
    tenant_id = None
    role = None
    user = None

    def has_role(self, minimum: str) -> bool:
        return False

    def __str__(self) -> str:
        return "anonymous"
