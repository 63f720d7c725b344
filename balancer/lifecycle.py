"""The balancer's part of a tenant's lifecycle (tenants/lifecycle.py), registered in
BalancerConfig.ready and staged into the tenant's own atomic write:

- suspended or reactivated: the routing fragment is recompiled with the new ``active`` flag, the
  routing version bumped and every proxy woken (audit ``config.reload``);
- deleted: the fragment and the host claims the tenant holds go, and its pending domain checks.
"""

from __future__ import annotations

from typing import Any

from balancer.snapshot import ROUTING_RACE, fragment_of, read_fragment, stage_routing_change
from balancer.store import DomainStore, load_snapshot
from tenants import lifecycle
from tenants.audit import Actor, stage_audit
from tenants.models import Tenant
from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite


def stage_status_change(batch: AtomicWrite, tenant: Tenant, actor: Actor, client: Any) -> None:
    """Recompile the fragment as the tenant will be (same as a forced reload of its configuration)."""
    snapshot = load_snapshot(tenant.id, client)
    stage_routing_change(batch, tenant.id, snapshot.routing_version, fragment_of(snapshot, active=tenant.active))
    stage_audit(batch, tenant.id, actor, "config.reload", "config", tenant.id, None, None)


def stage_purge(batch: AtomicWrite, tenant: Tenant, actor: Actor, client: Any) -> None:
    """Take the tenant off the data plane. The hosts come from the domain records and the fragment;
    a claim another tenant holds is never freed. Staged with the deletion of the tenant record, so
    no balancer write (which needs that record and the routing version it read) can re-add it."""
    version = int(client.get(keys.routing_version()) or 0)
    hosts = {d.host for d in DomainStore(tenant.id, client).all()}
    hosts |= set((read_fragment(tenant.id, client) or {}).get("hosts") or [])
    claims = sorted(keys.host_claim(host) for host in hosts)
    owners = client.mget(claims) if claims else []
    stage_routing_change(batch, tenant.id, version, None)
    for claim, owner in zip(claims, owners, strict=True):
        if owner == tenant.id:
            batch.delete(claim)
    for host in sorted(hosts):
        batch.zrem(keys.domains_pending(), f"{tenant.id} {host}")


def register() -> None:
    lifecycle.register(lifecycle.STATUS_CHANGED, stage_status_change, races=(ROUTING_RACE,))
    lifecycle.register(lifecycle.DELETED, stage_purge, races=(ROUTING_RACE,))
