"""Sweeps: one unit of work (``sweep_once``) and the long-running sweeper (``HealthSweeper``).

Why a long-running sweeper process (``python manage.py runhealthchecks``) and not a beat
task per round: checks are due at any millisecond, and "within 1 s of the due time" for
thousands of backends needs a loop that claims every ~50 ms and keeps probes in flight
while it claims the next ones. A Celery beat tick (1 s at best, plus broker and prefork
hand-off) would spend the whole budget on scheduling, and a task that loops forever
would fight the task time limit and ``acks_late``. Any number of sweepers may run: claims
are atomic, so they share the work (one sweeper carries 10,000 backends at 5 s on about half
a core; see bench/healthchecks). The Celery task
``balancer.tasks.health_sweep`` (every second from beat) is the safety net: it calls
``sweep_once`` for backends overdue by ``SAFETY_NET_LATENESS`` seconds, so checks still
happen, late, when no sweeper runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis

from balancer.health import alerts
from balancer.health.probe import ProbeEngine, ProbeResult, probe_claims, probe_tag
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
    """The long-running sweeper. Three loops share one event loop:

    - the probe pump (every ``tick``): fails probes past their deadline and starts the claimed
      probes whose due time has come, at most ``concurrency`` in flight, paced by a token bucket
      (``max_start_rate`` per second), so that even a backlog leaves as a stream: a burst of
      hundreds of connects costs far more latency than the same probes spread out;
    - the claim loop (every ``claim_every``): syncs the table when its version moves, claims what
      is due within ``lookahead`` (so a slow round trip never makes a probe late), mirrors passive
      ejections and beats ``keys.heartbeat("worker")``;
    - the record loop (every ``claim_every``): records finished results in batches and evaluates
      alerts for tenants whose backends went into or out of ``down``.
    The claim and record loops run their Redis calls in one helper thread each, so Redis round
    trips never stall the probes, and a long record batch never delays the next claim.
    """

    def __init__(self, client: redis.Redis | None = None, worker_id: str | None = None,
                 batch_size: int = DEFAULT_BATCH, concurrency: int = DEFAULT_CONCURRENCY, tick: float = 0.005,
                 claim_every: float = 0.05, lookahead: float = 1.0, max_waiting: int = 20_000,
                 max_start_rate: float = 5000.0,
                 sync_every: float = 0.2, alert_every: float = 0.5) -> None:
        self.client = client or get_redis()
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.tick = tick
        self.claim_every = claim_every
        self.lookahead = lookahead
        self.max_waiting = max_waiting
        self.max_start_rate = max_start_rate
        self.sync_every = sync_every
        self.alert_every = alert_every
        self.cache = FragmentCache()
        self.engine: ProbeEngine | None = None
        self.waiting: list[tuple[float, int, Claim]] = []
        self.finished: list[tuple[Claim, ProbeResult]] = []
        self.alert_tenants: set[str] = set()
        self.totals = {"claimed": 0, "recorded": 0, "transitions": 0, "errors": 0}
        self._sequence = 0
        self._start_budget = 0.0
        self._budget_at = time.monotonic()
        self._claim_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vf-health-claim")
        self._record_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vf-health-record")

    @property
    def in_flight(self) -> int:
        return self.engine.in_flight if self.engine is not None else 0

    @staticmethod
    async def _redis(thread: ThreadPoolExecutor, function, *args):
        return await asyncio.get_running_loop().run_in_executor(thread, function, *args)

    # --- probe pump ------------------------------------------------------------------------
    def _start_due_probes(self, now: float) -> None:
        clock = time.monotonic()
        self._start_budget = min(self.max_start_rate * 0.02,
                                 self._start_budget + (clock - self._budget_at) * self.max_start_rate)
        self._budget_at = clock
        while (self.waiting and self.waiting[0][0] <= now and self._start_budget >= 1
               and self.in_flight < self.concurrency):
            self._start_budget -= 1
            claim = heapq.heappop(self.waiting)[2]
            self.engine.start(claim.target.address, claim.target.check, probe_tag(claim),
                              lambda result, claim=claim: self.finished.append((claim, result)))

    async def _pump(self, running: asyncio.Event) -> None:
        while running.is_set():
            self.engine.expire()
            self._start_due_probes(time.time())
            await asyncio.sleep(self.tick)

    # --- Redis loop --------------------------------------------------------------------------
    def _claim(self, now: float) -> list[Claim]:
        room = min(self.batch_size, self.max_waiting - len(self.waiting))
        if room <= 0:
            return []
        return claim_due(self.client, self.worker_id, room, now=now + self.lookahead)

    def _record(self, batch: list[tuple[Claim, ProbeResult]]) -> list[Transition]:
        recorded, transitions = record_results(self.client, batch)
        self.totals["recorded"] += recorded
        self.totals["transitions"] += len(transitions)
        return transitions

    async def _flush(self) -> None:
        while self.finished:
            batch, self.finished = self.finished[:self.batch_size], self.finished[self.batch_size:]
            transitions = await self._redis(self._record_thread, self._record, batch)
            self.alert_tenants |= alert_relevant_tenants(transitions)

    async def _claim_round(self, now: float, last: dict[str, float]) -> None:
        if now - last["sync"] >= self.sync_every:
            await self._redis(self._claim_thread, lambda: sync_targets(self.client, cache=self.cache))
            last["sync"] = now
        if now - last["beat"] >= 2.0:
            await self._redis(self._claim_thread, self.client.zadd, keys.heartbeat("worker"), {self.worker_id: now})
            last["beat"] = now
        if now - last["ejections"] >= 1.0:
            await self._redis(self._claim_thread, mirror_passive_ejections, self.client, now)
            last["ejections"] = now
        for claim in await self._redis(self._claim_thread, self._claim, now):
            self._sequence += 1
            heapq.heappush(self.waiting, (claim.due, self._sequence, claim))
            self.totals["claimed"] += 1

    async def _record_round(self, now: float, last: dict[str, float]) -> None:
        await self._flush()
        if self.alert_tenants and now - last["alerts"] >= self.alert_every:
            tenants, self.alert_tenants = sorted(self.alert_tenants), set()
            await self._redis(self._record_thread, alerts.evaluate_health_alerts, self.client, tenants)
            last["alerts"] = now

    async def _every(self, step, running: asyncio.Event) -> None:
        """Run ``step(now, last)`` every ``claim_every`` seconds while running; Redis errors wait and retry."""
        last = dict.fromkeys(("sync", "beat", "ejections", "alerts"), 0.0)
        while running.is_set():
            started = time.monotonic()
            try:
                await step(time.time(), last)
            except redis.RedisError as exc:
                self.totals["errors"] += 1
                log.warning("health sweeper: Redis error (%s); retrying", exc)
                await asyncio.sleep(0.5)
            await asyncio.sleep(max(0.0, self.claim_every - (time.monotonic() - started)))

    async def run(self, stop: asyncio.Event, duration: float | None = None) -> dict:
        self.engine = ProbeEngine(asyncio.get_running_loop())
        running = asyncio.Event()
        running.set()
        loops = [asyncio.create_task(self._pump(running)),
                 asyncio.create_task(self._every(self._claim_round, running)),
                 asyncio.create_task(self._every(self._record_round, running))]
        try:
            if duration is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), duration)
        finally:
            running.clear()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._drain()
            self._claim_thread.shutdown(wait=True)
            self._record_thread.shutdown(wait=True)
        return self.totals

    async def _drain(self) -> None:
        """Stop claiming; give back the claims not started; let in-flight probes finish (each is bounded
        by its timeout) and record them."""
        give_up = time.monotonic() + 30
        while self.in_flight and time.monotonic() < give_up:
            self.engine.expire()
            await asyncio.sleep(self.tick)
        try:
            thread = self._record_thread
            await self._redis(thread, release_claims, self.client, [claim for _, _, claim in self.waiting])
            self.waiting.clear()
            await self._flush()
            if self.alert_tenants:
                await self._redis(thread, alerts.evaluate_health_alerts, self.client, sorted(self.alert_tenants))
            await self._redis(thread, self.client.zrem, keys.heartbeat("worker"), self.worker_id)
        except redis.RedisError as exc:
            log.warning("health sweeper: could not record the last results (%s); their claims will expire", exc)
