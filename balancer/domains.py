"""Domains: a tenant claims a host name, proves control of it, and only then does the proxy route it.

- A host (``api.example.com`` or ``*.example.com``) belongs to ONE tenant across every path prefix:
  the platform-wide key ``keys.host_claim(host)`` names it, set when the tenant proves control.
- A claim starts ``pending`` with a token; a DNS TXT record or an HTTP token proves it
  (``balancer.domain_checks``). Pending claims expire and never block another tenant: whoever proves
  first wins, and the other tenants' pending claims on that host can no longer be verified.
- ``<tenant-slug>.<VF_PLATFORM_DOMAIN>`` is the tenant's from the start (``balancer.hosts``).
- Verifying or releasing a domain is a routing write like every balancer change: the domain record, the
  host claim, the tenant's recompiled fragment (routes on the host served or not), the routing version
  bump and event, and the audit entries are ONE atomic write, retried from fresh reads on a race.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from balancer import domain_checks
from balancer.hosts import challenge_dns_name, challenge_http_path, is_wildcard, platform_name, reserved_reason
from balancer.models import Domain, Route
from balancer.services import retry_on_race
from balancer.snapshot import fragment_of, stage_routing_change
from balancer.store import DomainStore, Snapshot, load_snapshot
from balancer.validation import clean_host
from balancer.workspace import ItemError, host_refusal, host_taken_message
from tenants.audit import Actor, stage_audit
from tenants.store import TenantStore
from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.errors import Conflict, NotFound
from veloflux_site.storage.records import utcnow

PLATFORM_METHOD = "platform"


# --- what the API shows --------------------------------------------------------------------
def domain_payload(domain: Domain, owner: str | None, tenant_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "host": domain.host,
        "status": domain.status,
        "wildcard": is_wildcard(domain.host),
        "method": domain.method,
        "verified_at": domain.verified_at,
        "expires_at": None if domain.status == "verified" or domain.expires_at is None
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(domain.expires_at)),
        "created_at": domain.created_at,
        "verification": {
            "dns_txt_name": challenge_dns_name(domain.host),
            "dns_txt_value": domain.token,
            "http_path": challenge_http_path(domain.token),
            "http_body": domain.token,
        } if domain.token else None,
        "reason": None,
    }
    if domain.status != "verified":
        if owner is not None and owner != tenant_id:
            data["reason"] = f"{domain.host} was verified by another tenant first; this claim can no longer win"
        else:
            data["reason"] = ("publish the TXT record or the HTTP token below, then POST "
                              f"/api/domains/{domain.host}/verify")
    return data


def platform_payload(host: str) -> dict[str, Any]:
    return {"host": host, "status": "verified", "wildcard": False, "method": PLATFORM_METHOD, "verified_at": None,
            "expires_at": None, "created_at": None, "verification": None, "reason": None}


def list_domains(tenant_id: str) -> list[dict[str, Any]]:
    snapshot = load_snapshot(tenant_id)
    domains = sorted(snapshot.domains.values(), key=lambda d: d.host)
    owners = _owners([d.host for d in domains])
    listed = [platform_payload(snapshot.platform_host)] if snapshot.platform_host else []
    return listed + [domain_payload(d, owners.get(d.host), tenant_id) for d in domains]


def get_domain(tenant_id: str, host: str) -> dict[str, Any]:
    snapshot = load_snapshot(tenant_id)
    if host == snapshot.platform_host:
        return platform_payload(host)
    domain = _require(snapshot, host)
    return domain_payload(domain, snapshot.host_owner(domain.host), tenant_id)


def route_status(route: Route, snapshot: Snapshot, owners: dict[str, str | None]) -> dict[str, Any]:
    """``active`` when the tenant holds the route's host, else ``pending_verification`` and why."""
    if route.host in snapshot.served_hosts:
        return {"status": "active", "status_reason": None}
    owner = owners.get(route.host)
    if owner is not None and owner != snapshot.tenant_id:
        reason = f"{route.host} is verified by another tenant; this route is not served"
    elif (reserved := reserved_reason(route.host, snapshot.platform_host)) is not None:
        reason = reserved
    elif route.host in snapshot.domains:
        reason = f"waiting for proof that you control {route.host}: see GET /api/domains/{route.host}"
    else:
        reason = f"{route.host} is not a verified domain of this tenant: claim it with POST /api/domains"
    return {"status": "pending_verification", "status_reason": reason}


def route_statuses(snapshot: Snapshot, routes: list[Route]) -> dict[str, dict[str, Any]]:
    owners = _owners(sorted({r.host for r in routes if r.host not in snapshot.served_hosts}))
    return {r.id: route_status(r, snapshot, owners) for r in routes}


