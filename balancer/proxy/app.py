"""One worker's proxy state and its background tasks: config watcher, sweeper, metrics flusher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from balancer.proxy.codec import AppCore, clock, set_max_hops
from balancer.proxy.config import Compiler, Snapshot
from balancer.proxy.metrics import Metrics
from balancer.proxy.router import Sticky
from balancer.proxy.settings import ProxySettings
from balancer.proxy.state import StateRegistry
from balancer.proxy.upstream import UpstreamPool
from veloflux_site.storage import keys

log = logging.getLogger("veloflux.proxy")
access = logging.getLogger("veloflux.proxy.access")

FULL_RELOAD_EVERY = 10.0


def async_client(url: str) -> aioredis.Redis:
    """The worker's asyncio Redis client: redis:// rediss:// unix:// or redis+sentinel://host:port[,..]/service[/db].

    Redis Cluster is not supported by the proxy: the routing snapshot is read in one MULTI across
    ``vf:routing:*`` keys, which a cluster would spread over several slots.
    """
    options = {"decode_responses": True, "socket_timeout": 2.0, "socket_connect_timeout": 1.0}
    parts = urlsplit(url)
    if parts.scheme == "redis+cluster":
        raise ValueError("the proxy needs a standalone or Sentinel Redis (REDIS_URL is redis+cluster://)")
    if parts.scheme != "redis+sentinel":
        return aioredis.from_url(url, **options)
    from redis.asyncio.sentinel import Sentinel

    hosts = []
    for hostport in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = hostport.partition(":")
        hosts.append((host, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    sentinel = Sentinel(hosts, sentinel_kwargs={"socket_timeout": 2.0}, **options)
    return sentinel.master_for(path[0], db=int(path[1]) if len(path) > 1 else 0, password=parts.password)


class ProxyApp(AppCore):
    """snapshot, upstreams, metrics, access_log and upstream_timeout are compiled fields (``AppCore``,
    csrc/state.c) that the hot path reads directly. Times are the proxy's clock (``codec.clock``)."""

    def __init__(self, settings: ProxySettings, loop: asyncio.AbstractEventLoop, worker: int = 0):
        self.settings = settings
        self.upstream_timeout = settings.upstream_timeout
        self.loop = loop
        self.worker = worker
        self.node_id = f"{settings.node_id}:w{worker}"
        self.registry = StateRegistry(settings.eject_after, settings.eject_base)
        self.compiler = Compiler(self.registry)
        self.snapshot = Snapshot()
        self.upstreams = UpstreamPool(loop, settings.max_idle_upstream, settings.upstream_idle_timeout,
                                      settings.connect_timeout, settings.policy, settings.max_upstream_per_tenant)
        set_max_hops(settings.max_hops)
        self.metrics = Metrics(self.node_id, self.registry)
        self.sticky = Sticky(settings.secret)
        self.connections: set = set()
        self.access_log = self._log_access if settings.access_log else None
        self.redis = async_client(settings.redis_url)
        self.redis_ok = False
        self.redis_error = ""
        self.loaded_at = 0.0  # epoch of the last successful load
        self.full_at = 0.0
        self.reloads = 0
        self.wake = asyncio.Event()
        self.certificates = None  # tls.CertStore when an HTTPS listener runs
        self.tasks: list[asyncio.Task] = []

    # --- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        try:
            await asyncio.wait_for(self.load_full(), 3.0)
        except (TimeoutError, RedisError, OSError) as exc:
            self._redis_down(exc)
        for coro in (self._watch_events(), self._reload_loop(), self._sweeper(), self._flusher()):
            self.tasks.append(self.loop.create_task(coro))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.metrics.flush(self.redis), 2.0)
        self.upstreams.close_all()
        await self.redis.aclose()

    # --- config -------------------------------------------------------------
    async def load_full(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.routing_version())
            pipe.hgetall(keys.routing_table())
            pipe.hgetall(keys.routing_health())
            if self.certificates is not None:
                pipe.hgetall(keys.tls_certificates())
            results = await pipe.execute()
        version, table, health = int(results[0] or 0), results[1], results[2]
        ai = await self._ai_choices(table)
        snapshot = self.compiler.compile(version, table, ai)
        self.registry.apply_health(health)
        self._install(snapshot)
        if self.certificates is not None:
            self.certificates.update(results[3])
        self.full_at = time.time()
        self._redis_up()

    async def _ai_choices(self, table: dict[str, str]) -> dict[tuple[str, str], str]:
        tenants = [t for t, raw in table.items() if '"adaptive"' in raw]
        if not tenants:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                pipe.hgetall(keys.pool_ai_algorithm(tenant))
            results = await pipe.execute()
        return {(tenant, pool): algo for tenant, choices in zip(tenants, results, strict=True)
                for pool, algo in choices.items()}

    def _install(self, snapshot: Snapshot) -> None:
        for pools in snapshot.pools_of_backend.values():
            for pool in pools:
                if pool.algorithm == "adaptive":
                    pool.balancer.use(snapshot.adaptive.get((pool.tenant_id, pool.name)))
        old, self.snapshot = self.snapshot, snapshot
        self.reloads += 1
        if old.version != snapshot.version:
            log.info("worker %s: routing table version %s installed (%d tenants)", self.worker, snapshot.version,
                     snapshot.tenants)

    async def poll(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.routing_version())
            pipe.hgetall(keys.routing_health())
            version, health = await pipe.execute()
        stale_ai = self.snapshot.has_adaptive and time.time() - self.full_at > 2
        if int(version or 0) != self.snapshot.version or stale_ai:
            await self.load_full()
            return
        self.registry.apply_health(health)
        self._redis_up()

    async def _reload_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), 1.0)
                woke = True
            except TimeoutError:
                woke = False
            self.wake.clear()
            try:
                if woke or time.time() - self.full_at > FULL_RELOAD_EVERY:
                    await self.load_full()
                else:
                    await self.poll()
            except (RedisError, OSError, ValueError) as exc:
                self._redis_down(exc)

    async def _watch_events(self) -> None:
        channels = [keys.events_channel("routing"), keys.events_channel("health"), keys.events_channel("tls")]
        health_channel = keys.events_channel("health")
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                self.wake.set()  # anything published while we were not listening
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    if message["channel"] == health_channel:
                        self._health_event(message["data"])
                    self.wake.set()
            except (RedisError, OSError) as exc:
                self._redis_down(exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _health_event(self, data: str) -> None:
        try:
            event = json.loads(data)
            backend_id, state = event["backend_id"], event.get("state")
        except (ValueError, KeyError, TypeError):
            return
        if state == "up":
            self.registry.backend_up(backend_id)
        elif state == "down":
            self.registry.get(backend_id).down = True

    def _redis_up(self) -> None:
        if not self.redis_ok:
            log.info("worker %s: Redis reachable, routing table version %s", self.worker, self.snapshot.version)
        self.redis_ok = True
        self.redis_error = ""
        self.loaded_at = time.time()

    def _redis_down(self, exc: BaseException) -> None:
        if self.redis_ok or not self.redis_error:
            log.warning("worker %s: Redis unreachable (%s); serving the last good routing table (version %s)",
                        self.worker, exc or type(exc).__name__, self.snapshot.version)
        self.redis_ok = False
        self.redis_error = str(exc) or type(exc).__name__

    # --- periodic work ------------------------------------------------------
    async def _sweeper(self) -> None:
        s = self.settings
        tick = max(0.05, min(0.5, s.header_timeout / 4, s.upstream_timeout / 4, s.idle_timeout / 4))
        last_pool_sweep = 0.0
        while True:
            await asyncio.sleep(tick)
            now = clock()
            for conn in list(self.connections):
                conn.check_timeouts(now)
            if now - last_pool_sweep > 1.0:
                self.upstreams.sweep(now)
                last_pool_sweep = now

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await asyncio.wait_for(self.metrics.flush(self.redis), 3.0)
            except (TimeoutError, RedisError, OSError) as exc:
                self._redis_down(exc)

    def _log_access(self, ex, elapsed: float) -> None:
        route = ex.route
        access.info(json.dumps({
            "ts": round(time.time(), 3), "request_id": ex.request_id, "client": ex.client.peer_ip,
            "method": ex.req.method.decode("latin-1"), "host": ex.req.host, "path": ex.req.path[:512],
            "status": ex.status, "tenant": route.tenant_id if route else None, "route": route.id if route else None,
            "backend": ex.backend.id if ex.backend else None, "ms": round(elapsed * 1000, 3),
            "bytes_in": ex.body_in, "bytes_out": ex.resp_bytes}))
