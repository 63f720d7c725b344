"""In-memory request metrics, flushed to Redis once a second in one pipeline (never per request).

Counts go out in numbered batches, applied by a script that skips a batch the tenant's counters already
hold: a flush whose reply is lost (timeout, dropped connection, cancelled task) is sent again as the same
batch, so usage is neither lost nor counted twice. Also written by the same pipeline: the proxy
heartbeat (``vf:heartbeat:proxy``) and the passive ejections this worker decided (``vf:routing:ejections``).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
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
MARKER_TTL = 24 * 3600  # a batch is re-sent within seconds; a day covers a long Redis outage

# One tenant's part of a batch (one hash slot). KEYS[1]: this process's marker for the tenant, KEYS[2..]:
# counters; ARGV: batch number, marker TTL, JSON [[key index, op, field or TTL, value], ...].
APPLY_BATCH = """
local seq = tonumber(ARGV[1])
if seq <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
for _, op in ipairs(cjson.decode(ARGV[3])) do
  local key = KEYS[op[1]]
  if op[2] == 'i' then redis.call('HINCRBY', key, op[3], op[4])
  elseif op[2] == 'f' then redis.call('HINCRBYFLOAT', key, op[3], op[4])
  else redis.call('EXPIRE', key, op[3]) end
end
redis.call('SET', KEYS[1], seq, 'EX', ARGV[2])
return 1
"""

Label = tuple[str, str, str, str]  # (tenant, route id, pool, backend id)


def add_series(target: dict, key, entry: list) -> None:
    """Adds one series' counts into ``target[key]`` (a copy of ``entry`` when the key is new)."""
    acc = target.get(key)
    if acc is None:
        target[key] = list(entry)
    else:
        for i, value in enumerate(entry):
            acc[i] += value


def add_all(target: dict, source: dict) -> None:
    """``add_series`` for every series of ``source``."""
    for key, entry in source.items():
        add_series(target, key, entry)


@dataclass
class Batch:
    """Counts taken from memory for one flush; kept, unchanged, until Redis has acknowledged them."""

    series: dict[Label, list]
    calls: list[tuple[list[str], list[str]]] = field(default_factory=list)  # per tenant: script keys, args


class Metrics(MetricsCore):
    """Counts per (route, backend). ``pending`` is a compiled field (``MetricsCore``, csrc/pools.c): the hot
    path adds each request to it in C."""

    def __init__(self, node_id: str, registry: StateRegistry):
        self.node_id = node_id
        self.registry = registry
        # counts since the last flush; a compiled Series reads as a sequence in the FIELDS + histogram layout
        self.pending: dict[tuple[Route, Backend | None], Series] = {}
        self.totals: dict[Label, list] = {}  # acknowledged by Redis
        self.outstanding: Batch | None = None  # sent, not acknowledged: sent again, as is, by the next flush
        # batch numbers are per process; the random part keeps a restarted process with the same pid apart
        self.stream = f"{node_id}:{secrets.token_hex(4)}"
        self.seq = 0
        self.flushes = 0
        self.flush_errors = 0
        self.failing = 0  # consecutive failed flushes
        self._script = None

    def record(self, route: Route, backend: Backend | None, status: int, bytes_in: int, bytes_out: int,
               elapsed_s: float, error: bool) -> None:
        record(self.pending, route, backend, status, bytes_in, bytes_out, elapsed_s, error)  # compiled

    @staticmethod
    def label(key: tuple[Route, Backend | None]) -> Label:
        route, backend = key
        return (route.tenant_id, route.id, route.pool.name if route.pool is not None else "",
                backend.id if backend is not None else "")

    def labelled(self, series: dict[tuple[Route, Backend | None], Series]) -> dict[Label, list]:
        """Series keyed by (tenant, route id, pool, backend id); routes of an old snapshot merge into the new ones."""
        out: dict[Label, list] = {}
        for key, entry in series.items():
            add_series(out, self.label(key), entry)
        return out

    def unacknowledged(self) -> dict[Label, list]:
        """Counts not yet in Redis for sure: in memory, plus the batch awaiting Redis's reply."""
        out = self.labelled(self.pending)
        if self.outstanding is not None:
            add_all(out, self.outstanding.series)
        return out

    # --- flush --------------------------------------------------------------
    def _take_batch(self, now: float) -> Batch | None:
        series = self.labelled(self.pending)
        self.pending = {}
        if not series:
            return None
        self.seq += 1
        batch = Batch(series)
        for tenant, (counters, ops) in tenant_increments(series, now).items():
            marker = keys.tenant_metrics_flushed(tenant, self.stream)
            batch.calls.append(([marker, *counters], [str(self.seq), str(MARKER_TTL), json.dumps(ops)]))
        return batch

    async def flush(self, redis) -> None:
        """Sends the batch a failed flush left, if any, then the counts since the last flush. Safe when
        cancelled: what was taken from memory stays outstanding."""
        retried = self.outstanding is not None
        try:
            await self._send(redis)
            if retried:  # then the counts gathered while that batch waited
                await self._send(redis)
        except Exception as exc:  # Redis down or the reply lost: the same batch goes again next time
            self.flush_errors += 1
            self.failing += 1
            if self.failing == 1 or self.failing % 60 == 0:
                held = len(self.outstanding.series) if self.outstanding else 0
                log.warning("metrics flush failed %d time(s) in a row (%s); a batch of %d series is kept for the "
                            "next try", self.failing, exc, held)
            return
        if self.failing:
            log.info("metrics flush works again after %d failure(s)", self.failing)
            self.failing = 0
        self.flushes += 1

    async def _send(self, redis) -> None:
        """One pipeline: the outstanding batch (taken from memory first if there is none), ejections, heartbeat."""
        now = time.time()
        if self.outstanding is None:
            self.outstanding = self._take_batch(now)
        batch = self.outstanding
        if self._script is None:
            self._script = redis.register_script(APPLY_BATCH)
        ejections, self.registry.pending_ejections = self.registry.pending_ejections, []
        restores, self.registry.pending_restores = self.registry.pending_restores, []
        pipe = redis.pipeline(transaction=False)
        for script_keys, args in batch.calls if batch else ():
            await self._script(keys=script_keys, args=args, client=pipe)  # queued: the pipeline is awaitable
        for backend_id, until, reason in ejections:
            pipe.hset(keys.passive_ejections(), backend_id,
                      json.dumps({"node": self.node_id, "until": round(until, 3), "reason": reason}))
        for backend_id in restores:
            pipe.hdel(keys.passive_ejections(), backend_id)
        pipe.zadd(keys.heartbeat("proxy"), {self.node_id: now})
        acknowledged = False
        try:
            await pipe.execute()
            acknowledged = True
        finally:
            if not acknowledged:  # failed or cancelled: ejections go again, idempotent like the batch
                self.registry.pending_ejections[:0] = ejections
                self.registry.pending_restores[:0] = restores
        if batch is not None:
            add_all(self.totals, batch.series)
            self.outstanding = None


