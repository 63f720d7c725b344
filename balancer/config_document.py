"""The configuration document: the export format, which is also what import and validate accept.

Layout (the VeloFlux YAML layout)::

    global:   {health_check: {...}}          # tenant defaults; platform keys are ignored
    pools:    [{name, algorithm, sticky_sessions, health_check, backends: [{address, weight, ...}]}]
    routes:   [{host, path_prefix, pool, max_body_bytes}]

The export carries no ids and is sorted, so exporting a tenant, importing the file into an
empty tenant and exporting again gives the same document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from balancer.models import DEFAULT_WEIGHT, Backend, Pool, Route
from balancer.validation import Errors, clean_backend, clean_global, clean_pool, clean_route

DOCUMENT_KEYS = ("global", "pools", "routes")
# Sections of a VeloFlux file that configure the platform, not a tenant: accepted and reported as ignored.
PLATFORM_SECTIONS = ("api", "auth", "cluster", "redis", "tenants", "billing", "ai", "logging", "metrics", "tls")


class HasConfig(Protocol):
    pools: dict[str, Pool]
    backends: dict[str, Backend]
    routes: dict[str, Route]
    global_settings: dict[str, Any]


def backend_document(backend: Backend) -> dict[str, Any]:
    return {"address": backend.address, "weight": backend.weight, "region": backend.region,
            "enabled": backend.enabled, "state": backend.state, "health_check": backend.health_check}


def build_document(config: HasConfig) -> dict[str, Any]:
    by_pool: dict[str, list[Backend]] = {}
    for backend in config.backends.values():
        by_pool.setdefault(backend.pool, []).append(backend)
    return {
        "global": dict(config.global_settings),
        "pools": [
            {"name": pool.name, "algorithm": pool.algorithm, "sticky_sessions": pool.sticky_sessions,
             "health_check": pool.health_check,
             "backends": [backend_document(b) for b in sorted(by_pool.get(pool.name, []), key=lambda b: b.address)]}
            for pool in sorted(config.pools.values(), key=lambda p: p.name)
        ],
        "routes": [
            {"host": r.host, "path_prefix": r.path_prefix, "pool": r.pool, "max_body_bytes": r.max_body_bytes}
            for r in sorted(config.routes.values(), key=lambda r: (r.host, r.path_prefix))
        ],
    }


@dataclass
class ParsedDocument:
    """A validated document: clean field values keyed the way import matches existing objects."""

    global_settings: dict[str, Any] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> clean pool fields
    backends: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (pool, address) -> fields
    routes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (host, prefix) -> fields
    pool_paths: dict[str, str] = field(default_factory=dict)
    backend_paths: dict[tuple[str, str], str] = field(default_factory=dict)
    route_paths: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: Errors = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _merge(errors: Errors, prefix: str, found: Errors) -> None:
    for name, messages in found.items():
        key = prefix if name == "non_field_errors" else f"{prefix}.{name}"
        errors.setdefault(key, []).extend(messages)


def _list(document: dict, name: str, errors: Errors) -> list:
    value = document.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.setdefault(name, []).append("must be a list")
        return []
    return value


def _parse_pool(index: int, raw: Any, parsed: ParsedDocument) -> None:
    where = f"pools[{index}]"
    clean, errors = clean_pool(raw, extra=("backends",))
    _merge(parsed.errors, where, errors)
    if "name" not in clean:
        return
    # Even a pool with errors is registered and its backends checked, so every error is reported at once.
    name = clean["name"]
    if name in parsed.pools:
        parsed.errors.setdefault(f"{where}.name", []).append(f"pool {name!r} is defined twice")
        return
    parsed.pools[name] = {"algorithm": "round_robin", "sticky_sessions": False, "health_check": None, **clean}
    parsed.pool_paths[name] = where
    backends = raw.get("backends") or []
    if not isinstance(backends, list):
        parsed.errors.setdefault(f"{where}.backends", []).append("must be a list")
        return
    for b_index, b_raw in enumerate(backends):
        b_where = f"{where}.backends[{b_index}]"
        if isinstance(b_raw, dict) and b_raw.get("pool") not in (None, name):
            parsed.errors.setdefault(f"{b_where}.pool", []).append(
                f"a backend listed under pool {name!r} cannot name another pool")
            continue
        b_clean, b_errors = clean_backend({**b_raw, "pool": name} if isinstance(b_raw, dict) else b_raw)
        _merge(parsed.errors, b_where, b_errors)
        if b_errors:
            continue
        key = (name, b_clean["address"])
        if key in parsed.backends:
            parsed.errors.setdefault(f"{b_where}.address", []).append(
                f"{b_clean['address']} is listed twice in pool {name!r}")
            continue
        parsed.backends[key] = {"weight": DEFAULT_WEIGHT, "region": None, "enabled": True, "state": "active",
                                "health_check": None, **b_clean}
        parsed.backend_paths[key] = b_where


def _parse_route(index: int, raw: Any, parsed: ParsedDocument) -> None:
    where = f"routes[{index}]"
    clean, errors = clean_route(raw)
    _merge(parsed.errors, where, errors)
    if errors:
        return
    clean = {"path_prefix": "/", "max_body_bytes": None, **clean}
    key = (clean["host"], clean["path_prefix"])
    if key in parsed.routes:
        parsed.errors.setdefault(f"{where}.host", []).append(
            f"{key[0]}{key[1]} is routed twice in this document")
        return
    if clean["pool"] not in parsed.pools:
        parsed.errors.setdefault(f"{where}.pool", []).append(f"no pool named {clean['pool']!r} in this document")
        return
    parsed.routes[key] = clean
    parsed.route_paths[key] = where


def parse_document(document: Any) -> ParsedDocument:
    """Validate a whole document; every problem is reported with its path (e.g. pools[0].backends[1].weight)."""
    parsed = ParsedDocument()
    if not isinstance(document, dict):
        parsed.errors["document"] = ["must be an object with global, pools and routes"]
        return parsed
    for name in document:
        if name in PLATFORM_SECTIONS:
            parsed.ignored.append(str(name))
        elif name not in DOCUMENT_KEYS:
            parsed.errors.setdefault(str(name), []).append(
                f"unknown section; a document has {', '.join(DOCUMENT_KEYS)}")
    for name in ("pools", "routes"):
        if name not in document:
            # An import replaces everything: a missing section must not silently mean "delete them all".
            parsed.errors.setdefault(name, []).append(f"is required (send {name}: [] to have none)")
    parsed.global_settings, global_errors, ignored_global = clean_global(document.get("global"))
    parsed.ignored.extend(ignored_global)
    parsed.errors.update(global_errors)
    for index, raw in enumerate(_list(document, "pools", parsed.errors)):
        _parse_pool(index, raw, parsed)
    for index, raw in enumerate(_list(document, "routes", parsed.errors)):
        _parse_route(index, raw, parsed)
    return parsed