def status_of(tenant_id: str, route: Route) -> dict[str, Any]:
    """``route_status`` of one route, reading only what it needs (not the tenant's whole configuration)."""
    client = get_redis()
    tenant = TenantStore(client).find(tenant_id)
    snapshot = Snapshot(tenant_id, 0, 0, {}, client=client,
                        platform_host=platform_name(tenant.slug if tenant else None))
    domain = DomainStore(tenant_id, client).find_by_client_id(route.host)
    if domain is not None:
        snapshot.domains[domain.host] = domain
    return route_status(route, snapshot, _owners([route.host]))


def _owners(hosts: list[str]) -> dict[str, str | None]:
    if not hosts:
        return {}
    return dict(zip(hosts, get_redis().mget([keys.host_claim(h) for h in hosts]), strict=True))


def _require(snapshot: Snapshot, host: str) -> Domain:
    domain = snapshot.domains.get(host)
    if domain is None:
        raise ItemError(404, "not_found", f"domain {host!r} not found in this tenant")
    return domain


def _clean(host: Any) -> str:
    try:
        return clean_host(host)
    except ValueError as exc:
        raise ItemError.invalid({"host": [str(exc)]})


# --- claiming (no routing change: a pending claim serves nothing) --------------------------
def claim_domain(tenant_id: str, actor: Actor, data: Any) -> tuple[dict[str, Any], bool]:
    """Claim a host for the tenant: (payload, created). Claiming again returns the existing claim."""
    if not isinstance(data, dict):
        raise ItemError.invalid({"non_field_errors": ["expected a JSON object such as {\"host\": \"example.com\"}"]})
    unknown = sorted(set(data) - {"host"})
    if unknown:
        raise ItemError.invalid({name: ["unknown field; allowed: host"] for name in unknown})
    host = _clean(data.get("host"))
    snapshot = load_snapshot(tenant_id)
    if host == snapshot.platform_host:
        return platform_payload(host), False
    refusal = host_refusal(snapshot, host)
    if refusal is not None:
        raise refusal
    owner = snapshot.host_owner(host)
    if host in snapshot.domains:
        return domain_payload(snapshot.domains[host], owner, tenant_id), False
    domain = Domain(host=host, token=secrets.token_urlsafe(24),
                    expires_at=time.time() + float(settings.DOMAIN_PENDING_TTL))
    batch = AtomicWrite()
    DomainStore(tenant_id, get_redis()).stage_create(batch, domain)
    batch.zadd(keys.domains_pending(), f"{tenant_id} {host}", domain.expires_at or 0)
    stage_audit(batch, tenant_id, actor, "domain.claim", "domain", host, None, {"host": host, "status": "pending"})
    batch.execute(get_redis())
    return domain_payload(domain, owner, tenant_id), True


# --- routing writes: verify, release -------------------------------------------------------
@dataclass
class _DomainChange:
    """One domain's new state (None: released), written with the tenant's recompiled fragment."""

    host: str
    after: Domain | None
    audit: Callable[[AtomicWrite], None]


def _write(tenant_id: str, build: Callable[[Snapshot], _DomainChange | None]) -> None:
    """Load, decide, write ONE batch: domain record and index, host claim, fragment, version, event, audit.

    ``build`` returns None when there is nothing to write (e.g. a twin request verified it already)."""
    client = get_redis()

    def attempt_once() -> None:
        snapshot = load_snapshot(tenant_id, client)
        change = build(snapshot)
        if change is None:
            return None
        tenant = TenantStore(client).get(tenant_id)
        store, before = DomainStore(tenant_id, client), snapshot.domains.get(change.host)
        if change.after is None:
            snapshot.domains.pop(change.host, None)
        else:
            snapshot.domains[change.host] = change.after
        batch = AtomicWrite()
        # The routing-version guard goes first: a concurrent routing write makes this attempt start again.
        stage_routing_change(batch, tenant_id, snapshot.routing_version, fragment_of(snapshot, active=tenant.active))
        if change.after is None:
            if before is not None:
                store.stage_delete(batch, before)
            if snapshot.host_owner(change.host) == tenant_id:
                batch.delete(keys.host_claim(change.host))
        else:
            if before is None:
                store.stage_create(batch, change.after)
            else:
                store.stage_update(batch, before, change.after)
            batch.require_free_or_owned(keys.host_claim(change.host), tenant_id,
                                        host_taken_message(change.host), "host")
            batch.set(keys.host_claim(change.host), tenant_id)
        batch.zrem(keys.domains_pending(), f"{tenant_id} {change.host}")
        change.audit(batch)
        batch.execute(client)

    try:
        retry_on_race(attempt_once)
    except Conflict as exc:
        if exc.field != "host":
            raise
        raise ItemError(409, "host_taken", str(exc), {"host": [str(exc)]})


