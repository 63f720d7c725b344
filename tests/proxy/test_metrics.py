"""Metrics: aggregated in memory, flushed to the contract's Redis keys once a second; Prometheus text."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from balancer.proxy.app import async_client
from balancer.proxy.codec import clock
from balancer.proxy.config import Backend, Pool, Route
from balancer.proxy.metrics import Metrics
from balancer.proxy.state import StateRegistry
from tests.proxy.support import get, simple_site
from tests.support.aio import run
from tests.support.assertions import eventually
from tests.support.lossy_link import LossyLink
from tests.support.redis_server import RedisServer
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def _wait_for(key: str, field: str, value: int, timeout: float = 5.0) -> dict:
    eventually(lambda: int(get_redis().hget(key, field) or 0) >= value, timeout, every=0.1)
    return get_redis().hgetall(key)


def test_it_flushes_per_tenant_route_pool_and_backend_metrics_to_redis(proxy, farm):
    one = farm.start("one")
    tenant, host, specs = simple_site(proxy, [one])
    for _ in range(5):
        assert get(proxy, host, "/echo", method="POST", body=b"12345")[0] == 200
    for _ in range(3):
        assert get(proxy, host, "/status/404")[0] == 404
    assert get(proxy, host, "/status/503")[0] == 503
    total = _wait_for(keys.tenant_metrics(tenant, "total"), "requests", 9)
    assert int(total["requests"]) == 9 and int(total["responses_2xx"]) == 5
    assert int(total["responses_4xx"]) == 3 and int(total["responses_5xx"]) == 1
    assert int(total["bytes_in"]) == 25 and int(total["bytes_out"]) > 25 and float(total["latency_ms_sum"]) > 0
    backend_metrics = get_redis().hgetall(keys.tenant_metrics(tenant, f"backend:{specs[0]['id']}"))
    assert int(backend_metrics["requests"]) == 9 and int(backend_metrics["errors"]) == 1
    assert int(backend_metrics["le_inf"]) == 9
    assert get_redis().hgetall(keys.tenant_metrics(tenant, "pool:web"))["requests"] == "9"
    minute = [k for k in get_redis().scan_iter(keys.tenant_metrics(tenant, "m:*"))]
    assert minute and 0 < get_redis().ttl(minute[0]) <= 48 * 3600
    usage = get_redis().hgetall(keys.tenant_usage(tenant, time.strftime("%Y-%m", time.gmtime())))
    assert int(usage["requests"]) == 9 and int(usage["bytes_in"]) == 25
    assert get_redis().zscore(keys.heartbeat("proxy"), proxy.status()["node"]) > time.time() - 5


def test_it_exposes_prometheus_text_on_the_admin_endpoint(proxy, farm):
    one = farm.start("one")
    tenant, host, specs = simple_site(proxy, [one])
    for _ in range(4):
        get(proxy, host)
    text = proxy.metrics_text()
    labels = f'tenant="{tenant}"'
    lines = [line for line in text.splitlines() if line.startswith("veloflux_proxy_requests_total{") and labels in line]
    assert lines and lines[0].endswith(" 4") and f'backend="{specs[0]["id"]}"' in lines[0]
    assert any(line.startswith("veloflux_proxy_latency_ms_bucket{") and labels in line and 'le="+Inf"} 4' in line
               for line in text.splitlines())
    assert "veloflux_proxy_redis_up 1" in text


def test_it_writes_a_structured_json_access_log_when_asked(redis_server, farm):
    import json as json_lib

    from tests.proxy.support import ProxyProcess

    one = farm.start("one")
    logged = ProxyProcess(redis_server.url, "--access-log").start()
    try:
        tenant, host, specs = simple_site(logged, [one])
        assert get(logged, host, "/logged?q=1", headers={"X-Request-ID": "log-me-1"})[0] == 200

        def logged_entry() -> dict | None:
            for line in logged.log_path.read_text().splitlines():
                if "log-me-1" in line:
                    return json_lib.loads(line[line.index("{"):])
            return None

        entry = eventually(logged_entry)
        assert entry["status"] == 200 and entry["tenant"] == tenant and entry["backend"] == specs[0]["id"]
        assert entry["path"] == "/logged?q=1" and entry["method"] == "GET" and entry["ms"] >= 0
    finally:
        logged.stop()


def _one_route(tenant: str) -> tuple[Metrics, Route, Backend]:
    registry = StateRegistry(eject_after=5, eject_base=1.0)
    backend = Backend({"id": "be_1", "address": "127.0.0.1:9"}, registry.get("be_1"))
    route = Route(tenant, {"id": "rt_1", "host": "m.test"}, Pool(tenant, "web", "round_robin", False, [backend]), True)
    return Metrics("node-1", registry), route, backend


def _requests_in_redis(tenant: str) -> tuple[int, int]:
    """(requests in the tenant's total, requests in its usage for this month)."""
    total = get_redis().hget(keys.tenant_metrics(tenant, "total"), "requests")
    usage = get_redis().hget(keys.tenant_usage(tenant, time.strftime("%Y-%m", time.gmtime())), "requests")
    return int(total or 0), int(usage or 0)


@contextlib.asynccontextmanager
async def _lossy_and_direct_clients(redis_server, mode: str) -> AsyncIterator[tuple[LossyLink, Redis, Redis]]:
    """A proxy Redis client through a link that loses the flush's pipeline (the one holding the heartbeat's
    ZADD) in ``mode``, and one straight to the server."""
    link = await LossyLink(redis_server.port, b"ZADD", mode).start()
    lossy, direct = async_client(link.url), async_client(redis_server.url)
    try:
        yield link, lossy, direct
    finally:
        for client in (lossy, direct):
            await client.aclose()
        await link.close()


def test_it_keeps_counts_through_a_failed_flush_and_writes_them_once(redis_server):
    """Redis away for a flush: nothing is lost, and nothing is counted twice when it is back."""
    metrics, route, backend = _one_route("tn_m")
    dead = RedisServer()  # a free port nobody listens on

    async def scenario() -> None:
        metrics.record(route, backend, 200, 10, 100, 0.002, False)
        down = async_client(dead.url)
        await metrics.flush(down)
        await down.aclose()
        metrics.record(route, backend, 502, 0, 0, 0.001, True)
        up = async_client(redis_server.url)
        await metrics.flush(up)
        await metrics.flush(up)  # nothing left to write
        await up.aclose()

    run(scenario())
    assert metrics.flush_errors == 1 and metrics.flushes == 2
    total = get_redis().hgetall(keys.tenant_metrics("tn_m", "total"))
    assert total["requests"] == "2" and total["responses_2xx"] == "1" and total["responses_5xx"] == "1"
    assert total["bytes_in"] == "10" and total["bytes_out"] == "100"
    assert get_redis().hgetall(keys.tenant_metrics("tn_m", "backend:be_1"))["errors"] == "1"
    assert metrics.totals[("tn_m", "rt_1", "web", "be_1")][0] == 2


def test_it_counts_a_flush_whose_reply_was_lost_once(redis_server):
    """Redis ran the flush but its reply never came back (redis-py's own retries included): the batch is sent
    again as the same batch and skipped, so usage is not counted twice."""
    metrics, route, backend = _one_route("tn_lost")

    async def scenario() -> None:
        async with _lossy_and_direct_clients(redis_server, "drop_reply") as (link, lossy, direct):
            metrics.record(route, backend, 200, 10, 100, 0.002, False)
            await metrics.flush(lossy)
            assert metrics.flush_errors == 1 and link.lost >= 1 and metrics.outstanding is not None
            assert _requests_in_redis("tn_lost") == (1, 1)  # it did run
            metrics.record(route, backend, 200, 10, 100, 0.002, False)
            await metrics.flush(direct)

    run(scenario())
    assert _requests_in_redis("tn_lost") == (2, 2)
    assert metrics.outstanding is None and metrics.totals[("tn_lost", "rt_1", "web", "be_1")][0] == 2


def test_it_keeps_the_counts_of_a_flush_cancelled_in_flight(redis_server):
    """The flusher gives up on a flush that hangs (its timeout cancels it): what it had taken from memory is
    sent by the next flush, not lost."""
    metrics, route, backend = _one_route("tn_hang")

    async def scenario() -> None:
        async with _lossy_and_direct_clients(redis_server, "swallow") as (link, hanging, direct):
            metrics.record(route, backend, 200, 10, 100, 0.002, False)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(metrics.flush(hanging), 0.5)
            assert link.lost == 1 and _requests_in_redis("tn_hang") == (0, 0)
            await metrics.flush(direct)

    run(scenario())
    assert _requests_in_redis("tn_hang") == (1, 1)


def test_it_counts_a_restarted_process_with_the_same_node_id(redis_server):
    """Batch numbers start again in a new process; one that reuses a pid (containers) is still counted."""
    first, route, backend = _one_route("tn_pid")
    second = _one_route("tn_pid")[0]

    async def scenario() -> None:
        client = async_client(redis_server.url)
        for metrics in (first, second):
            metrics.record(route, backend, 200, 1, 1, 0.001, False)
            await metrics.flush(client)
        await client.aclose()

    run(scenario())
    assert first.node_id == second.node_id and first.seq == second.seq == 1
    assert _requests_in_redis("tn_pid") == (2, 2)


def test_it_counts_a_shared_backend_under_each_route_and_each_flush_once(redis_server):
    """The compiled recorder remembers a backend's last series: two routes over one backend, alternating and
    across a flush, are still counted under the right route and in the right flush."""
    registry = StateRegistry(eject_after=5, eject_base=1.0)
    backend = Backend({"id": "be_s", "address": "127.0.0.1:9"}, registry.get("be_s"))
    pool = Pool("tn_s", "web", "round_robin", False, [backend])
    first, second = (Route("tn_s", {"id": rid, "host": "s.test", "path_prefix": prefix}, pool, True)
                     for rid, prefix in (("rt_a", "/a"), ("rt_b", "/b")))
    metrics = Metrics("node-1", registry)

    async def scenario() -> None:
        client = async_client(redis_server.url)
        for route in (first, second, first):
            metrics.record(route, backend, 200, 1, 10, 0.001, False)
        assert [metrics.pending[(route, backend)][0] for route in (first, second)] == [2, 1]
        await metrics.flush(client)
        metrics.record(first, backend, 404, 1, 10, 0.001, False)  # the route recorded last before the flush
        assert list(metrics.pending) == [(first, backend)] and metrics.pending[(first, backend)][4] == 1
        await metrics.flush(client)
        await client.aclose()

    asyncio.run(scenario())
    assert metrics.totals[("tn_s", "rt_a", "web", "be_s")][0] == 3
    assert metrics.totals[("tn_s", "rt_a", "web", "be_s")][4] == 1
    assert metrics.totals[("tn_s", "rt_b", "web", "be_s")][0] == 1


def test_it_times_exchanges_with_a_sub_millisecond_clock():
    """Latencies, deadlines and ejections use codec.clock: time.monotonic's clock at microsecond precision, not
    the event loop's whole milliseconds (which measured a fast local backend at 0 ms)."""
    before = clock()
    between = time.monotonic()
    after = clock()
    assert before <= between <= after
    assert 0 < after - before < 0.001
