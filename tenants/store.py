"""Redis repositories of the tenants app."""

from __future__ import annotations

import redis

from tenants.models import ApiKey, Invitation, Tenant, User
from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.repository import Repository


class TenantStore(Repository[Tenant]):
    record_type = Tenant
    label = "tenant"

    def record_key(self, record_id: str) -> str:
        return keys.tenant_record(record_id)

    def index_key(self) -> str:
        return keys.tenant_index()

    def unique_keys(self, record: Tenant) -> dict[str, str]:
        return {keys.tenant_slug_index(record.slug): "slug"}

    def slug_taken(self, slug: str) -> bool:
        return bool(self.redis.exists(keys.tenant_slug_index(slug)))


class UserStore(Repository[User]):
    """Platform-wide users; a user's tenant roles live in ``memberships``, mirrored in
    each tenant's member index so a tenant's users list is one ZRANGE."""

    record_type = User
    label = "user"

    def record_key(self, record_id: str) -> str:
        return keys.user_record(record_id)

    def index_key(self) -> str:
        return keys.user_index()

    def unique_keys(self, record: User) -> dict[str, str]:
        return {keys.user_email_index(record.email): "email"}

    def find_by_email(self, email: str) -> User | None:
        user_id = self.redis.get(keys.user_email_index(email))
        return self.find(user_id) if user_id else None

    def member_ids(self, tenant_id: str) -> list[str]:
        return list(self.redis.zrange(keys.tenant_members(tenant_id), 0, -1))

    def members(self, tenant_id: str) -> list[User]:
        return self.get_many(self.member_ids(tenant_id))

    @staticmethod
    def stage_membership_index(batch: AtomicWrite, old: User | None, new: User | None) -> None:
        """Mirror membership changes of one user into the tenants' member indexes."""
        before = set(old.memberships) if old else set()
        after = set(new.memberships) if new else set()
        user_id = (new or old).id  # type: ignore[union-attr]
        for tenant_id in after - before:
            batch.zadd(keys.tenant_members(tenant_id), user_id)
        for tenant_id in before - after:
            batch.zrem(keys.tenant_members(tenant_id), user_id)


class InvitationStore(Repository[Invitation]):
    """Invitations are platform records: the invitee finds theirs by token or by e-mail, with no tenant.

    A record lives until it is used or a day past its expiry (so a late click hears "expired", not
    "unknown"); the pending index of (tenant, e-mail) lives exactly until the expiry, so a new
    invitation can be sent then. The two sorted sets score each id by its expiry.
    """

    record_type = Invitation
    label = "invitation"
    RETENTION_AFTER_EXPIRY_MS = 86_400_000

    def record_key(self, record_id: str) -> str:
        if not record_id.startswith("inv_"):
            raise ValueError(f"invalid invitation id {record_id!r}")
        return keys.invitation_record(record_id)

    def find_by_token_hash(self, token_hash: str) -> Invitation | None:
        invitation_id = self.redis.get(keys.invitation_token_index(token_hash))
        return self.find(invitation_id) if invitation_id else None

    def _live_ids(self, index: str, now_ms: int) -> list[str]:
        return list(self.redis.zrangebyscore(index, f"({now_ms}", "+inf"))

    def pending_for_tenant(self, tenant_id: str, now_ms: int) -> list[Invitation]:
        return self.get_many(self._live_ids(keys.tenant_invitations(tenant_id), now_ms))

    def pending_for_email(self, email: str, now_ms: int) -> list[Invitation]:
        return self.get_many(self._live_ids(keys.email_invitations(email), now_ms))

    def forget_expired(self, tenant_id: str, now_ms: int) -> None:
        """Drop expired ids from the tenant's index so its pending cap counts live ones only."""
        self.redis.zremrangebyscore(keys.tenant_invitations(tenant_id), "-inf", now_ms)

    def stage_create(self, batch: AtomicWrite, record: Invitation, expires_ms: int, ttl_ms: int) -> Invitation:
        record.version = 1
        keep_ms = ttl_ms + self.RETENTION_AFTER_EXPIRY_MS
        batch.require_absent(self.record_key(record.id), f"invitation {record.id!r} already exists", "id")
        batch.require_absent(keys.invitation_pending(record.tenant_id, record.email),
                             f"{record.email} already has a pending invitation to this tenant.", "email")
        batch.set(keys.invitation_pending(record.tenant_id, record.email), record.id, ttl_ms)
        batch.set(keys.invitation_token_index(record.token_hash), record.id, keep_ms)
        batch.set(self.record_key(record.id), record.to_json(), keep_ms)
        batch.zadd(keys.tenant_invitations(record.tenant_id), record.id, expires_ms)
        batch.zadd(keys.email_invitations(record.email), record.id, expires_ms)
        return record

    def stage_consume(self, batch: AtomicWrite, record: Invitation, live: bool) -> None:
        """Use the invitation up (accept, decline, revoke): only one use can pass this check."""
        batch.require_present(self.record_key(record.id), "invitation not found (already used, declined or revoked)")
        batch.delete(self.record_key(record.id))
        batch.delete(keys.invitation_token_index(record.token_hash))
        if live:
            # Once expired, the pending key is gone and may already name a newer invitation: keep that.
            batch.delete(keys.invitation_pending(record.tenant_id, record.email))
        batch.zrem(keys.tenant_invitations(record.tenant_id), record.id)
        batch.zrem(keys.email_invitations(record.email), record.id)


class ApiKeyStore(Repository[ApiKey]):
    """A tenant's API keys. Constructed with the tenant: it cannot reach another one's keys."""

    record_type = ApiKey
    label = "API key"

    def __init__(self, tenant_id: str, client: redis.Redis | None = None):
        super().__init__(client)
        self.tenant_id = tenant_id

    def record_key(self, record_id: str) -> str:
        return keys.api_key(self.tenant_id, record_id)

    def index_key(self) -> str:
        return keys.api_key_index(self.tenant_id)

    def unique_keys(self, record: ApiKey) -> dict[str, str]:
        return {keys.api_key_hash_index(record.key_hash): "key_hash"}

    def stage_create(self, batch: AtomicWrite, record: ApiKey) -> ApiKey:
        record.tenant_id = self.tenant_id
        super().stage_create(batch, record)
        # The hash index points at "tenant:key" so authentication needs no scan.
        batch.set(keys.api_key_hash_index(record.key_hash), f"{self.tenant_id}:{record.id}")
        return record


def lookup_api_key(key_hash: str, client: redis.Redis) -> ApiKey | None:
    pointer = client.get(keys.api_key_hash_index(key_hash))
    if not pointer:
        return None
    tenant_id, _, key_id = pointer.partition(":")
    return ApiKeyStore(tenant_id, client).find(key_id)
