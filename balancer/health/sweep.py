"""Sweeps: one unit of work (``sweep_once``) and the long-running sweeper (``HealthSweeper``).

Why a long-running sweeper process (``python manage.py runhealthchecks``) and not a beat
task per round: checks are due at any millisecond, and "within 1 s of the due time" for
thousands of backends needs a loop that claims every ~50 ms and keeps probes in flight
while it claims the next ones. A Celery beat tick (1 s at best, plus broker and prefork
hand-off) would spend the whole budget on scheduling, and a task that loops forever
would fight the task time limit and ``acks_late``. Any number of sweepers may run (one
per host is plenty): claims are atomic, so they share the work. The Celery task
``balancer.tasks.health_sweep`` (every second from beat) is the safety net: it calls
``sweep_once`` for backends overdue by ``SAFETY_NET_LATENESS`` seconds, so checks still
happen, late, when no sweeper runs.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import socket
import time
from dataclasses import dataclass, field

import redis

from balancer.health import alerts
from balancer.health.probe import ProbeResult, probe, probe_claims, probe_tag
from balancer.health.scheduler import Claim, FragmentCache, SyncReport, claim_due, release_claims, sync_targets
from balancer.health.state import Transition, mirror_passive_ejections, record_results
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

log = logging.getLogger("veloflux.health")

SAFETY_NET_LATENESS = 2.0
DEFAULT_BATCH = 500
DEFAULT_CONCURRENCY = 1000


def default_worker_id(kind: str = "health-sweeper") -> str:
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


@dataclass
class SweepReport:
    claimed: int = 0
    recorded: int = 0
    transitions: list[Transition] = field(default_factory=list)
    sync: SyncReport | None = None


def alert_relevant_tenants(transitions: list[Transition]) -> set[str]:
    """Tenants whose alerts a transition may change: only moves into or out of ``down`` do
    (``unknown`` -> ``up``, every backend's first result, cannot open or resolve anything)."""
    return {t.tenant_id for t in transitions if "down" in (t.state, t.previous)}


def after_transitions(client: redis.Redis, transitions: list[Transition]) -> None:
    """Alerts follow transitions at once (the periodic evaluation catches anything missed)."""
    tenants = sorted(alert_relevant_tenants(transitions))
    if tenants:
        try:
            alerts.evaluate_health_alerts(client, tenants)
        except (redis.RedisError, ValueError):
            log.exception("alert evaluation after %d transitions failed", len(transitions))


def sweep_once(client: redis.Redis | None = None, worker_id: str | None = None, limit: int = DEFAULT_BATCH,
               concurrency: int = DEFAULT_CONCURRENCY, min_lateness: float = 0.0, sync: bool = True) -> SweepReport:
    """One unit of work: sync targets if the table changed, claim due backends atomically,
    probe them concurrently (at most ``concurrency`` at a time), record the results."""
    client = client or get_redis()
    report = SweepReport()
    if sync:
        report.sync = sync_targets(client)
    claims = claim_due(client, worker_id or default_worker_id("sweep"), limit, min_lateness=min_lateness)
    report.claimed = len(claims)
    if claims:
        results = asyncio.run(probe_claims(claims, concurrency))
        report.recorded, report.transitions = record_results(client, results)
        after_transitions(client, report.transitions)
    return report


class HealthSweeper:
    """The long-running sweeper: claims what is due (with a small look-ahead) every ``claim_every``
    seconds, starts each probe at its due time, paced (at most ``max_start_rate`` per second)
    so that probes never leave in bursts (a burst of hundreds of connects costs far
    more latency than the same probes spread out), keeps at most ``concurrency`` in flight,
    records finished results in batches, syncs the table when its version moves, mirrors
    passive ejections, and beats ``keys.heartbeat("worker")``."""

    def __init__(self, client: redis.Redis | None = None, worker_id: str | None = None,
                 batch_size: int = DEFAULT_BATCH, concurrency: int = DEFAULT_CONCURRENCY, tick: float = 0.005,
                 claim_every: float = 0.05, lookahead: float = 0.1, max_start_rate: float = 5000.0,
                 sync_every: float = 0.2) -> None:
        self.client = client or get_redis()
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.tick = tick
        self.claim_every = claim_every
        self.lookahead = lookahead
        self.max_start_rate = max_start_rate
        self._start_budget = 0.0
        self._budget_at = time.monotonic()
        self.sync_every = sync_every
        self.cache = FragmentCache()
        self.waiting: list[tuple[float, int, Claim]] = []
        self.in_flight: set[asyncio.Task] = set()
        self.finished: list[tuple[Claim, ProbeResult]] = []
        self.totals = {"claimed": 0, "recorded": 0, "transitions": 0, "errors": 0}
        self._sequence = 0
        self.alert_tenants: set[str] = set()
        self.alert_every = 0.5

    async def _probe(self, claim: Claim) -> None:
        result = await probe(claim.target.address, claim.target.check, probe_tag(claim))
        self.finished.append((claim, result))

    def _flush(self) -> None:
        while self.finished:
            batch, self.finished = self.finished[:self.batch_size], self.finished[self.batch_size:]
            recorded, transitions = record_results(self.client, batch)
            self.totals["recorded"] += recorded
            self.totals["transitions"] += len(transitions)
            self.alert_tenants |= alert_relevant_tenants(transitions)

    def _heartbeat(self, now: float) -> None:
        self.client.zadd(keys.heartbeat("worker"), {self.worker_id: now})

    def _claim(self, now: float) -> None:
        room = min(self.batch_size, self.concurrency - len(self.in_flight) - len(self.waiting))
        if room <= 0:
            return
        claims = claim_due(self.client, self.worker_id, room, now=now + self.lookahead)
        self.totals["claimed"] += len(claims)
        for claim in claims:
            self._sequence += 1
            heapq.heappush(self.waiting, (claim.due, self._sequence, claim))

    def _start_due_probes(self, now: float) -> None:
        """Start the probes that are due, within a token bucket of ``max_start_rate`` per second
        (at most 20 ms worth at once), so that even a backlog leaves as a stream, not a burst."""
        clock = time.monotonic()
        self._start_budget = min(self.max_start_rate * 0.02,
                                 self._start_budget + (clock - self._budget_at) * self.max_start_rate)
        self._budget_at = clock
        while (self.waiting and self.waiting[0][0] <= now and self._start_budget >= 1
               and len(self.in_flight) < self.concurrency):
            self._start_budget -= 1
            claim = heapq.heappop(self.waiting)[2]
            task = asyncio.create_task(self._probe(claim))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def run(self, stop: asyncio.Event, duration: float | None = None) -> dict:
        deadline = None if duration is None else time.monotonic() + duration
        last_sync = last_beat = last_ejections = last_claim = last_flush = last_alerts = 0.0
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            now = time.time()
            try:
                if now - last_sync >= self.sync_every:
                    sync_targets(self.client, cache=self.cache)
                    last_sync = now
                if now - last_beat >= 2.0:
                    self._heartbeat(now)
                    last_beat = now
                if now - last_ejections >= 1.0:
                    mirror_passive_ejections(self.client, now)
                    last_ejections = now
                if now - last_claim >= self.claim_every:
                    self._claim(now)
                    last_claim = now
                self._start_due_probes(time.time())
                if len(self.finished) >= self.batch_size or (self.finished and now - last_flush >= self.claim_every):
                    self._flush()
                    last_flush = now
                if self.alert_tenants and now - last_alerts >= self.alert_every:
                    tenants, self.alert_tenants = sorted(self.alert_tenants), set()
                    alerts.evaluate_health_alerts(self.client, tenants)
                    last_alerts = now
            except redis.RedisError as exc:
                self.totals["errors"] += 1
                log.warning("health sweeper: Redis error (%s); retrying", exc)
                await asyncio.sleep(0.5)
            await asyncio.sleep(self.tick)
        await self._drain()
        return self.totals

    async def _drain(self) -> None:
        """Stop claiming; give back the claims not started; let in-flight probes finish (each is bounded
        by its timeout) and record them."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=30)
        try:
            release_claims(self.client, [claim for _, _, claim in self.waiting])
            self.waiting.clear()
            self._flush()
            if self.alert_tenants:
                alerts.evaluate_health_alerts(self.client, sorted(self.alert_tenants))
            self.client.zrem(keys.heartbeat("worker"), self.worker_id)
        except redis.RedisError as exc:
            log.warning("health sweeper: could not record the last results (%s); their claims will expire", exc)
