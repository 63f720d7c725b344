"""Distribution of each algorithm through the proxy, weights/enabled/draining, sticky sessions."""

from __future__ import annotations

import threading
from collections import Counter

from balancer.proxy.algorithms import ConsistentHash
from balancer.proxy.config import Backend
from balancer.proxy.state import BackendState
from tests.proxy.support import backend, backend_name, fragment, get, pool, publish, route, simple_site, uid
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def _count(proxy, host, n, **kwargs) -> Counter:
    return Counter(backend_name(get(proxy, host, **kwargs)[2]) for _ in range(n))


def test_it_balances_round_robin_evenly(proxy, farm):
    backends = [farm.start(f"b{i}") for i in range(3)]
    _, host, _ = simple_site(proxy, backends)
    assert _count(proxy, host, 30) == {"b0": 10, "b1": 10, "b2": 10}


def test_it_balances_weighted_round_robin_in_exact_proportions(proxy, farm):
    backends = [farm.start(f"b{i}") for i in range(3)]
    _, host, _ = simple_site(proxy, backends, algorithm="weighted_round_robin", weights=[100, 200, 300])
    assert _count(proxy, host, 60) == {"b0": 10, "b1": 20, "b2": 30}


def test_it_sends_least_conn_traffic_to_the_backend_with_fewer_requests_in_flight(proxy, farm):
    a, b = farm.start("a"), farm.start("b")
    _, host, _ = simple_site(proxy, [a, b], algorithm="least_conn")
    slow = threading.Thread(target=get, args=(proxy, host, "/sleep/1.5"))
    slow.start()
    while a.requests + b.requests == 0:
        pass
    busy = "a" if a.requests else "b"
    counts = _count(proxy, host, 10)
    slow.join()
    assert counts == {("b" if busy == "a" else "a"): 10}


def test_it_hashes_client_ips_consistently(proxy, farm):
    backends = [farm.start(f"b{i}") for i in range(3)]
    _, host, _ = simple_site(proxy, backends, algorithm="ip_hash")
    first = {ip: backend_name(get(proxy, host, headers={"X-Forwarded-For": ip})[2])
             for ip in (f"10.0.{i}.{j}" for i in range(3) for j in range(10))}
    again = {ip: backend_name(get(proxy, host, headers={"X-Forwarded-For": ip})[2]) for ip in first}
    assert first == again and len(set(first.values())) == 3


def test_it_remaps_about_one_nth_of_clients_when_a_backend_is_removed():
    specs = [Backend({"id": f"be_{i}", "address": f"10.0.0.{i}:80", "weight": 100}, BackendState(f"be_{i}"))
             for i in range(5)]
    before, after = ConsistentHash(specs), ConsistentHash(specs[:4])
    ips = [f"172.16.{i // 256}.{i % 256}" for i in range(5000)]
    moved = sum(before.pick(specs, ip, 0).id != after.pick(specs[:4], ip, 0).id for ip in ips)
    owned_by_removed = sum(before.pick(specs, ip, 0).id == "be_4" for ip in ips)
    assert moved == owned_by_removed  # only the removed backend's clients move
    assert 0.10 < moved / len(ips) < 0.30  # about 1/5
    # an unusable backend is skipped the same way
    assert all(before.pick(specs[:4], ip, 0).id == after.pick(specs[:4], ip, 0).id for ip in ips)


def test_it_balances_random_across_all_backends(proxy, farm):
    backends = [farm.start(f"b{i}") for i in range(3)]
    _, host, _ = simple_site(proxy, backends, algorithm="random")
    counts = _count(proxy, host, 90)
    assert set(counts) == {"b0", "b1", "b2"}


def test_it_prefers_the_faster_backend_with_least_latency(proxy, farm):
    slow, fast = farm.start("slow", delay=0.08), farm.start("fast")
    _, host, _ = simple_site(proxy, [slow, fast], algorithm="least_latency")
    _count(proxy, host, 10)
    counts = _count(proxy, host, 40)
    assert counts["fast"] > counts["slow"] * 3


def test_it_does_not_prefer_a_backend_answering_fast_errors(proxy, farm):
    failing, good = farm.start("failing", status=500), farm.start("good", delay=0.02)
    _, host, _ = simple_site(proxy, [failing, good], algorithm="least_latency")
    statuses = Counter(get(proxy, host)[0] for _ in range(40))
    assert statuses[200] > statuses[500] * 3


def test_it_uses_the_algorithm_the_ai_chose_for_adaptive_pools(proxy, farm):
    backends = [farm.start(f"b{i}") for i in range(3)]
    tenant, host, specs = simple_site(proxy, backends, algorithm="adaptive")
    get_redis().hset(keys.pool_ai_algorithm(tenant), "web", "weighted_round_robin")
    specs = [backend(b, weight=w, backend_id=s["id"]) for b, w, s in zip(backends, (100, 200, 300), specs, strict=True)]
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", specs, "adaptive")}), proxy)
    assert _count(proxy, host, 60) == {"b0": 10, "b1": 20, "b2": 30}


def test_it_honours_weights_enabled_and_disabled_states(proxy, farm):
    a, b, c, d = (farm.start(n) for n in "abcd")
    tenant, host = uid("tn"), f"{uid('s')}.test"
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", [
        backend(a), backend(b, enabled=False), backend(c, state="disabled"), backend(d, weight=0)])}), proxy)
    assert _count(proxy, host, 8) == {"a": 8}


def test_it_keeps_sticky_sessions_and_lets_draining_backends_finish_them(proxy, farm):
    a, b = farm.start("a"), farm.start("b")
    tenant, host, specs = simple_site(proxy, [a, b], sticky=True)
    _status, headers, body = get(proxy, host)
    cookie = headers["set-cookie"].split(";")[0]
    owner = backend_name(body)
    assert _count(proxy, host, 10, headers={"Cookie": cookie}) == {owner: 10}
    forged = cookie.split("=")[0] + "=" + cookie.split("=")[1].split(".")[0] + ".forged"
    assert "set-cookie" in get(proxy, host, headers={"Cookie": forged})[1]
    # drain the owner: its sticky sessions finish there, new sessions go elsewhere
    draining = [backend(x, state="draining" if x.name == owner else "active", backend_id=s["id"])
                for x, s in zip((a, b), specs, strict=True)]
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", draining, sticky=True)}), proxy)
    assert _count(proxy, host, 5, headers={"Cookie": cookie}) == {owner: 5}
    other = "b" if owner == "a" else "a"
    assert _count(proxy, host, 5) == {other: 5}
