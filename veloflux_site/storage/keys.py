"""The one key builder: every Redis key VeloFlux uses is spelled here.

Layout (``vf:`` prefix):
- platform records: ``vf:tenant:<id>``, ``vf:user:<id>``, ``vf:user:email:<email>``...
- tenant-owned data under the hash tag ``{t:<tenant_id>}`` so that every
  multi-key operation of one tenant lands in one Redis Cluster slot:
  ``vf:{t:<id>}:pool:<name>``, ``vf:{t:<id>}:audit``...
"""

from __future__ import annotations

import re

PREFIX = "vf"
_SAFE_PART = re.compile(r"^[^\s{}]+$")


def _join(*parts: str) -> str:
    for part in parts:
        if not part or not _SAFE_PART.match(str(part)):
            raise ValueError(f"invalid key part {part!r}")
    return ":".join((PREFIX, *map(str, parts)))


def platform(*parts: str) -> str:
    return _join(*parts)


def tenant_tag(tenant_id: str) -> str:
    return f"{{t:{tenant_id}}}"


def tenant(tenant_id: str, *parts: str) -> str:
    """A key owned by one tenant, inside that tenant's hash slot."""
    for part in parts:
        if not part or not _SAFE_PART.match(str(part)):
            raise ValueError(f"invalid key part {part!r}")
    return ":".join((PREFIX, tenant_tag(tenant_id), *map(str, parts)))


# --- platform ----------------------------------------------------------------
def tenant_record(tenant_id: str) -> str:
    return platform("tenant", tenant_id)


def tenant_index() -> str:
    return platform("tenants")


def tenant_slug_index(slug: str) -> str:
    return platform("tenant", "slug", slug)


def user_record(user_id: str) -> str:
    return platform("user", user_id)


def user_index() -> str:
    return platform("users")


def user_email_index(email: str) -> str:
    return platform("user", "email", email.strip().lower())


def tenant_members(tenant_id: str) -> str:
    """Sorted set of the user ids that belong to a tenant (platform data: written with the user)."""
    return platform("tenant", tenant_id, "members")


def api_key_hash_index(key_hash: str) -> str:
    return platform("apikey", "hash", key_hash)


def session(session_key: str) -> str:
    return platform("session", session_key)


# --- auth state (platform) ---------------------------------------------------
def access_denylist(jti: str) -> str:
    return platform("jwt", "deny", jti)


def refresh_token(jti: str) -> str:
    return platform("jwt", "refresh", jti)


def token_family(family_id: str) -> str:
    return platform("jwt", "family", family_id)


def login_failures(email: str) -> str:
    return platform("auth", "fail", email.strip().lower())


def login_lock(email: str) -> str:
    return platform("auth", "lock", email.strip().lower())


def rate_limit(bucket: str, subject: str, window: int) -> str:
    return platform("rl", bucket, subject, str(window))


# --- tenant-owned ------------------------------------------------------------
def api_key(tenant_id: str, key_id: str) -> str:
    return tenant(tenant_id, "apikey", key_id)


def api_key_index(tenant_id: str) -> str:
    return tenant(tenant_id, "apikeys")


def audit_stream(tenant_id: str) -> str:
    return tenant(tenant_id, "audit")


def tenant_counter(tenant_id: str, name: str) -> str:
    return tenant(tenant_id, "counter", name)


def tenant_alerts(tenant_id: str) -> str:
    return tenant(tenant_id, "alerts")


def tenant_usage(tenant_id: str, period: str) -> str:
    return tenant(tenant_id, "usage", period)


def tenant_metrics(tenant_id: str, bucket: str) -> str:
    return tenant(tenant_id, "metrics", bucket)


def tenant_access_log(tenant_id: str) -> str:
    return tenant(tenant_id, "accesslog")


# --- data plane (see docs/data-plane-contract.md) ----------------------------
def routing_table() -> str:
    """HASH tenant_id -> JSON fragment (routes, pools, backends) of that tenant."""
    return platform("routing", "table")


def routing_version() -> str:
    """INT bumped in the same atomic write as every routing change."""
    return platform("routing", "version")


def routing_health() -> str:
    """HASH backend_id -> "up" | "down" (active health checks; absent = unknown)."""
    return platform("routing", "health")


def passive_ejections() -> str:
    """HASH backend_id -> JSON {node, until, reason}: proxies' passive outlier ejections."""
    return platform("routing", "ejections")


def pool_ai_algorithm(tenant_id: str) -> str:
    """HASH pool name -> algorithm the AI chose for ``adaptive`` pools."""
    return tenant(tenant_id, "ai", "pool_algorithm")


def heartbeat(kind: str) -> str:
    """ZSET node id -> epoch seconds of its last heartbeat (kind: proxy, worker)."""
    return platform("heartbeat", kind)


# --- pub/sub channels --------------------------------------------------------
def events_channel(topic: str) -> str:
    """Pub/sub wake-ups: ``routing``, ``health``, ``tenants``, ``alerts``... (state is re-read from keys)."""
    return platform("events", topic)


# --- namespaces the backup covers ------------------------------------------
ALL_KEYS_PATTERN = f"{PREFIX}:*"
