"""Configuration as a whole: validate, export, import (with dry run and diff), versions and rollback."""

from __future__ import annotations

import json
from typing import Any

import yaml

from balancer.config_document import ParsedDocument, build_document, parse_document
from balancer.models import Backend, Pool, Route
from balancer.services import Committed, Stored, apply_change, tenant_limits
from balancer.store import load_snapshot
from balancer.workspace import Change, ItemError, Workspace, host_refusal, resolve_health_check
from tenants.audit import Actor
from veloflux_site.documents import DocumentRefused, clip, loads_json, loads_yaml
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.errors import LimitExceeded, NotFound

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
# An answer lists at most this many errors (the first ones, in document order) and says how many it left out:
# a small document with many mistakes must not make a large answer.
MAX_REPORTED_ERRORS = 100


def _bounded(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    flat = [(path, message) for path, messages in errors.items() for message in messages]
    if len(flat) <= MAX_REPORTED_ERRORS and all(len(m) <= 1000 for _, m in flat):
        return errors
    kept: dict[str, list[str]] = {}
    for path, message in flat[:MAX_REPORTED_ERRORS]:
        kept.setdefault(clip(str(path), 200), []).append(clip(message))
    if len(flat) > MAX_REPORTED_ERRORS:
        kept.setdefault("document", []).append(
            f"... and {len(flat) - MAX_REPORTED_ERRORS} more errors not shown; fix these and validate again")
    return kept


class DocumentError(Exception):
    """The document is invalid: ``errors`` maps a path to messages (at most ``MAX_REPORTED_ERRORS``)."""

    def __init__(self, errors: dict[str, list[str]], ignored: list[str] | None = None):
        count = sum(len(m) for m in errors.values())
        errors = _bounded(errors)
        first, messages = next(iter(errors.items()))
        super().__init__(f"The configuration has {count} error(s); nothing was applied. First: {first}: {messages[0]}")
        self.errors = errors
        self.ignored = ignored or []


# --- reading a document ------------------------------------------------------------------
def load_text(text: str | bytes) -> Any:
    """A document from JSON or YAML text (JSON is YAML, but its errors read better as JSON's).

    Read through ``veloflux_site.documents``: nesting is bounded and YAML anchors and aliases are
    refused, so a few hundred bytes cannot expand into millions of nodes.
    """
    if len(text) > MAX_DOCUMENT_BYTES:
        raise DocumentError({"document": [f"is larger than {MAX_DOCUMENT_BYTES // 1024} KiB"]})
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            return loads_json(text)
        return loads_yaml(text)
    except DocumentRefused as exc:
        raise DocumentError({"document": [str(exc)]})
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DocumentError({"document": [f"is not valid JSON or YAML{where}: {getattr(exc, 'problem', exc)}"]})


# --- exporting --------------------------------------------------------------------------
def current_document(tenant_id: str) -> dict[str, Any]:
    return build_document(load_snapshot(tenant_id))


def render(document: dict[str, Any], fmt: str) -> tuple[str, str]:
    """(body, content type) of a document in ``json`` or ``yaml``."""
    if fmt == "yaml":
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True), \
            "application/yaml; charset=utf-8"
    return json.dumps(document, indent=2) + "\n", "application/json"


# --- applying a document to a workspace --------------------------------------------------
def _replace(work: Workspace, parsed: ParsedDocument) -> None:
    work.global_settings = dict(parsed.global_settings)
    pools: dict[str, Pool] = {}
    for name, fields in parsed.pools.items():
        old = work.pools.get(name)
        pools[name] = Pool.from_dict({**old.to_dict(), **fields}) if old else Pool(**fields)
    existing_backends = {(b.pool, b.address): b for b in work.backends.values()}
    backends: dict[str, Backend] = {}
    for key, fields in parsed.backends.items():
        old_backend = existing_backends.get(key)
        backend = Backend.from_dict({**old_backend.to_dict(), **fields}) if old_backend else Backend(**fields)
        backends[backend.id] = backend
    existing_routes = {(r.host, r.path_prefix): r for r in work.routes.values()}
    routes: dict[str, Route] = {}
    for key, fields in parsed.routes.items():
        old_route = existing_routes.get(key)
        route = Route.from_dict({**old_route.to_dict(), **fields}) if old_route else Route(**fields)
        routes[route.id] = route
    work.pools, work.backends, work.routes = pools, backends, routes


def _cross_checks(work: Workspace, parsed: ParsedDocument) -> dict[str, list[str]]:
    """Rules a single item cannot see: effective health checks, hosts other tenants hold."""
    errors: dict[str, list[str]] = {}
    for name, pool in work.pools.items():
        resolved = resolve_health_check(None, pool, work.global_settings)
        if resolved["timeout"] >= resolved["interval"]:
            errors.setdefault(f"{parsed.pool_paths[name]}.health_check.timeout", []).append(
                f"the effective timeout ({resolved['timeout']}s) must be shorter than the effective interval "
                f"({resolved['interval']}s)")
    for backend in work.backends.values():
        resolved = resolve_health_check(backend, work.pools[backend.pool], work.global_settings)
        if resolved["timeout"] >= resolved["interval"]:
            errors.setdefault(f"{parsed.backend_paths[(backend.pool, backend.address)]}.health_check.timeout",
                              []).append(f"the effective timeout ({resolved['timeout']}s) must be shorter than the "
                                         f"effective interval ({resolved['interval']}s)")
    mine = {r.host for r in work.snapshot.routes.values()}
    work.snapshot.read_host_owners(host for host, _ in parsed.routes if host not in mine)  # one round trip
    for key in parsed.routes:
        host = key[0]
        if host in mine:
            continue
        refusal = host_refusal(work.snapshot, host)
        if refusal is not None:
            errors.setdefault(f"{parsed.route_paths[key]}.host", []).append(refusal.message)
    return errors