def tenant_increments(series: dict[Label, list], now: float) -> dict[str, tuple[list[str], list]]:
    """Per tenant: its counter keys and the operations on them ([key index, op, field, value], the index
    counting from 2 because the script's KEYS[1] is the batch marker). One tenant's keys share a hash slot."""
    minute = str(int(now // 60))
    month = time.strftime("%Y-%m", time.gmtime(now))
    per_key: dict[str, dict[str, list]] = {}
    usage: dict[str, list] = {}
    for (tenant, route_id, pool, backend_id), entry in series.items():
        targets = [keys.tenant_metrics(tenant, "total"), keys.tenant_metrics(tenant, f"m:{minute}"),
                   keys.tenant_metrics(tenant, f"route:{route_id}")]
        if pool:
            targets.append(keys.tenant_metrics(tenant, f"pool:{pool}"))
        if backend_id:
            targets.append(keys.tenant_metrics(tenant, f"backend:{backend_id}"))
        for target in targets:
            add_series(per_key.setdefault(tenant, {}), target, entry)
        u = usage.setdefault(tenant, [0, 0, 0])
        u[0] += entry[0]
        u[1] += entry[6]
        u[2] += entry[7]
    out: dict[str, tuple[list[str], list]] = {}
    for tenant, counters in per_key.items():
        key_list: list[str] = []
        ops: list = []
        for target, acc in counters.items():
            key_list.append(target)
            ops += counter_ops(len(key_list) + 1, target, acc)
        key_list.append(keys.tenant_usage(tenant, month))
        requests, bytes_in, bytes_out = usage[tenant]
        ops += [[len(key_list) + 1, "i", name, str(value)]
                for name, value in (("requests", requests), ("bytes_in", bytes_in), ("bytes_out", bytes_out)) if value]
        out[tenant] = (key_list, ops)
    return out


def counter_ops(index: int, target: str, acc: list) -> list:
    """The operations on one counter hash: fields that moved, Prometheus-style cumulative buckets on a backend's
    hash (``le_<ms>``: requests at most that slow), and the TTL of a per-minute hash."""
    detailed = ":backend:" in target
    ops = []
    for i, name in enumerate(FIELDS):
        if acc[i] and (detailed or name != "errors"):
            if name == "latency_ms_sum":
                ops.append([index, "f", name, str(round(acc[i], 3))])
            else:
                ops.append([index, "i", name, str(acc[i])])
    if detailed:
        cumulative = 0
        for b, bound in enumerate((*BUCKETS_MS, "inf")):
            cumulative += acc[N_FIELDS + b]
            if cumulative:
                ops.append([index, "i", f"le_{bound}", str(cumulative)])
    if ":m:" in target:
        ops.append([index, "e", MINUTE_TTL])
    return ops
