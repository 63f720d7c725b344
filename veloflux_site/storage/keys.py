"""The one key builder: every Redis key VeloFlux uses is spelled here.

Layout (``vf:`` prefix):
- platform records: ``vf:tenant:<id>``, ``vf:user:<id>``, ``vf:user:email:<email>``...
- tenant-owned data under the hash tag ``{t:<tenant_id>}`` so that every
  multi-key operation of one tenant lands in one Redis Cluster slot:
  ``vf:{t:<id>}:pool:<name>``, ``vf:{t:<id>}:audit``...
"""

from __future__ import annotations

import re

from veloflux_site.storage.errors import InvalidKeyPart

PREFIX = "vf"
_SAFE_PART = re.compile(r"[^\s{}]+")  # fullmatch: "$" would let a trailing newline through


def is_safe_part(text: object) -> bool:
    """Whether ``text`` may be one part of a key; input validation uses it to refuse the rest at the edge."""
    return bool(text) and bool(_SAFE_PART.fullmatch(str(text)))


def _join(*parts: str) -> str:
    for part in parts:
        if not is_safe_part(part):
            raise InvalidKeyPart(part)
    return ":".join((PREFIX, *map(str, parts)))


def platform(*parts: str) -> str:
    return _join(*parts)


def tenant_tag(tenant_id: str) -> str:
    return f"{{t:{tenant_id}}}"


def tenant(tenant_id: str, *parts: str) -> str:
    """A key owned by one tenant, inside that tenant's hash slot."""
    for part in parts:
        if not is_safe_part(part):
            raise InvalidKeyPart(part)
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


def api_key_last_used(tenant_id: str) -> str:
    """Hash: key id -> ISO time of its latest use (kept apart so a use never bumps the key's version)."""
    return tenant(tenant_id, "apikeys", "used")


def audit_stream(tenant_id: str | None) -> str:
    """A tenant's audit stream; ``None`` is the platform's own (tenants created and deleted...)."""
    return tenant(tenant_id, "audit") if tenant_id is not None else platform("audit")


def tenant_alerts(tenant_id: str) -> str:
    return tenant(tenant_id, "alerts")


def tenant_usage(tenant_id: str, period: str) -> str:
    return tenant(tenant_id, "usage", period)


def tenant_metrics(tenant_id: str, bucket: str) -> str:
    return tenant(tenant_id, "metrics", bucket)


def tenant_metrics_flushed(tenant_id: str, stream: str) -> str:
    """STRING: the last metrics batch of one proxy process (``stream``) applied to this tenant's counters."""
    return tenant(tenant_id, "metrics", "flushed", stream)


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


# --- balancer (pools, backends, routes, configuration) ------------------------
# tenant_counts() in tenants/services.py reads the three collection indexes by name.
def pool_record(tenant_id: str, name: str) -> str:
    """JSON pool record; a pool is addressed by its name (unique in the tenant)."""
    return tenant(tenant_id, "pool", name)


def pool_index(tenant_id: str) -> str:
    """ZSET of the tenant's pool names."""
    return tenant(tenant_id, "pools")


def backend_record(tenant_id: str, backend_id: str) -> str:
    return tenant(tenant_id, "backend", backend_id)


def backend_index(tenant_id: str) -> str:
    """ZSET of the tenant's backend ids."""
    return tenant(tenant_id, "backends")


def route_record(tenant_id: str, route_id: str) -> str:
    return tenant(tenant_id, "route", route_id)


def route_index(tenant_id: str) -> str:
    """ZSET of the tenant's route ids."""
    return tenant(tenant_id, "routes")


def route_claim(host: str, path_prefix: str) -> str:
    """The old per host + path prefix claim (before host claims): only ``migrate_host_claims`` reads it now."""
    return platform("route", "claim", host, path_prefix)


def host_claim(host: str) -> str:
    """Platform-wide owner of a host name (``api.example.com`` or ``*.example.com``) -> tenant id.

    One key per host, across every path prefix: set when a tenant proves control of the domain
    (or by the migration from route claims), in the same atomic write as the routing change."""
    return platform("host", "claim", host)


def domain_record(tenant_id: str, host: str) -> str:
    """JSON domain claim of one tenant (pending or verified), with its verification token."""
    return tenant(tenant_id, "domain", host)


def domain_index(tenant_id: str) -> str:
    """ZSET of the hosts a tenant has claimed (pending or verified)."""
    return tenant(tenant_id, "domains")


def domains_pending() -> str:
    """ZSET ``<tenant_id> <host>`` -> epoch seconds the pending claim expires (what the re-check task walks)."""
    return platform("domains", "pending")


