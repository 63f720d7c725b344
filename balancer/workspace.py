"""An in-memory working copy of one tenant's configuration, where changes are applied and checked.

Every write (one object, a bulk, an import) loads a ``Snapshot``, applies its
operations to a ``Workspace`` (which enforces the rules that span objects:
references, uniqueness, resolved health checks, plan limits) and then hands the
difference to ``balancer.services.commit`` to be written in one atomic batch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from balancer.hosts import reserved_reason
from balancer.models import BACKEND_FIELDS, PLATFORM_HEALTH_CHECK, POOL_FIELDS, ROUTE_FIELDS, Backend, Pool, Route
from balancer.store import Snapshot
from balancer.validation import Errors, clean_backend, clean_pool, clean_route
from veloflux_site.storage.errors import LimitExceeded
from veloflux_site.storage.records import Record


class ItemError(Exception):
    """One operation cannot be applied: ``status`` 400 (invalid), 404 (missing) or 409 (conflict)."""

    def __init__(self, status: int, code: str, message: str, fields: Errors | None = None,
                 current_version: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.current_version = current_version

    @classmethod
    def invalid(cls, fields: Errors) -> ItemError:
        first, messages = next(iter(fields.items()))
        more = sum(len(m) for m in fields.values()) - 1
        summary = f"{first}: {messages[0]}" + (f" (and {more} more)" if more else "")
        return cls(400, "validation_error", f"Invalid input. {summary}", fields)


@dataclass
class Change:
    kind: str  # pool | backend | route
    op: str  # create | update | delete
    before: Record | None
    after: Record | None

    @property
    def object_id(self) -> str:
        return (self.after or self.before).id  # type: ignore[union-attr]


def host_taken_message(host: str) -> str:
    return (f"{host} belongs to another tenant, which verified it; a host name and every path under it belong "
            "to one tenant. Route a host you own, or claim a new one with POST /api/domains.")


def host_refusal(snapshot: Snapshot, host: str) -> ItemError | None:
    """Why the snapshot's tenant may not put ``host`` to use (None: it may): a name nobody may claim (under
    the platform domain, a public suffix) is ``host_reserved``; one another tenant holds is ``host_taken``."""
    reason = reserved_reason(host, snapshot.platform_host)
    if reason is not None:
        return ItemError(409, "host_reserved", reason, {"host": [reason]})
    owner = snapshot.host_owner(host)
    if owner is not None and owner != snapshot.tenant_id:
        message = host_taken_message(host)
        return ItemError(409, "host_taken", message, {"host": [message]})
    return None


def client_fields(kind: str) -> tuple[str, ...]:
    return {"pool": POOL_FIELDS, "backend": BACKEND_FIELDS, "route": ROUTE_FIELDS}[kind]


def resolve_health_check(backend: Backend | None, pool: Pool | None, global_settings: dict) -> dict[str, Any]:
    """The backend's own values over the pool's over the tenant's over the platform's."""
    resolved = dict(PLATFORM_HEALTH_CHECK)
    for layer in (global_settings.get("health_check"), pool and pool.health_check,
                  backend and backend.health_check):
        if layer:
            resolved.update(layer)
    return resolved


@dataclass
class Workspace:
    snapshot: Snapshot
    limits: dict[str, int]
    pools: dict[str, Pool] = field(default_factory=dict)
    backends: dict[str, Backend] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)
    global_settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, limits: dict[str, int]) -> Workspace:
        # Shallow copies are enough: operations replace records (new objects), they never edit one in place.
        return cls(snapshot, limits, dict(snapshot.pools), dict(snapshot.backends), dict(snapshot.routes),
                   copy.deepcopy(snapshot.global_settings))

    @property
    def tenant_id(self) -> str:
        return self.snapshot.tenant_id

    # --- lookups -------------------------------------------------------------
    def pool(self, name: str) -> Pool:
        if name not in self.pools:
            raise ItemError(404, "not_found", f"pool {name!r} not found")
        return self.pools[name]

    def backend(self, backend_id: str) -> Backend:
        if backend_id not in self.backends:
            raise ItemError(404, "not_found", f"backend {backend_id!r} not found")
        return self.backends[backend_id]

    def route(self, route_id: str) -> Route:
        if route_id not in self.routes:
            raise ItemError(404, "not_found", f"route {route_id!r} not found")
        return self.routes[route_id]

    def backends_of(self, pool_name: str) -> list[Backend]:
        return sorted((b for b in self.backends.values() if b.pool == pool_name), key=lambda b: (b.address, b.id))

    def routes_of(self, pool_name: str) -> list[Route]:
        return sorted((r for r in self.routes.values() if r.pool == pool_name), key=lambda r: (r.host, r.path_prefix))

    # --- rules spanning objects ------------------------------------------------
    @staticmethod
    def _check_version(record: Record, version: Any, label: str) -> None:
        if version is None:
            return
        if isinstance(version, bool) or not isinstance(version, int):
            raise ItemError.invalid({"version": ["must be the whole-number version you read"]})
        if version != record.version:
            raise ItemError(409, "version_conflict", f"{label} was changed by someone else (you sent version "
                            f"{version}, it is now {record.version}); reload it and try again",
                            {"version": [f"stale: the current version is {record.version}"]}, record.version)

    def _require_pool(self, name: str) -> None:
        if name not in self.pools:
            known = ", ".join(sorted(self.pools)) or "none yet; create one first"
            raise ItemError(400, "validation_error", f"pool {name!r} does not exist (pools: {known})",
                            {"pool": [f"no pool named {name!r} in this tenant"]})

    def _check_backend(self, backend: Backend) -> None:
        self._require_pool(backend.pool)
        for other in self.backends.values():
            if other.id != backend.id and other.pool == backend.pool and other.address == backend.address:
                raise ItemError(409, "conflict", f"pool {backend.pool!r} already has a backend at {backend.address}",
                                {"address": [f"already in pool {backend.pool!r} (backend {other.id})"]})
        self._check_resolved_health(backend, self.pools[backend.pool], "health_check")

    def _check_resolved_health(self, backend: Backend | None, pool: Pool | None, where: str) -> None:
        resolved = resolve_health_check(backend, pool, self.global_settings)
        if resolved["timeout"] >= resolved["interval"]:
            owner = f"backend {backend.address}" if backend else f"pool {pool.name}" if pool else "the tenant"
            raise ItemError.invalid({f"{where}.timeout": [
                f"the effective timeout ({resolved['timeout']}s) must be shorter than the effective interval "
                f"({resolved['interval']}s) for {owner}"]})

    def _check_route_host(self, host: str) -> None:
        """A host belongs to one tenant across every path prefix: refuse one another tenant holds, and the
        names nobody may claim (under the platform domain, public suffixes). An unclaimed host is fine:
        the route is stored and waits for the domain to be verified."""
        refusal = host_refusal(self.snapshot, host)
        if refusal is not None:
            raise refusal

    def _check_route(self, route: Route, host_changed: bool = True) -> None:
        self._require_pool(route.pool)
        if host_changed:
            self._check_route_host(route.host)
        for other in self.routes.values():
            if other.id != route.id and (other.host, other.path_prefix) == (route.host, route.path_prefix):
                raise ItemError(409, "conflict", f"a route for {route.host}{route.path_prefix} already exists "
                                f"({other.id})", {"host": [f"{route.host} with path_prefix {route.path_prefix} "
                                                           "is already routed"]})

    def check_limits(self) -> None:
        """Plan limits apply to growth: a tenant over a lowered limit may still shrink."""
        for kind, mine, before in (("pools", self.pools, self.snapshot.pools),
                                   ("backends", self.backends, self.snapshot.backends),
                                   ("routes", self.routes, self.snapshot.routes)):
            limit = f"max_{kind}"
            maximum = self.limits.get(limit)
            if maximum is not None and len(mine) > maximum and len(mine) > len(before):
                raise LimitExceeded(f"Your plan allows at most {maximum} {kind} ({limit}); this change would "
                                    f"make {len(mine)}. Delete some or upgrade the plan.", limit=limit,
                                    maximum=maximum)

    # --- pools -------------------------------------------------------------------
    def create_pool(self, data: Any) -> Pool:
        clean, errors = clean_pool(data)
        if errors:
            raise ItemError.invalid(errors)
        if clean["name"] in self.pools:
            raise ItemError(409, "conflict", f"a pool named {clean['name']!r} already exists",
                            {"name": ["already exists"]})
        pool = Pool(**clean)
        self._check_resolved_health(None, pool, "health_check")
        self.pools[pool.name] = pool
        return pool

    def update_pool(self, name: str, data: Any, version: Any = None) -> Pool:
        old = self.pool(name)
        self._check_version(old, version, f"pool {name!r}")
        clean, errors = clean_pool(data, partial=True)
        if errors:
            raise ItemError.invalid(errors)
        if clean.get("name", name) != name:
            raise ItemError.invalid({"name": ["a pool cannot be renamed; create a new pool and move its backends "
                                              "and routes"]})
        new = Pool.from_dict({**old.to_dict(), **clean})
        self._check_resolved_health(None, new, "health_check")
        for backend in self.backends_of(name):
            self._check_resolved_health(backend, new, "health_check")
        self.pools[name] = new
        return new

    def delete_pool(self, name: str, force: bool = False, version: Any = None) -> list[Record]:
        """Removes the pool and its backends; routes using it only with ``force``."""
        pool = self.pool(name)
        self._check_version(pool, version, f"pool {name!r}")
        routes = self.routes_of(name)
        if routes and not force:
            hosts = ", ".join(f"{r.host}{r.path_prefix}" for r in routes[:5])
            raise ItemError(409, "pool_in_use", f"pool {name!r} is used by {len(routes)} route(s) ({hosts}); "
                            "delete or move them first, or repeat with ?force=true to delete them too")
        removed: list[Record] = [pool]
        for route in routes:
            removed.append(self.routes.pop(route.id))
        for backend in self.backends_of(name):
            removed.append(self.backends.pop(backend.id))
        del self.pools[name]
        return removed

    # --- backends ------------------------------------------------------------------
    def create_backend(self, data: Any) -> Backend:
        clean, errors = clean_backend(data)
        if errors:
            raise ItemError.invalid(errors)
        backend = Backend(**clean)
        self._check_backend(backend)
        self.backends[backend.id] = backend
        return backend

    def update_backend(self, backend_id: str, data: Any, version: Any = None) -> Backend:
        old = self.backend(backend_id)
        self._check_version(old, version, f"backend {backend_id!r}")
        clean, errors = clean_backend(data, partial=True)
        if errors:
            raise ItemError.invalid(errors)
        new = Backend.from_dict({**old.to_dict(), **clean})
        self._check_backend(new)
        self.backends[backend_id] = new
        return new

    def delete_backend(self, backend_id: str, version: Any = None) -> Backend:
        backend = self.backend(backend_id)
        self._check_version(backend, version, f"backend {backend_id!r}")
        return self.backends.pop(backend_id)

    # --- routes --------------------------------------------------------------------
    def create_route(self, data: Any) -> Route:
        clean, errors = clean_route(data)
        if errors:
            raise ItemError.invalid(errors)
        route = Route(**clean)
        self._check_route(route)
        self.routes[route.id] = route
        return route

    def update_route(self, route_id: str, data: Any, version: Any = None) -> Route:
        old = self.route(route_id)
        self._check_version(old, version, f"route {route_id!r}")
        clean, errors = clean_route(data, partial=True)
        if errors:
            raise ItemError.invalid(errors)
        new = Route.from_dict({**old.to_dict(), **clean})
        self._check_route(new, host_changed=new.host != old.host)
        self.routes[route_id] = new
        return new

    def delete_route(self, route_id: str, version: Any = None) -> Route:
        route = self.route(route_id)
        self._check_version(route, version, f"route {route_id!r}")
        return self.routes.pop(route_id)

    # --- the difference to write ------------------------------------------------------
    def changes(self) -> list[Change]:
        out: list[Change] = []
        for kind, before, after in (("pool", self.snapshot.pools, self.pools),
                                    ("backend", self.snapshot.backends, self.backends),
                                    ("route", self.snapshot.routes, self.routes)):
            names = client_fields(kind)
            for key in sorted(before.keys() - after.keys()):
                out.append(Change(kind, "delete", before[key], None))
            for key in sorted(after.keys() - before.keys()):
                out.append(Change(kind, "create", None, after[key]))
            for key in sorted(after.keys() & before.keys()):
                old, new = before[key], after[key]
                if any(getattr(old, n) != getattr(new, n) for n in names):
                    out.append(Change(kind, "update", old, new))
        return out

    @property
    def global_changed(self) -> bool:
        return self.global_settings != self.snapshot.global_settings
