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

from balancer.models import UNBUILT_ALGORITHMS as UNBUILT
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
    __slots__ = ("hosts", "pools", "raw", "routes", "tenant_id")

    def __init__(self, tenant_id: str, raw: str, routes: list[Route], pools: list[Pool], hosts: list[str]):
        self.tenant_id, self.raw, self.routes, self.pools, self.hosts = tenant_id, raw, routes, pools, hosts


def _closed(tenant_id: str, host: str) -> Route:
    """Ends a host's route list: the paths its owner does not route answer 503 here instead of falling
    through to a wildcard route of another tenant (the lookup tries wildcards when no exact route matches)."""
    route = Route(tenant_id, {"id": f"closed:{host}", "host": host, "path_prefix": "/"}, None, True)
    route.prefix = ""  # matches every path
    return route


def _covering_suffixes(host: str) -> list[str]:
    """"a.b.example.com" -> [".b.example.com", ".example.com", ".com"]: the wildcard keys covering it, longest
    first."""
    return [host[i:] for i, char in enumerate(host) if char == "."]


def _enforce_host_ownership(snapshot: Snapshot, compiled: list[_Compiled]) -> None:
    """Defence in depth behind the control plane's host claims (compile time only, never per request):

    - a host listed by two tenants (routes or claimed ``hosts``) is served by neither, and logged;
    - an exact host one tenant holds is never answered by another tenant's wildcard route: its list gets the
      owner's own covering wildcard routes (in lookup order) and then a closing entry.
    """
    owners: dict[str, set[str]] = {}
    for item in compiled:
        for host in {r.host for r in item.routes} | set(item.hosts):
            owners.setdefault(host, set()).add(item.tenant_id)
    for host, tenants in owners.items():
        if len(tenants) > 1:
            log.error("host %s is in the routing fragments of %d tenants (%s); serving none of them",
                      host, len(tenants), ", ".join(sorted(tenants)))
            closed = _closed(min(tenants), host)
            if host.startswith("*."):
                snapshot.wildcard[host[1:]] = [closed]
            else:
                snapshot.exact[host] = [closed]
    for host, tenants in owners.items():
        if len(tenants) != 1 or host.startswith("*."):
            continue
        (owner,) = tenants
        covering = [(suffix, snapshot.wildcard[suffix]) for suffix in _covering_suffixes(host)
                    if suffix in snapshot.wildcard]
        if not any(r.tenant_id != owner for _, routes in covering for r in routes):
            continue
        own = [r for r in snapshot.exact.get(host, []) if r.tenant_id == owner]
        for _, routes in covering:
            own.extend(r for r in routes if r.tenant_id == owner)
        snapshot.exact[host] = [*own, _closed(owner, host)]


class Compiler:
    """Compiles fragments, reusing the compiled form (and balancer state) of unchanged tenants."""

    def __init__(self, registry: StateRegistry):
        self.registry = registry
        self.cache: dict[str, _Compiled] = {}

    def compile(self, version: int, table: dict[str, str], ai: dict[tuple[str, str], str]) -> Snapshot:
        snapshot = Snapshot(version=version, adaptive=ai, tenants=len(table))
        cache: dict[str, _Compiled] = {}
        compiled_all: list[_Compiled] = []
        for tenant_id, raw in table.items():
            compiled = self.cache.get(tenant_id)
            if compiled is None or compiled.raw != raw:
                try:
                    compiled = self._fragment(tenant_id, raw)
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("routing fragment of tenant %s is invalid, skipped: %s", tenant_id, exc)
                    continue
            cache[tenant_id] = compiled
            compiled_all.append(compiled)
            self._index(snapshot, compiled)
        self.cache = cache
        for index in (snapshot.exact, snapshot.wildcard):
            for routes in index.values():
                routes.sort(key=lambda r: len(r.prefix), reverse=True)
        _enforce_host_ownership(snapshot, compiled_all)
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
                # geo_proximity lands here: stored before the API refused it, it has always run round robin
                why = "is not implemented" if algorithm in UNBUILT else "is unknown"
                log.warning("pool %s/%s: algorithm %r %s, using round_robin", tenant_id, name, algorithm, why)
                algorithm = "round_robin"
            pools[name] = Pool(tenant_id, name, algorithm, bool(pool_data.get("sticky_sessions")), backends)
        routes = [Route(tenant_id, r, pools.get(r.get("pool")), active) for r in data.get("routes") or []]
        hosts = [str(h).lower().rstrip(".") for h in data.get("hosts") or []]
        return _Compiled(tenant_id, raw, routes, list(pools.values()), hosts)

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
