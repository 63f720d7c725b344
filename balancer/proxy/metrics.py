"""In-memory request metrics, flushed to Redis once a second in one pipeline (never per request).

Also written by the same pipeline: the proxy heartbeat (``vf:heartbeat:proxy``) and the passive
ejections this worker decided (``vf:routing:ejections``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

from balancer.proxy.codec import MetricsCore, Series, record
from veloflux_site.storage import keys

if TYPE_CHECKING:
    from balancer.proxy.config import Backend, Route
    from balancer.proxy.state import StateRegistry

log = logging.getLogger("veloflux.proxy")

BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
FIELDS = ("requests", "responses_1xx", "responses_2xx", "responses_3xx", "responses_4xx", "responses_5xx",
          "bytes_in", "bytes_out", "latency_ms_sum", "errors")
N_FIELDS = len(FIELDS)
N_SLOTS = N_FIELDS + len(BUCKETS_MS) + 1  # + histogram (last = +Inf); csrc/hot.h's VF_N_SLOTS
MINUTE_TTL = 48 * 3600


def add_series(target: dict, key, entry: list) -> None:
    """Adds one series' counts into ``target[key]`` (a copy of ``entry`` when the key is new)."""
    acc = target.get(key)
    if acc is None:
        target[key] = list(entry)
    else:
        for i, value in enumerate(entry):
            acc[i] += value


class Metrics(MetricsCore):
    """Counts per (route, backend). ``pending`` is a compiled field (``MetricsCore``, csrc/pools.c): the hot
    path adds each request to it in C."""

    def __init__(self, node_id: str, registry: StateRegistry):
        self.node_id = node_id
        self.registry = registry
        # counts since the last flush; a compiled Series reads as a sequence in the FIELDS + histogram layout
        self.pending: dict[tuple[Route, Backend | None], Series] = {}
        self.totals: dict[tuple[str, str, str, str], list] = {}  # (tenant, route id, pool, backend id) -> flushed
        self.unflushed: dict[tuple[str, str, str, str], list] = {}  # kept from failed flushes
        self.flushes = 0
        self.flush_errors = 0
        self.failing = 0  # consecutive failed flushes

    def record(self, route: Route, backend: Backend | None, status: int, bytes_in: int, bytes_out: int,
               elapsed_s: float, error: bool) -> None:
        record(self.pending, route, backend, status, bytes_in, bytes_out, elapsed_s, error)  # compiled

    @staticmethod
    def label(key: tuple[Route, Backend | None]) -> tuple[str, str, str, str]:
        route, backend = key
        return (route.tenant_id, route.id, route.pool.name if route.pool is not None else "",
                backend.id if backend is not None else "")

    def labelled(self, series: dict[tuple[Route, Backend | None], Series]) -> dict[tuple[str, str, str, str], list]:
        """Series keyed by (tenant, route id, pool, backend id); routes of an old snapshot merge into the new ones."""
        out: dict[tuple[str, str, str, str], list] = {}
        for key, entry in series.items():
            add_series(out, self.label(key), entry)
        return out

    # --- flush --------------------------------------------------------------
    async def flush(self, redis) -> None:
        pending = self.labelled(self.pending)
        self.pending = {}
        unflushed, self.unflushed = self.unflushed, {}
        for label, entry in unflushed.items():
            add_series(pending, label, entry)
        ejections, self.registry.pending_ejections = self.registry.pending_ejections, []
        restores, self.registry.pending_restores = self.registry.pending_restores, []
        now = time.time()
        pipe = redis.pipeline(transaction=False)
        self._write(pipe, pending, now)
        for backend_id, until, reason in ejections:
            pipe.hset(keys.passive_ejections(), backend_id,
                      json.dumps({"node": self.node_id, "until": round(until, 3), "reason": reason}))
        for backend_id in restores:
            pipe.hdel(keys.passive_ejections(), backend_id)
        pipe.zadd(keys.heartbeat("proxy"), {self.node_id: now})
        try:
            await pipe.execute()
        except Exception as exc:  # Redis down: keep the counts for the next flush
            self.flush_errors += 1
            self.failing += 1
            for label, entry in pending.items():  # kept under their labels for the next flush
                add_series(self.unflushed, label, entry)
            self.registry.pending_ejections[:0] = ejections
            self.registry.pending_restores[:0] = restores
            if self.failing == 1 or self.failing % 60 == 0:
                log.warning("metrics flush failed %d time(s) in a row (%s); %d series kept for the next try",
                            self.failing, exc, len(self.unflushed))
            return
        if self.failing:
            log.info("metrics flush works again after %d failure(s)", self.failing)
            self.failing = 0
        self.flushes += 1
        for label, entry in pending.items():
            add_series(self.totals, label, entry)

    @staticmethod
    def _write(pipe, pending: dict, now: float) -> None:
        minute = str(int(now // 60))
        month = time.strftime("%Y-%m", time.gmtime(now))
        per_key: dict[str, list] = {}
        usage: dict[str, list] = {}
        for (tenant, route_id, pool, backend_id), entry in pending.items():
            targets = [keys.tenant_metrics(tenant, "total"), keys.tenant_metrics(tenant, f"m:{minute}"),
                       keys.tenant_metrics(tenant, f"route:{route_id}")]
            if pool:
                targets.append(keys.tenant_metrics(tenant, f"pool:{pool}"))
            if backend_id:
                targets.append(keys.tenant_metrics(tenant, f"backend:{backend_id}"))
            for target in targets:
                add_series(per_key, target, entry)
            u = usage.setdefault(tenant, [0, 0, 0])
            u[0] += entry[0]
            u[1] += entry[6]
            u[2] += entry[7]
        for target, acc in per_key.items():
            detailed = ":backend:" in target
            for i, name in enumerate(FIELDS):
                if name == "errors" and not detailed:
                    continue
                if acc[i]:
                    if name == "latency_ms_sum":
                        pipe.hincrbyfloat(target, name, round(acc[i], 3))
                    else:
                        pipe.hincrby(target, name, acc[i])
            if detailed:  # cumulative Prometheus-style buckets: le_<ms> counts requests at most that slow
                cumulative = 0
                for b, bound in enumerate((*BUCKETS_MS, "inf")):
                    cumulative += acc[N_FIELDS + b]
                    if cumulative:
                        pipe.hincrby(target, f"le_{bound}", cumulative)
            if ":m:" in target:
                pipe.expire(target, MINUTE_TTL)
        for tenant, (requests, bytes_in, bytes_out) in usage.items():
            key = keys.tenant_usage(tenant, month)
            pipe.hincrby(key, "requests", requests)
            if bytes_in:
                pipe.hincrby(key, "bytes_in", bytes_in)
            if bytes_out:
                pipe.hincrby(key, "bytes_out", bytes_out)
