"""Business rules of the load balancer control plane.

Every change follows one path, ``apply_change``: load the tenant's snapshot,
apply operations to a ``Workspace`` (validation and cross-object rules), then
``commit`` the difference in ONE atomic write together with the guards on the
host claims, the audit entries, the tenant's config version and history, the
compiled routing fragment, the routing version bump and the change event.
A concurrent writer makes the write retry from a fresh snapshot, so the result
always equals some serial order.

Public entry point for other apps: ``ensure_demo_setup`` (demo bootstrap). A tenant's suspension
and deletion reach the balancer through tenants/lifecycle.py (balancer/lifecycle.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from balancer.config_document import build_document
from balancer.models import Backend, Pool, Route
from balancer.snapshot import ROUTING_RACE, build_fragment, stage_routing_change
from balancer.store import BackendStore, PoolStore, RouteStore, load_snapshot
from balancer.workspace import Change, ItemError, Workspace, host_taken_message
from tenants.audit import Actor, stage_audit
from tenants.store import TenantStore
from veloflux_site.storage import keys, repository
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.errors import Conflict
from veloflux_site.storage.records import utcnow

T = TypeVar("T")
HISTORY_KEPT = 50
MAX_ATTEMPTS = 60
IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
IDEMPOTENCY_RACE = "an identical request with this Idempotency-Key is being applied"


@dataclass
class Committed:
    """What a successful commit wrote."""

    config_version: int
    routing_version: int
    changes: list[Change] = field(default_factory=list)


@dataclass
class Stored:
    """An idempotent request's answer to store with the change: (status, body)."""

    key_hash: str
    fingerprint: str
    build: Callable[[Any, Committed], tuple[int, Any]]


def _stores(tenant_id: str, client) -> dict[str, Any]:
    return {"pool": PoolStore(tenant_id, client), "backend": BackendStore(tenant_id, client),
            "route": RouteStore(tenant_id, client)}


def _stage_host_guards(batch: AtomicWrite, work: Workspace, changes: list[Change]) -> None:
    """A host belongs to one tenant across every path prefix: a route put on a host (new, or moved to
    another host) requires that no other tenant holds the host's claim when the batch runs. The claim is
    only taken by proving the domain (``balancer.domains``); an unclaimed host's routes wait, unserved."""
    hosts = {c.after.host for c in changes if c.kind == "route" and c.after is not None
             and (c.before is None or c.before.host != c.after.host)}  # type: ignore[attr-defined]
    for host in sorted(hosts - {work.snapshot.platform_host}):
        batch.require_free_or_owned(keys.host_claim(host), work.tenant_id, host_taken_message(host), "host")


def _stage_records(batch: AtomicWrite, work: Workspace, changes: list[Change], actor: Actor, client) -> None:
    stores = _stores(work.tenant_id, client)
    for change in changes:
        store = stores[change.kind]
        if change.op == "create":
            store.stage_create(batch, change.after)
        elif change.op == "update":
            store.stage_update(batch, change.before, change.after)
        else:
            store.stage_delete(batch, change.before)
        before = change.before.to_dict() if change.before else None
        after = change.after.to_dict() if change.after else None
        stage_audit(batch, work.tenant_id, actor, f"{change.kind}.{change.op}", change.kind, change.object_id,
                    before, after)