def _label(change: Change) -> str:
    record = change.after or change.before
    if change.kind == "backend":
        return f"{record.pool}/{record.address}"  # type: ignore[union-attr]
    if change.kind == "route":
        return f"{record.host}{record.path_prefix}"  # type: ignore[union-attr]
    return record.name  # type: ignore[union-attr]


def summarize_changes(changes: list[Change], global_changed: bool) -> dict[str, Any]:
    diff: dict[str, Any] = {kind: {"create": [], "update": [], "delete": []}
                            for kind in ("pools", "backends", "routes")}
    for change in changes:
        entry: dict[str, Any] = {"name": _label(change)}
        if change.op == "update":
            entry["fields"] = {
                name: [getattr(change.before, name), getattr(change.after, name)]
                for name in ("algorithm", "sticky_sessions", "health_check", "weight", "region", "enabled",
                             "state", "pool", "max_body_bytes")
                if hasattr(change.after, name) and getattr(change.before, name) != getattr(change.after, name)
            }
        diff[f"{change.kind}s"][change.op].append(entry)
    diff["global"] = {"changed": global_changed}
    diff["total"] = len(changes) + (1 if global_changed else 0)
    return diff


def _plan(work: Workspace, document: Any) -> dict[str, Any]:
    parsed = parse_document(document)
    if parsed.errors:
        raise DocumentError(parsed.errors, parsed.ignored)
    _replace(work, parsed)
    errors = _cross_checks(work, parsed)
    if errors:
        raise DocumentError(errors, parsed.ignored)
    work.check_limits()
    return {"diff": summarize_changes(work.changes(), work.global_changed), "ignored": parsed.ignored}


# --- public operations -------------------------------------------------------------------------
def validate_document(tenant_id: str, document: Any) -> dict[str, Any]:
    """Validate a document against the tenant (references, hosts of other tenants, plan limits)."""
    work = Workspace.from_snapshot(load_snapshot(tenant_id), tenant_limits(tenant_id))
    try:
        plan = _plan(work, document)
    except DocumentError as exc:
        return invalid_answer(exc)
    except LimitExceeded as exc:
        return {"valid": False, "errors": [{"path": exc.limit, "message": str(exc)}], "ignored": []}
    return {"valid": True, "errors": [], "ignored": plan["ignored"], "diff": plan["diff"],
            "summary": {"pools": len(work.pools), "backends": len(work.backends), "routes": len(work.routes)}}


def _error_list(errors: dict[str, list[str]]) -> list[dict[str, str]]:
    return [{"path": path, "message": message} for path, messages in errors.items() for message in messages]


def invalid_answer(exc: DocumentError) -> dict[str, Any]:
    """What validate answers for a document that cannot be applied (bounded like the error itself)."""
    return {"valid": False, "errors": _error_list(exc.errors), "ignored": exc.ignored[:MAX_REPORTED_ERRORS]}


def dry_run_import(tenant_id: str, document: Any) -> dict[str, Any]:
    snapshot = load_snapshot(tenant_id)
    work = Workspace.from_snapshot(snapshot, tenant_limits(tenant_id))
    plan = _plan(work, document)
    return {"dry_run": True, "applied": False, "config_version": snapshot.config_version, **plan}


def import_document(tenant_id: str, actor: Actor, document: Any, action: str = "config.import",
                    stored: Stored | None = None) -> dict[str, Any]:
    """Replace the tenant's configuration with the document, atomically."""
    plan, committed = apply_change(tenant_id, actor, action, lambda work: _plan(work, document), stored=stored)
    return import_answer(plan, committed, tenant_id)


def import_answer(plan: dict[str, Any], committed: Committed | None, tenant_id: str | None = None) -> dict[str, Any]:
    version = committed.config_version if committed else load_snapshot(tenant_id).config_version  # type: ignore
    return {"dry_run": False, "applied": committed is not None, "config_version": version, **plan}


# --- versions --------------------------------------------------------------------------------
def list_versions(tenant_id: str) -> list[dict[str, Any]]:
    raw = get_redis().hgetall(keys.balancer_config_history(tenant_id))
    entries = [json.loads(value) for value in raw.values()]
    entries.sort(key=lambda e: e["version"], reverse=True)
    for entry in entries:
        document = entry.pop("document")
        entry["summary"] = {"pools": len(document["pools"]),
                            "backends": sum(len(p["backends"]) for p in document["pools"]),
                            "routes": len(document["routes"])}
    return entries


def get_version(tenant_id: str, version: int) -> dict[str, Any]:
    raw = get_redis().hget(keys.balancer_config_history(tenant_id), str(version))
    if raw is None:
        raise NotFound(f"configuration version {version} not found (only the last versions are kept; "
                       "see GET /api/config/versions)")
    return json.loads(raw)


def rollback(tenant_id: str, actor: Actor, version: int, stored: Stored | None = None) -> dict[str, Any]:
    """Apply the document of an earlier version as a new version."""
    entry = get_version(tenant_id, version)
    return {**import_document(tenant_id, actor, entry["document"], action=f"config.rollback:{version}",
                              stored=stored), "rolled_back_to": version}


__all__ = ["DocumentError", "ItemError", "current_document", "dry_run_import", "import_document", "invalid_answer",
           "list_versions", "load_text", "render", "rollback", "validate_document"]