def verify_domain(tenant_id: str, actor: Actor, host: str) -> dict[str, Any]:
    """Check the proof now. Verified: the host is the tenant's and its routes are served at once.
    Not yet: the answer says what each check found (nothing is written)."""
    snapshot = load_snapshot(tenant_id)
    if host == snapshot.platform_host:
        return platform_payload(host)
    domain = _require(snapshot, host)
    owner = snapshot.host_owner(host)
    if owner is not None and owner != tenant_id:
        raise ItemError(409, "host_taken", host_taken_message(host), {"host": [host_taken_message(host)]})
    if domain.status == "verified":
        return domain_payload(domain, owner, tenant_id)
    if domain.expires_at is not None and domain.expires_at < time.time():
        raise ItemError(409, "claim_expired", f"the claim on {host} expired unproved; delete it and claim the host "
                        "again for a new token")
    method, found = domain_checks.prove(host, domain.token)
    if method is None:
        payload = domain_payload(domain, owner, tenant_id)
        payload["checks"] = found
        return payload
    verified = mark_verified(tenant_id, actor, host, method)
    payload = domain_payload(verified, tenant_id, tenant_id)
    payload["checks"] = found
    return payload


def mark_verified(tenant_id: str, actor: Actor, host: str, method: str) -> Domain:
    """Write the proved claim (refused with 409 when another tenant proved it first)."""

    def build(snapshot: Snapshot) -> _DomainChange | None:
        before = snapshot.domains.get(host)
        if before is not None and before.status == "verified":
            return None  # a twin request verified it already
        after = Domain.from_dict({**(before.to_dict() if before else {"host": host}), "status": "verified",
                                  "method": method, "verified_at": utcnow(), "expires_at": None})

        def audit(batch: AtomicWrite) -> None:
            stage_audit(batch, tenant_id, actor, "domain.verify", "domain", host, {"status": "pending"},
                        {"status": "verified", "method": method})

        return _DomainChange(host, after, audit)

    _write(tenant_id, build)
    return DomainStore(tenant_id).get(host)


def release_domain(tenant_id: str, actor: Actor, host: str, *, by_platform_admin: bool = False) -> None:
    """Give the host up: its routes stay stored but are no longer served. A platform admin may release
    any tenant's claim; that is recorded in the tenant's audit stream and the platform's."""

    def build(snapshot: Snapshot) -> _DomainChange:
        if host == snapshot.platform_host:
            raise ItemError(409, "platform_name", f"{host} is the tenant's platform name; it cannot be released")
        before = _require(snapshot, host)

        def audit(batch: AtomicWrite) -> None:
            after = {"status": "released", "by_platform_admin": by_platform_admin}
            stage_audit(batch, tenant_id, actor, "domain.release", "domain", host, {"status": before.status}, after)
            if by_platform_admin:
                stage_audit(batch, None, actor, "domain.release", "domain", f"{tenant_id}/{host}",
                            {"tenant_id": tenant_id, "status": before.status}, after)

        return _DomainChange(host, None, audit)

    _write(tenant_id, build)


# --- the periodic re-check (balancer.tasks.recheck_pending_domains) ------------------------
def recheck_pending(sample: int = 30) -> dict[str, int]:
    """Forget expired pending claims, then try to prove a random sample of the others (a run stays bounded
    however many are pending: each check may wait for a nameserver or a web server). Idempotent."""
    client = get_redis()
    report = {"checked": 0, "verified": 0, "expired": 0}
    for member in client.zrangebyscore(keys.domains_pending(), "-inf", time.time()):
        domain = _pending(client, member)
        if domain is not None:
            _expire(client, member.partition(" ")[0], domain)
            report["expired"] += 1
    for member in client.zrandmember(keys.domains_pending(), sample) or []:
        tenant_id, _, host = member.partition(" ")
        domain = _pending(client, member)
        owner = client.get(keys.host_claim(host))
        if domain is None or (owner is not None and owner != tenant_id):
            continue  # someone else proved it first: this claim waits for its expiry
        report["checked"] += 1
        method, _ = domain_checks.prove(host, domain.token)
        if method is None:
            continue
        try:
            mark_verified(tenant_id, Actor.system(), host, method)
        except ItemError:  # another tenant won in between
            continue
        report["verified"] += 1
    return report


def _pending(client, member: str) -> Domain | None:
    """The pending claim a ``domains_pending`` member names; a stale member is removed."""
    tenant_id, _, host = member.partition(" ")
    domain = DomainStore(tenant_id, client).find_by_client_id(host)
    if domain is None or domain.status != "pending" or TenantStore(client).find(tenant_id) is None:
        client.zrem(keys.domains_pending(), member)
        return None
    return domain


def _expire(client, tenant_id: str, domain: Domain) -> None:
    batch = AtomicWrite()
    DomainStore(tenant_id, client).stage_delete(batch, domain, expected_version=domain.version)
    batch.zrem(keys.domains_pending(), f"{tenant_id} {domain.host}")
    stage_audit(batch, tenant_id, Actor.system(), "domain.expire", "domain", domain.host, {"status": "pending"},
                None)
    try:
        batch.execute(client)
    except (Conflict, NotFound):  # changed meanwhile (verified, released): the next run looks again
        return