def commit(work: Workspace, actor: Actor, action: str, *, client=None, stored: Stored | None = None,
           result: Any = None, force: bool = False) -> Committed | None:
    """Write the workspace's difference atomically. ``None`` when there was nothing to write.

    ``force`` writes the fragment and bumps the versions even with no object change (reload).
    Raises Conflict(ROUTING_RACE) when another write got in first: the caller retries.
    """
    client = client or get_redis()
    snapshot = work.snapshot
    changes = work.changes()
    if not changes and not work.global_changed and not force:
        return None
    work.check_limits()
    tenant = TenantStore(client).get(work.tenant_id)
    config_changed = bool(changes) or work.global_changed
    config_version = snapshot.config_version + (1 if config_changed else 0)
    batch = AtomicWrite()
    fragment = build_fragment(work.tenant_id, active=tenant.active, config_version=config_version,
                              pools=work.pools, backends=work.backends, routes=work.routes,
                              global_settings=work.global_settings, served_hosts=snapshot.served_hosts)
    routing_version = stage_routing_change(batch, work.tenant_id, snapshot.routing_version, fragment)
    committed = Committed(config_version, routing_version, changes)
    _stage_host_guards(batch, work, changes)
    _stage_records(batch, work, changes, actor, client)
    # After the records are staged: the answer shows their new versions and timestamps.
    if stored is not None:
        status, body = stored.build(result, committed)
        idem_key = keys.balancer_idempotency(work.tenant_id, stored.key_hash)
        batch.require_absent(idem_key, IDEMPOTENCY_RACE)
        batch.set(idem_key, json.dumps({"fingerprint": stored.fingerprint, "status": status, "body": body},
                                       separators=(",", ":"), default=str), ttl_ms=IDEMPOTENCY_TTL_MS)
    if force and not config_changed:
        stage_audit(batch, work.tenant_id, actor, action, "config", work.tenant_id, None, None)
    elif not _is_single_object_action(action, changes):
        # Bulk, import, rollback: one entry for the whole request besides one per object.
        name, _, target = action.partition(":")
        after: dict[str, Any] = {"config_version": config_version, "objects_changed": len(changes)}
        if target:
            after["rolled_back_to"] = int(target)
        stage_audit(batch, work.tenant_id, actor, name, "config", work.tenant_id,
                    {"config_version": snapshot.config_version}, after)
    if work.global_changed:
        stage_audit(batch, work.tenant_id, actor, "config.global", "config", work.tenant_id,
                    {"global": snapshot.global_settings}, {"global": work.global_settings})
    if config_changed:
        now = utcnow()
        batch.set(keys.balancer_config_state(work.tenant_id), json.dumps(
            {"version": config_version, "config_version": config_version, "global": work.global_settings,
             "updated_at": now}, separators=(",", ":")))
        history = keys.balancer_config_history(work.tenant_id)
        batch.hset(history, str(config_version), json.dumps({
            "version": config_version, "created_at": now, "actor": actor.label, "actor_id": actor.id,
            "action": action, "changes": len(changes) + (1 if work.global_changed else 0),
            "document": build_document(work),
        }, separators=(",", ":")))
        if config_version > HISTORY_KEPT:
            batch.hdel(history, str(config_version - HISTORY_KEPT))
    batch.execute(client)
    return committed


def _is_single_object_action(action: str, changes: list[Change]) -> bool:
    return any(action == f"{change.kind}.{change.op}" for change in changes[:1]) and (
        len(changes) == 1 or action == "pool.delete")


def _is_race(exc: Conflict) -> bool:
    return str(exc) == ROUTING_RACE


def tenant_limits(tenant_id: str) -> dict[str, int]:
    return TenantStore().get(tenant_id).limits


def retry_on_race(attempt_once: Callable[[], T]) -> T:
    """Run ``attempt_once`` again from fresh reads while another routing write got in first."""
    return repository.retry_on_race(attempt_once, _is_race, MAX_ATTEMPTS)


def apply_change(tenant_id: str, actor: Actor, action: str, mutate: Callable[[Workspace], T], *,
                 stored: Stored | None = None, force: bool = False) -> tuple[T, Committed | None]:
    """Load, mutate, commit; retried from a fresh snapshot while other writers win the race."""
    client = get_redis()
    limits = tenant_limits(tenant_id)

    def attempt_once() -> tuple[T, Committed | None]:
        if stored is not None and client.exists(keys.balancer_idempotency(tenant_id, stored.key_hash)):
            raise Conflict(IDEMPOTENCY_RACE)  # a twin request won while this one retried: replay its answer
        work = Workspace.from_snapshot(load_snapshot(tenant_id, client), limits)
        result = mutate(work)
        return result, commit(work, actor, action, client=client, stored=stored, result=result, force=force)

    return retry_on_race(attempt_once)


