"""Failure handling: retries, passive ejection, backends dying under load, config churn, Redis outage."""

from __future__ import annotations

import json
import time

import pytest

from tests.proxy.load import Load
from tests.proxy.support import (
    ProxyProcess,
    backend,
    backend_name,
    fragment,
    get,
    pool,
    publish,
    route,
    simple_site,
    uid,
)
from tests.support.assertions import eventually
from tests.support.redis_server import RedisServer
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def test_it_retries_a_refused_connection_on_another_backend(proxy, farm):
    dead, alive = farm.start("dead"), farm.start("alive")
    farm.stop(dead)
    _, host, _ = simple_site(proxy, [dead, alive])
    for _ in range(6):  # POSTs too: nothing reached the dead backend
        status, _, body = get(proxy, host, "/echo", method="POST", body=b"payload")
        assert status == 200 and body == b"payload"


def test_it_retries_an_idempotent_request_that_got_no_response(proxy, farm):
    a, b = farm.start("a"), farm.start("b")
    _, host, _ = simple_site(proxy, [a, b])
    for _ in range(2):
        status, _, _body = get(proxy, host, "/close")
        assert status == 502  # both backends drop /close: retried once, then 502
    assert a.requests == 2 and b.requests == 2


def test_it_loses_no_request_when_one_of_three_backends_dies_under_load(proxy, farm):
    backends = [farm.start(f"b{i}") for i in range(3)]
    _, host, _ = simple_site(proxy, backends)
    with Load(proxy.port, host, clients=6) as load:
        eventually(lambda: load.total > 300)
        farm.stop(backends[1])
        seen = load.total
        eventually(lambda: load.total > seen + 600)
    assert load.errors == [] and set(load.statuses) == {200}, (load.statuses, load.errors[:3])
    assert backends[0].requests and backends[2].requests


def test_it_ejects_a_failing_backend_but_never_the_last_one(proxy, farm):
    failing, good = farm.start("failing", status=500), farm.start("good")
    _, host, specs = simple_site(proxy, [failing, good])
    for _ in range(8):
        get(proxy, host)
    state = proxy.status()["backends"][specs[0]["id"]]
    assert state["ejected"]
    assert _count_names(proxy, host, 6) == {"good"}
    assert eventually(lambda: get_redis().hget(keys.passive_ejections(), specs[0]["id"]) is not None)
    entry = json.loads(get_redis().hget(keys.passive_ejections(), specs[0]["id"]))
    assert entry["until"] > time.time() and entry["node"]
    # an active health check bringing it back lifts the ejection at once
    get_redis().publish(keys.events_channel("health"), json.dumps(
        {"type": "backend.health", "backend_id": specs[0]["id"], "tenant_id": "x", "state": "up"}))
    assert eventually(lambda: not proxy.status()["backends"][specs[0]["id"]]["ejected"])
    # the only backend of a pool is never ejected
    lonely = farm.start("lonely", status=500)
    _, host2, specs2 = simple_site(proxy, [lonely])
    for _ in range(8):
        assert get(proxy, host2)[0] == 500
    assert not proxy.status()["backends"][specs2[0]["id"]]["ejected"]


def _count_names(proxy, host, n):
    return {backend_name(get(proxy, host)[2]) for _ in range(n)}


def test_it_serves_through_100_config_changes_without_a_failed_request(proxy, farm):
    a, b, c = farm.start("a"), farm.start("b"), farm.start("c")
    tenant, host = uid("tn"), f"{uid('s')}.test"
    ids = {x.name: uid("be") for x in (a, b, c)}
    layouts = [[a, b], [b, c], [c, a], [a, b, c]]
    algorithms = ["round_robin", "least_conn", "weighted_round_robin", "random", "least_latency"]
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", [backend(a)])}), proxy)
    with Load(proxy.port, host, clients=4) as load:
        for i in range(100):
            specs = [backend(x, backend_id=ids[x.name], weight=100 + i) for x in layouts[i % 4]]
            version = publish(tenant, fragment(tenant, [route(host, "web")],
                                               {"web": pool("web", specs, algorithms[i % 5])}))
            time.sleep(0.01)
        proxy.wait_version(version)
        seen = load.total
        eventually(lambda: load.total > seen + 50)
    assert load.errors == [] and set(load.statuses) == {200}, (load.statuses, load.errors[:3])
    assert load.total > 200


@pytest.mark.slow
def test_it_keeps_serving_its_last_snapshot_when_redis_is_unreachable(farm):
    own_redis = RedisServer().start()
    own_proxy = None
    try:
        import redis as redis_lib

        client = redis_lib.Redis.from_url(own_redis.url, decode_responses=True)
        one = farm.start("one")
        tenant, host = uid("tn"), f"{uid('s')}.test"
        client.hset(keys.routing_table(), tenant, json.dumps(
            fragment(tenant, [route(host, "web")], {"web": pool("web", [backend(one)])})))
        client.set(keys.routing_version(), 7)
        own_proxy = ProxyProcess(own_redis.url).start()
        own_proxy.wait_version(7)
        own_redis.stop()
        assert eventually(lambda: not own_proxy.status()["redis_ok"], timeout=6)
        for _ in range(5):
            assert get(own_proxy, host)[0] == 200
        status = own_proxy.status()
        assert status["serving_stale_snapshot"] and status["routing_version"] == 7
        assert "Redis unreachable" in own_proxy.log_path.read_text()
    finally:
        if own_proxy is not None:
            own_proxy.stop()
        own_redis.cleanup()


@pytest.mark.slow
def test_it_shares_the_port_between_worker_processes(redis_server, farm):
    import urllib.request

    one = farm.start("one")
    workers = ProxyProcess(redis_server.url, workers=2).start()
    try:
        _, host, _ = simple_site(workers, [one])
        for _ in range(40):  # fresh connections: SO_REUSEPORT spreads them over both processes
            assert get(workers, host)[0] == 200
        pids = set()
        served = []
        for worker in range(2):
            pids.add(workers.status(worker)["pid"])
            with urllib.request.urlopen(f"http://127.0.0.1:{workers.admin_port + worker}/metrics", timeout=2) as r:
                text = r.read().decode()
            served.append(sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                              if line.startswith("veloflux_proxy_requests_total{")))
        assert len(pids) == 2 and all(count > 0 for count in served) and sum(served) == 40
    finally:
        workers.stop()