def balancer_config_state(tenant_id: str) -> str:
    """JSON {version, config_version, global, updated_at}: the tenant's config version and global settings."""
    return tenant(tenant_id, "config", "state")


def balancer_config_history(tenant_id: str) -> str:
    """HASH config version -> JSON {version, created_at, actor, action, document} (bounded)."""
    return tenant(tenant_id, "config", "history")


def balancer_idempotency(tenant_id: str, key_hash: str) -> str:
    """The stored answer of a bulk/import request sent with an Idempotency-Key (expires after 24 h)."""
    return tenant(tenant_id, "idem", key_hash)


def tenant_metrics_total(tenant_id: str) -> str:
    return tenant(tenant_id, "metrics", "total")


def tenant_metrics_minute(tenant_id: str, epoch_minute: int) -> str:
    return tenant(tenant_id, "metrics", "m", str(epoch_minute))


def backend_metrics(tenant_id: str, backend_id: str) -> str:
    return tenant(tenant_id, "metrics", "backend", backend_id)


# --- pub/sub channels --------------------------------------------------------
def events_channel(topic: str) -> str:
    """Pub/sub wake-ups: ``routing``, ``health``, ``tenants``, ``alerts``... (state is re-read from keys)."""
    return platform("events", topic)


# --- namespaces the backup covers ------------------------------------------
ALL_KEYS_PATTERN = f"{PREFIX}:*"


# --- health (active health checks, alerts, housekeeping; owned by balancer/health) ---
def health_backend(backend_id: str) -> str:
    """HASH per backend: state (unknown|up|down), last_result, latency_ms, consecutive_successes,
    consecutive_failures, last_transition_at, last_checked_at (+ passive ejection fields)."""
    return platform("health", "backend", backend_id)


def health_targets() -> str:
    """HASH backend_id -> JSON {tenant_id, pool, address, check}: what the sweepers probe (synced from the table)."""
    return platform("health", "targets")


def health_due() -> str:
    """ZSET backend_id -> epoch seconds the next check is due (a claimed one sits at its lease expiry)."""
    return platform("health", "due")


def health_claims() -> str:
    """HASH backend_id -> JSON {token, due, worker}: the claim a sweeper holds on a backend's current round."""
    return platform("health", "claims")


def health_synced_version() -> str:
    """STRING: the ``routing_version`` the targets were last synced from (compare-and-set by syncers)."""
    return platform("health", "synced_version")


def routing_health_version() -> str:
    """INT bumped with every write to ``routing_health`` (proxies may poll it to cover a missed event)."""
    return platform("routing", "health_version")


# --- proxy (data plane; owned by balancer/proxy) -----------------------------
def tls_certificates() -> str:
    """HASH host (``api.example.com`` or ``*.example.com``) -> JSON {"cert": PEM chain, "key": PEM key}."""
    return platform("tls", "certificates")


def health_ejected() -> str:
    """SET of backend ids whose passive ejection is currently mirrored into ``health_backend``."""
    return platform("health", "ejected")


# --- realtime hub ------------------------------------------------------------
def hub_channel(channel: str, part: str) -> str:
    """Keys of one hub channel share the hash tag {<channel>}: stream, meta, presence, idempotency."""
    return f"{PREFIX}:hub:{{{channel}}}:{part}"


def hub_pubsub(channel: str) -> str:
    """The Redis pub/sub channel a hub channel's publications travel on."""
    return f"{PREFIX}:hub:pub:{channel}"


def hub_presence_pubsub(channel: str) -> str:
    """Join/leave notices of a hub channel (only subscriptions that asked for them listen)."""
    return f"{PREFIX}:hub:presence:{channel}"


# --- invitations (platform: found by token and by the invitee's e-mail, without a tenant) ---
def invitation_record(invitation_id: str) -> str:
    return platform("invitation", invitation_id)


def invitation_token_index(token_hash: str) -> str:
    """STRING: the SHA-256 of an invitation token -> the invitation id."""
    return platform("invitation", "token", token_hash)


def invitation_pending(tenant_id: str, email: str) -> str:
    """STRING: the one pending invitation of an e-mail address to a tenant (expires with it)."""
    return platform("invitation", "pending", tenant_id, email.strip().lower())


def tenant_invitations(tenant_id: str) -> str:
    """ZSET invitation id -> expiry (epoch ms) of the tenant's invitations."""
    return platform("tenant", tenant_id, "invitations")


def email_invitations(email: str) -> str:
    """ZSET invitation id -> expiry (epoch ms) of the invitations sent to an e-mail address."""
    return platform("invitation", "email", email.strip().lower())


def hub_user_control(user_id: str) -> str:
    """Server-API orders (unsubscribe, disconnect) for every hub connection of one user."""
    return f"{PREFIX}:hub:control:{user_id}"
