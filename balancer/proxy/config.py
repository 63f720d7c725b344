"""The compiled, immutable routing table a worker serves from, built from the Redis snapshot.

``compile_snapshot`` turns the per-tenant JSON fragments of ``vf:routing:table`` into a
``Snapshot`` with a host index (exact hosts, then wildcard suffixes), routes sorted by the
longest path prefix, and pools that carry their balancer. A new snapshot replaces the old one
in a single assignment, so a request always sees one consistent table.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from balancer.proxy.algorithms import ALGORITHMS, make_balancer
from balancer.proxy.codec import BackendCore, PoolCore, RouteCore, route_lookup
from balancer.proxy.state import BackendState, StateRegistry

log = logging.getLogger("veloflux.proxy")


class Backend(BackendCore):
    """``st``, ``key`` and ``draining`` are compiled fields (``BackendCore``, csrc/config.c) the hot path reads."""

    __slots__ = ("address", "host", "id", "port", "weight")

    def __init__(self, data: dict, st: BackendState):
        self.id: str = data["id"]
        self.address: str = data["address"]
        host, _, port = self.address.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.key = (self.host, self.port)  # the upstream pool's key
        self.weight = max(int(data.get("weight", 100) or 0), 0)
        self.draining = data.get("state", "active") == "draining"  # no new sessions (sticky ones finish)
        self.st = st


class Pool(PoolCore):
    """``backends``, ``balancer``, ``sticky`` and ``needs_client_ip`` are compiled fields (``PoolCore``)."""

    __slots__ = ("algorithm", "name", "tenant_id")

    def __init__(self, tenant_id: str, name: str, algorithm: str, sticky: bool, backends: list[Backend]):
        self.tenant_id = tenant_id
        self.name = name
        self.algorithm = algorithm
        self.sticky = sticky
        self.backends = backends  # enabled, not disabled, weight > 0 (health/ejection are checked per request)
        self.balancer = make_balancer(algorithm, backends)
        self.needs_client_ip = algorithm in ("ip_hash", "adaptive")

    def usable(self, now: float, include_draining: bool = False) -> list[Backend]:
        return [b for b in self.backends if b.st.usable(now) and (include_draining or not b.draining)]


class Route(RouteCore):
    """``pool``, ``prefix`` and ``active`` are compiled fields (``RouteCore``)."""

    __slots__ = ("host", "id", "max_body", "tenant_id")

    def __init__(self, tenant_id: str, data: dict, pool: Pool | None, active: bool):
        self.tenant_id = tenant_id
        self.id: str = data.get("id") or f"{data['host']}{data.get('path_prefix', '/')}"
        self.host: str = data["host"].lower().rstrip(".")
        self.prefix: str = data.get("path_prefix") or "/"
        self.pool = pool
        self.max_body: int | None = data.get("max_body_bytes")
        self.active = active


@dataclass
class Snapshot:
    version: int = 0
    exact: dict[str, list[Route]] = field(default_factory=dict)
    wildcard: dict[str, list[Route]] = field(default_factory=dict)  # ".example.com" -> routes
    pools_of_backend: dict[str, list[Pool]] = field(default_factory=dict)
    adaptive: dict[tuple[str, str], str] = field(default_factory=dict)  # (tenant, pool) -> algorithm
    tenants: int = 0

    def lookup(self, host: str, path: str) -> Route | None:
        """Exact host, then wildcard suffixes from the longest; in each, the first (longest) matching prefix."""
        return route_lookup(self.exact, self.wildcard, host, path)  # compiled: the hot path calls it too

    has_adaptive: bool = False


class _Compiled:
    __slots__ = ("pools", "raw", "routes")

    def __init__(self, raw: str, routes: list[Route], pools: list[Pool]):
        self.raw, self.routes, self.pools = raw, routes, pools


class Compiler:
    """Compiles fragments, reusing the compiled form (and balancer state) of unchanged tenants."""

    def __init__(self, registry: StateRegistry):
        self.registry = registry
        self.cache: dict[str, _Compiled] = {}

    def compile(self, version: int, table: dict[str, str], ai: dict[tuple[str, str], str]) -> Snapshot:
        snapshot = Snapshot(version=version, adaptive=ai, tenants=len(table))
        cache: dict[str, _Compiled] = {}
        for tenant_id, raw in table.items():
            compiled = self.cache.get(tenant_id)
            if compiled is None or compiled.raw != raw:
                try:
                    compiled = self._fragment(tenant_id, raw)
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("routing fragment of tenant %s is invalid, skipped: %s", tenant_id, exc)
                    continue
            cache[tenant_id] = compiled
            self._index(snapshot, compiled)
        self.cache = cache
        for index in (snapshot.exact, snapshot.wildcard):
            for routes in index.values():
                routes.sort(key=lambda r: len(r.prefix), reverse=True)
        return snapshot

    def _fragment(self, tenant_id: str, raw: str) -> _Compiled:
        data = json.loads(raw)
        active = bool(data.get("active", True))
        pools: dict[str, Pool] = {}
        for name, pool_data in (data.get("pools") or {}).items():
            backends = [Backend(b, self.registry.get(b["id"])) for b in pool_data.get("backends") or []
                        if b.get("enabled", True) and b.get("state", "active") != "disabled"
                        and int(b.get("weight", 100) or 0) > 0]
            algorithm = pool_data.get("algorithm") or "round_robin"
            if algorithm not in ALGORITHMS:
                log.warning("pool %s/%s: unknown algorithm %r, using round_robin", tenant_id, name, algorithm)
                algorithm = "round_robin"
            pools[name] = Pool(tenant_id, name, algorithm, bool(pool_data.get("sticky_sessions")), backends)
        routes = [Route(tenant_id, r, pools.get(r.get("pool")), active) for r in data.get("routes") or []]
        return _Compiled(raw, routes, list(pools.values()))

    @staticmethod
    def _index(snapshot: Snapshot, compiled: _Compiled) -> None:
        for route in compiled.routes:
            if route.host.startswith("*."):
                snapshot.wildcard.setdefault(route.host[1:], []).append(route)
            else:
                snapshot.exact.setdefault(route.host, []).append(route)
        for pool in compiled.pools:
            if pool.algorithm == "adaptive":
                snapshot.has_adaptive = True
            for backend in pool.backends:
                snapshot.pools_of_backend.setdefault(backend.id, []).append(pool)
