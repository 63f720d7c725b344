"""A tenant's lifecycle reaches the apps that keep data about it, without tenants importing them.

tenants sits at the bottom of the apps (docs/architecture.md): it may not call balancer or
billing. When a tenant is suspended, reactivated or deleted, every app that keeps data about it
has a part to play (balancer: recompile or remove the tenant's routing fragment and host claims).
Each app registers a *stager* for the events it cares about at startup (its AppConfig.ready);
tenants stages every registered part into the SAME AtomicWrite as the tenant's own change, so the
change and its consequences commit together or not at all: no window where a deleted tenant still
routes, nothing to replay after a crash.

A stager reads what it needs and stages writes and guards; it never executes. A guard of its own
may lose a race to a concurrent writer: the app registers that Conflict message as a race, and
the whole change is prepared again from fresh reads (``run``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tenants.audit import Actor
from tenants.models import Tenant
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.repository import retry_on_race

T = TypeVar("T")
# (batch, the tenant as it will be after the change, who changes it, the Redis client it reads with)
Stager = Callable[[AtomicWrite, Tenant, Actor, Any], None]

STATUS_CHANGED = "tenant.status_changed"  # suspended or reactivated (``active`` flipped)
DELETED = "tenant.deleted"
EVENTS = (STATUS_CHANGED, DELETED)
MAX_ATTEMPTS = 60

_stagers: dict[str, list[Stager]] = {event: [] for event in EVENTS}
_races: set[str] = set()


def register(event: str, stager: Stager, *, races: tuple[str, ...] = ()) -> None:
    """Called from an AppConfig.ready. Registering the same stager twice keeps one."""
    if event not in _stagers:
        raise ValueError(f"unknown tenant lifecycle event {event!r}; one of {', '.join(EVENTS)}")
    if stager not in _stagers[event]:
        _stagers[event].append(stager)
    _races.update(races)


def stage(event: str, batch: AtomicWrite, tenant: Tenant, actor: Actor, client: Any) -> None:
    """Stage every registered app's part of ``event`` into ``batch``, in registration order."""
    for stager in _stagers[event]:
        stager(batch, tenant, actor, client)


def run(attempt_once: Callable[[], T]) -> T:
    """Run a read-stage-execute attempt again while an app's guard lost a registered race."""
    return retry_on_race(attempt_once, lambda exc: str(exc) in _races, MAX_ATTEMPTS)
