"""Record types of the tenants app (plain dataclasses stored as JSON in Redis)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from tenants.plans import PLANS
from veloflux_site.storage.records import Record, new_id

ROLES = ("viewer", "member", "admin", "owner")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]


@dataclass(kw_only=True)
class Tenant(Record):
    id: str = field(default_factory=lambda: new_id("tn_"))
    name: str
    slug: str
    plan: str = "free"
    active: bool = True
    contact_email: str = ""
    contact_name: str = ""

    @property
    def limits(self) -> dict[str, int]:
        return PLANS[self.plan].limits()


@dataclass(kw_only=True)
class User(Record):
    id: str = field(default_factory=lambda: new_id("usr_"))
    email: str
    password_hash: str = ""
    first_name: str = ""
    last_name: str = ""
    memberships: dict[str, str] = field(default_factory=dict)  # tenant id -> role
    # Memberships a tenant's admin switched off: the person keeps the role but cannot act in that
    # tenant. Per tenant, so one tenant never locks the person out of another (``active`` is the account's).
    inactive_in: list[str] = field(default_factory=list)
    # The tenant a login without ``tenant_id`` goes to (set on every login that names or lands in one).
    last_tenant_id: str | None = None
    is_platform_admin: bool = False
    active: bool = True
    must_change_password: bool = False
    last_login_at: str | None = None
    # Every credential carries the epoch it was issued under; a password change bumps it,
    # which ends every other session and token of the user at once.
    auth_epoch: int = 0

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password_hash",)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def role_in(self, tenant_id: str | None) -> str | None:
        return self.memberships.get(tenant_id) if tenant_id else None

    def active_in(self, tenant_id: str) -> bool:
        """The account is on and its membership of ``tenant_id`` exists and is not switched off."""
        return self.active and tenant_id in self.memberships and tenant_id not in self.inactive_in

    def active_tenant_ids(self) -> list[str]:
        return sorted(t for t in self.memberships if t not in self.inactive_in)


@dataclass(kw_only=True)
class ApiKey(Record):
    id: str = field(default_factory=lambda: new_id("key_"))
    tenant_id: str
    name: str
    role: str
    prefix: str
    key_hash: str
    created_by: str = ""
    last_used_at: str | None = None
    expires_at: str | None = None

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("key_hash",)


@dataclass(kw_only=True)
class Invitation(Record):
    """An offer to join a tenant with a role, sent to an e-mail address; used once (accepted,
    declined or revoked: the record goes) or never (it expires). Only the SHA-256 of the token
    is stored: the token itself travels in the mail to the invitee and nowhere else."""

    id: str = field(default_factory=lambda: new_id("inv_"))
    tenant_id: str
    email: str
    role: str
    token_hash: str
    invited_by: str = ""  # user id (or apikey:<id>)
    invited_by_label: str = ""
    expires_at: str

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("token_hash",)
