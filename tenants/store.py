"""Redis repositories of the tenants app."""

from __future__ import annotations

import redis

from tenants.models import ApiKey, Tenant, User
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

    def member_count(self, tenant_id: str) -> int:
        return int(self.redis.zcard(keys.tenant_members(tenant_id)))

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
