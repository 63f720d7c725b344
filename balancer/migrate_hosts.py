"""From per host + path prefix route claims to host claims (issue 12): one tenant per host.

Each host that stored routes use goes to the tenant whose route on it was created first (a verified domain,
method ``migrated``); the other tenants' routes on that host stay stored but are no longer served (their
status says why). The old ``vf:route:claim:*`` keys are removed, and every fragment that still serves a
route its tenant does not hold is recompiled. Idempotent: a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from balancer import domains
from balancer.hosts import reserved_reason
from balancer.services import reload_routing
from balancer.snapshot import read_fragment
from balancer.store import load_snapshot
from tenants.audit import Actor
from tenants.store import TenantStore
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

OLD_CLAIMS = f"{keys.PREFIX}:route:claim:*"


@dataclass
class Report:
    hosts_assigned: dict[str, str] = field(default_factory=dict)  # host -> tenant id
    fragments_rebuilt: list[str] = field(default_factory=list)
    old_claims_removed: int = 0


def _first_routers(tenant_ids: list[str]) -> dict[str, str]:
    """host -> the tenant whose route on it was created first (hosts no one may hold are left out)."""
    earliest: dict[str, tuple[str, str]] = {}
    for tenant_id in tenant_ids:
        snapshot = load_snapshot(tenant_id)
        for route in snapshot.routes.values():
            if route.host == snapshot.platform_host or reserved_reason(route.host, snapshot.platform_host):
                continue
            seen = earliest.get(route.host)
            if seen is None or (route.created_at, tenant_id) < seen:
                earliest[route.host] = (route.created_at, tenant_id)
    return {host: tenant_id for host, (_, tenant_id) in earliest.items()}


def _stale(tenant_id: str) -> bool:
    """Whether the tenant's fragment is not what the current rules compile (old format or unheld routes)."""
    snapshot = load_snapshot(tenant_id)
    fragment = read_fragment(tenant_id, get_redis())
    if fragment is None:
        return bool(snapshot.routes)
    held = snapshot.served_hosts
    return "hosts" not in fragment or any(r.get("host") not in held for r in fragment.get("routes") or [])


def migrate_host_claims() -> Report:
    client = get_redis()
    report = Report()
    tenant_ids = sorted(TenantStore(client).ids())
    for host, tenant_id in sorted(_first_routers(tenant_ids).items()):
        if client.get(keys.host_claim(host)) is not None:
            continue  # already migrated, or proved since
        domains.mark_verified(tenant_id, Actor.system(), host, "migrated")
        report.hosts_assigned[host] = tenant_id
    for tenant_id in tenant_ids:
        if _stale(tenant_id):
            reload_routing(tenant_id)
            report.fragments_rebuilt.append(tenant_id)
    old = list(client.scan_iter(match=OLD_CLAIMS, count=1000))
    for start in range(0, len(old), 500):
        report.old_claims_removed += client.delete(*old[start:start + 500])
    return report
