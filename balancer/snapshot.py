"""The compiled routing table the proxies read (see docs/data-plane-contract.md).

``stage_routing_change`` adds to a batch: the tenant's fragment (HSET
vf:routing:table), a guard that the routing version is still the one the change
was computed from, the INCR of vf:routing:version and the PUBLISH on
vf:events:routing. The guard makes every routing write serial, so the version in
the event is exactly the version the INCR produces.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from balancer.models import Backend, Pool, Route
from balancer.workspace import resolve_health_check
from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite

if TYPE_CHECKING:
    from balancer.store import Snapshot

ROUTING_RACE = ("the routing table kept changing while this change was prepared; nothing was applied, "
                "retry the request")


def _backend_entry(backend: Backend, pool: Pool, global_settings: dict) -> dict[str, Any]:
    return {
        "id": backend.id,
        "address": backend.address,
        "weight": backend.weight,
        "enabled": backend.enabled,
        "state": backend.state,
        "region": backend.region,
        "health_check": resolve_health_check(backend, pool, global_settings),
    }


def build_fragment(tenant_id: str, *, active: bool, config_version: int, pools: dict[str, Pool],
                   backends: dict[str, Backend], routes: dict[str, Route], global_settings: dict,
                   served_hosts: frozenset[str] | set[str]) -> dict[str, Any]:
    """The tenant's fragment. Only routes on ``served_hosts`` (the tenant's platform name and verified
    domains) are in it: a route on a host the tenant has not proved is stored but not served. ``hosts``
    lists what the tenant holds, so a proxy never lets another tenant's wildcard answer for those names."""
    by_pool: dict[str, list[Backend]] = {name: [] for name in pools}
    for backend in backends.values():
        by_pool.setdefault(backend.pool, []).append(backend)
    return {
        "tenant_id": tenant_id,
        "active": active,
        "config_version": config_version,
        "hosts": sorted(served_hosts),
        "routes": [
            {"id": r.id, "host": r.host, "path_prefix": r.path_prefix, "pool": r.pool,
             "max_body_bytes": r.max_body_bytes}
            for r in sorted(routes.values(), key=lambda r: (r.host, r.path_prefix)) if r.host in served_hosts
        ],
        "pools": {
            name: {
                "name": name,
                "algorithm": pool.algorithm,
                "sticky_sessions": pool.sticky_sessions,
                "backends": [_backend_entry(b, pool, global_settings)
                             for b in sorted(by_pool.get(name, []), key=lambda b: (b.address, b.id))],
            }
            for name, pool in sorted(pools.items())
        },
    }


def fragment_of(snapshot: Snapshot, *, active: bool) -> dict[str, Any]:
    """The fragment of a stored configuration as it stands (a suspension, a verified or released domain
    changes what is served, not the configuration)."""
    return build_fragment(snapshot.tenant_id, active=active, config_version=snapshot.config_version,
                          pools=snapshot.pools, backends=snapshot.backends, routes=snapshot.routes,
                          global_settings=snapshot.global_settings, served_hosts=snapshot.served_hosts)


def stage_routing_change(batch: AtomicWrite, tenant_id: str, read_version: int,
                         fragment: dict[str, Any] | None) -> int:
    """Stage the fragment (``None`` removes the tenant), the version bump and the event.

    Returns the routing version this batch produces when it succeeds.
    """
    batch.require_free_or_owned(keys.routing_version(), str(read_version), ROUTING_RACE)
    if fragment is None:
        batch.hdel(keys.routing_table(), tenant_id)
    else:
        batch.hset(keys.routing_table(), tenant_id, json.dumps(fragment, separators=(",", ":")))
    batch.incr(keys.routing_version())
    new_version = read_version + 1
    batch.publish(keys.events_channel("routing"),
                  {"type": "routing.changed", "version": new_version, "tenant_id": tenant_id})
    return new_version


def read_fragment(tenant_id: str, client) -> dict[str, Any] | None:
    raw = client.hget(keys.routing_table(), tenant_id)
    return json.loads(raw) if raw else None