# --- single-object operations (the REST endpoints) ------------------------------------------
def create_object(tenant_id: str, actor: Actor, kind: str, data: Any,
                  stored: Stored | None = None) -> Pool | Backend | Route:
    method = f"create_{kind}"
    obj, _ = apply_change(tenant_id, actor, f"{kind}.create", lambda w: getattr(w, method)(data), stored=stored)
    return obj


def update_object(tenant_id: str, actor: Actor, kind: str, object_id: str, data: Any,
                  version: Any = None) -> Pool | Backend | Route:
    method = f"update_{kind}"
    obj, _ = apply_change(tenant_id, actor, f"{kind}.update", lambda w: getattr(w, method)(object_id, data, version))
    return obj


def delete_object(tenant_id: str, actor: Actor, kind: str, object_id: str, version: Any = None,
                  force: bool = False) -> Any:
    if kind == "pool":
        removed, _ = apply_change(tenant_id, actor, "pool.delete", lambda w: w.delete_pool(object_id, force, version))
        return removed
    method = f"delete_{kind}"
    removed, _ = apply_change(tenant_id, actor, f"{kind}.delete", lambda w: getattr(w, method)(object_id, version))
    return removed


def reload_routing(tenant_id: str, actor: Actor | None = None) -> Committed:
    """Recompile the tenant's fragment (e.g. after the tenant was suspended or reactivated), bump the
    routing version and wake every proxy. The tenant's configuration itself does not change."""
    _, committed = apply_change(tenant_id, actor or Actor.system(), "config.reload", lambda work: None, force=True)
    return committed  # type: ignore[return-value]


# --- for other apps ---------------------------------------------------------------------------
def ensure_demo_setup(tenant_id: str, *, host: str, backend_addresses: list[str], pool_name: str = "demo",
                      algorithm: str = "round_robin", path_prefix: str = "/",
                      health_check: dict | None = None, actor: Actor | None = None) -> dict[str, Any]:
    """Create (once) a pool with backends and a route for a tenant, e.g. for a demo bootstrap.

    Idempotent: objects that already exist (pool by name, backend by address, route by host and
    prefix) are kept as they are. Raises ItemError or LimitExceeded on bad input.
    Returns {"pool": Pool, "backends": [Backend], "route": Route, "config_version": int}.
    """
    actor = actor or Actor.system()

    def build(work: Workspace) -> dict[str, Any]:
        if pool_name not in work.pools:
            pool_data: dict[str, Any] = {"name": pool_name, "algorithm": algorithm}
            if health_check is not None:
                pool_data["health_check"] = health_check
            work.create_pool(pool_data)
        existing = {b.address: b for b in work.backends_of(pool_name)}
        backends = []
        for address in backend_addresses:
            found = next((b for a, b in existing.items() if a == address), None)
            backends.append(found or work.create_backend({"pool": pool_name, "address": address}))
        route = next((r for r in work.routes.values() if (r.host, r.path_prefix) == (host.lower(), path_prefix)),
                     None) or work.create_route({"host": host, "path_prefix": path_prefix, "pool": pool_name})
        return {"pool": work.pools[pool_name], "backends": backends, "route": route}

    result, committed = apply_change(tenant_id, actor, "demo.setup", build)
    result["config_version"] = committed.config_version if committed else load_snapshot(tenant_id).config_version
    return result


def idempotency_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()[:32]


def stored_answer(tenant_id: str, key_hash: str) -> dict | None:
    raw = get_redis().get(keys.balancer_idempotency(tenant_id, key_hash))
    return json.loads(raw) if raw else None


def is_idempotency_race(exc: Conflict) -> bool:
    return str(exc) == IDEMPOTENCY_RACE


__all__ = [
    "Committed",
    "ItemError",
    "apply_change",
    "commit",
    "create_object",
    "delete_object",
    "ensure_demo_setup",
    "reload_routing",
    "update_object",
]
