"""Redis repositories of pools, backends and routes, each constructed with its tenant.

A repository of tenant A can only spell keys under A's hash tag, so reaching
another tenant's objects is impossible by construction. ``load_snapshot`` reads
one tenant's whole balancer configuration; writes go through ``balancer.services``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from balancer.hosts import platform_name
from balancer.models import Backend, Domain, Pool, Route
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.repository import Repository


class _TenantRepository:
    def __init__(self, tenant_id: str, client: redis.Redis | None = None):
        super().__init__(client)  # type: ignore[call-arg]
        self.tenant_id = tenant_id

    def get_many(self, record_ids):
        """MGET in chunks: one tenant's keys share a hash slot, and one reply per chunk parses fast."""
        ids = list(record_ids)
        records = []
        for start in range(0, len(ids), 1000):
            chunk = [self.record_key(record_id) for record_id in ids[start:start + 1000]]  # type: ignore[attr-defined]
            for raw in self.redis.mget(chunk):  # type: ignore[attr-defined]
                if raw is not None:
                    records.append(self.record_type.from_json(raw))  # type: ignore[attr-defined]
        return records

    def find_by_client_id(self, record_id: str):
        """``find`` for an id a client sent: one that cannot be a key part is simply not found."""
        try:
            return self.find(record_id)  # type: ignore[attr-defined]
        except ValueError:
            return None


class PoolStore(_TenantRepository, Repository[Pool]):
    record_type = Pool
    label = "pool"

    def record_key(self, record_id: str) -> str:
        return keys.pool_record(self.tenant_id, record_id)

    def index_key(self) -> str:
        return keys.pool_index(self.tenant_id)


class BackendStore(_TenantRepository, Repository[Backend]):
    record_type = Backend
    label = "backend"

    def record_key(self, record_id: str) -> str:
        return keys.backend_record(self.tenant_id, record_id)

    def index_key(self) -> str:
        return keys.backend_index(self.tenant_id)


class RouteStore(_TenantRepository, Repository[Route]):
    """Routes. Host + path prefix is unique in a tenant; a host belongs to one tenant across every
    prefix (``keys.host_claim``, see ``balancer.domains``)."""

    record_type = Route
    label = "route"

    def record_key(self, record_id: str) -> str:
        return keys.route_record(self.tenant_id, record_id)

    def index_key(self) -> str:
        return keys.route_index(self.tenant_id)


class DomainStore(_TenantRepository, Repository[Domain]):
    """A tenant's domain claims; the platform-wide owner of a host is ``keys.host_claim``."""

    record_type = Domain
    label = "domain"

    def record_key(self, record_id: str) -> str:
        return keys.domain_record(self.tenant_id, record_id)

    def index_key(self) -> str:
        return keys.domain_index(self.tenant_id)


@dataclass
class Snapshot:
    """One tenant's balancer configuration as read at ``routing_version``."""

    tenant_id: str
    routing_version: int
    config_version: int
    global_settings: dict[str, Any]
    pools: dict[str, Pool] = field(default_factory=dict)
    backends: dict[str, Backend] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)
    domains: dict[str, Domain] = field(default_factory=dict)
    platform_host: str | None = None
    client: Any = None
    _owners: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def served_hosts(self) -> frozenset[str]:
        """The hosts this tenant holds: its platform name and its verified domains. Only routes on
        these are compiled into the routing table."""
        hosts = {host for host, domain in self.domains.items() if domain.status == "verified"}
        if self.platform_host:
            hosts.add(self.platform_host)
        return frozenset(hosts)

    def host_owner(self, host: str) -> str | None:
        """The tenant id holding ``host`` platform-wide (any tenant), or None (read once per snapshot: a write
        built on it is guarded by the routing version, so it cannot change unseen)."""
        if host not in self._owners:
            self._owners[host] = (self.client or get_redis()).get(keys.host_claim(host))
        return self._owners[host]

    def read_host_owners(self, hosts: Iterable[str]) -> None:
        """Read the owners of ``hosts`` in one MGET, so that ``host_owner`` answers for them from memory."""
        missing = sorted({host for host in hosts if host not in self._owners})
        if missing:
            owners = (self.client or get_redis()).mget([keys.host_claim(host) for host in missing])
            self._owners.update(zip(missing, owners, strict=True))


def _read_state(raw: str | None) -> tuple[int, dict]:
    if not raw:
        return 0, {}
    data = json.loads(raw)
    return int(data.get("config_version", 0)), dict(data.get("global") or {})


def load_snapshot(tenant_id: str, client: redis.Redis | None = None) -> Snapshot:
    """Read everything in two round trips.

    The routing version is read first: a write staged from this snapshot requires
    it unchanged, so anything that changed in between makes that write retry.
    """
    client = client or get_redis()
    pipe = client.pipeline(transaction=True)
    pipe.get(keys.routing_version())
    pipe.get(keys.balancer_config_state(tenant_id))
    pipe.zrange(keys.pool_index(tenant_id), 0, -1)
    pipe.zrange(keys.backend_index(tenant_id), 0, -1)
    pipe.zrange(keys.route_index(tenant_id), 0, -1)
    pipe.zrange(keys.domain_index(tenant_id), 0, -1)
    pipe.get(keys.tenant_record(tenant_id))
    version, state, pool_names, backend_ids, route_ids, hosts, tenant = pipe.execute()
    config_version, global_settings = _read_state(state)
    snapshot = Snapshot(tenant_id, int(version or 0), config_version, global_settings, client=client)
    snapshot.domains = {d.host: d for d in DomainStore(tenant_id, client).get_many(hosts)}
    snapshot.platform_host = platform_name(json.loads(tenant).get("slug")) if tenant else None
    pools = PoolStore(tenant_id, client).get_many(pool_names)
    backends = BackendStore(tenant_id, client).get_many(backend_ids)
    routes = RouteStore(tenant_id, client).get_many(route_ids)
    snapshot.pools = {pool.name: pool for pool in pools}
    snapshot.backends = {backend.id: backend for backend in backends}
    snapshot.routes = {route.id: route for route in routes}
    return snapshot


def read_health(backend_ids: list[str], client: redis.Redis | None = None) -> dict[str, bool | None]:
    """backend id -> True (up), False (down) or None (no health check result yet)."""
    if not backend_ids:
        return {}
    client = client or get_redis()
    states = client.hmget(keys.routing_health(), backend_ids)
    return {backend_id: {"up": True, "down": False}.get(state or "") for backend_id, state in
            zip(backend_ids, states, strict=True)}


def read_health_detail(backend_id: str, client: redis.Redis | None = None) -> dict[str, Any] | None:
    client = client or get_redis()
    detail = client.hgetall(keys.health_backend(backend_id))
    if not detail:
        return None
    out: dict[str, Any] = {}
    for name, value in detail.items():
        if name in ("latency_ms",):
            out[name] = _number(value, float)
        elif name in ("consecutive_successes", "consecutive_failures"):
            out[name] = _number(value, int)
        else:
            out[name] = value
    return out


def _number(value: str, kind: type) -> Any:
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return value
