"""Active checks against real backends: first result, rise/fall, status lists, TCP, deletion, claims."""

from __future__ import annotations

import json
import time

import pytest

from balancer.health import scheduler, state
from balancer.health.sweep import sweep_once
from tests.health.support import Backend, backend, delete_fragment, put_fragment
from tests.support.assertions import wait_until
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


@pytest.fixture
def client():
    return get_redis()


@pytest.fixture
def live():
    started: list[Backend] = []

    def make(**kwargs) -> Backend:
        server = Backend(**kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def detail(client, backend_id: str) -> dict:
    return client.hgetall(keys.health_backend(backend_id))


def sweep_until(client, condition, timeout: float = 10.0):
    def step():
        sweep_once(client)
        return condition()
    return wait_until(step, timeout=timeout, every=0.05)


def test_it_marks_a_new_backend_up_after_its_first_successful_check(client, live):
    server = live()
    put_fragment(client, "tn_a", {"web": [backend("be_1", server.address)]})
    events = client.pubsub(ignore_subscribe_messages=True)
    events.subscribe(keys.events_channel("health"))
    assert detail(client, "be_1") == {}, "never checked: no detail yet"

    sweep_until(client, lambda: detail(client, "be_1").get("state") == "up")

    info = detail(client, "be_1")
    assert client.hget(keys.routing_health(), "be_1") == "up"
    assert info["last_result"] == "http 200"
    assert info["consecutive_successes"] == "1"
    assert float(info["last_transition_at"]) > 0
    message = wait_until(lambda: events.get_message(timeout=0.1))
    assert json.loads(message["data"]) | {"at": 0} == {
        "type": "backend.health", "backend_id": "be_1", "tenant_id": "tn_a", "pool": "web",
        "state": "up", "previous": "unknown", "at": 0}
    assert server.checks, "the real backend saw the probe"


def test_it_takes_fall_failures_to_go_down_and_rise_successes_to_come_back(client, live):
    server = live()
    put_fragment(client, "tn_a", {"web": [backend("be_1", server.address, interval=0.2, rise=2, fall=3)]})
    sweep_until(client, lambda: detail(client, "be_1").get("state") == "up")

    server.stop()
    sweep_until(client, lambda: detail(client, "be_1").get("consecutive_failures") == "2")
    assert detail(client, "be_1")["state"] == "up", "two failures are below fall=3"
    sweep_until(client, lambda: detail(client, "be_1").get("state") == "down")
    info = detail(client, "be_1")
    assert info["consecutive_failures"] == "3"
    assert info["last_result"] == "connection refused"
    assert client.hget(keys.routing_health(), "be_1") == "down"

    server.start()
    sweep_until(client, lambda: detail(client, "be_1").get("consecutive_successes") == "1")
    assert detail(client, "be_1")["state"] == "down", "one success is below rise=2"
    sweep_until(client, lambda: detail(client, "be_1").get("state") == "up")
    assert client.hget(keys.routing_health(), "be_1") == "up"


def test_it_fails_an_unexpected_status_and_accepts_a_listed_one(client, live):
    teapot = live(status=418)
    put_fragment(client, "tn_a", {"web": [backend("be_strict", teapot.address),
                                          backend("be_lenient", teapot.address, expected_status=[200, 418])]})
    sweep_until(client, lambda: detail(client, "be_strict").get("state") and detail(client, "be_lenient").get("state"))
    assert detail(client, "be_strict")["state"] == "down"
    assert detail(client, "be_strict")["last_result"] == "http 418, expected 200"
    assert detail(client, "be_lenient")["state"] == "up"


def test_it_checks_tcp_backends_by_connecting(client, live):
    server = live()
    put_fragment(client, "tn_a", {"tcp": [backend("be_tcp", server.address, type="tcp")]})
    sweep_until(client, lambda: detail(client, "be_tcp").get("state") == "up")
    assert detail(client, "be_tcp")["last_result"] == "tcp connect ok"
    server.stop()
    put_fragment(client, "tn_a", {"tcp": [backend("be_tcp", server.address, type="tcp", fall=1)]})
    sweep_until(client, lambda: detail(client, "be_tcp").get("state") == "down")


def test_it_times_out_a_backend_that_does_not_answer(client, live):
    slow = live(delay=1.5)
    put_fragment(client, "tn_a", {"web": [backend("be_slow", slow.address, timeout=0.3)]})
    sweep_until(client, lambda: detail(client, "be_slow").get("state") == "down")
    assert detail(client, "be_slow")["last_result"] == "timeout after 0.3s"


def test_it_stops_checking_deleted_backends_and_forgets_their_state(client, live):
    server = live()
    put_fragment(client, "tn_a", {"web": [backend("be_1", server.address), backend("be_2", server.address)]})
    sweep_until(client, lambda: client.hlen(keys.routing_health()) == 2)

    put_fragment(client, "tn_a", {"web": [backend("be_2", server.address)]})
    sweep_once(client)
    assert client.hkeys(keys.routing_health()) == ["be_2"]
    assert not client.exists(keys.health_backend("be_1"))
    assert client.zscore(keys.health_due(), "be_1") is None

    delete_fragment(client, "tn_a")
    sweep_once(client)
    seen = len(server.checks)
    assert client.hlen(keys.routing_health()) == 0
    assert client.zcard(keys.health_due()) == 0
    time.sleep(1.2)
    sweep_once(client)
    assert len(server.checks) == seen, "a deleted backend is not probed again"


def test_it_makes_a_new_backend_due_at_once(client, live):
    server = live()
    put_fragment(client, "tn_a", {"web": [backend("be_1", server.address, interval=30)]})
    report = scheduler.sync_targets(client)
    assert report.added == ["be_1"]
    assert client.zscore(keys.health_due(), "be_1") <= time.time() + scheduler.FIRST_CHECK_WITHIN
    assert scheduler.sync_targets(client).changed is False, "an unchanged table is not synced again"


def test_it_never_lets_two_sweepers_claim_the_same_round(client, live):
    server = live()
    put_fragment(client, "tn_a", {"web": [backend(f"be_{i}", server.address) for i in range(50)]})
    scheduler.sync_targets(client)
    later = time.time() + 1
    first = scheduler.claim_due(client, "one", 30, now=later)
    second = scheduler.claim_due(client, "two", 100, now=later)
    assert len(first) == 30 and len(second) == 20
    assert not {c.backend_id for c in first} & {c.backend_id for c in second}
    assert scheduler.claim_due(client, "three", 100, now=later) == []


def test_it_drops_the_result_of_a_claim_that_expired_and_was_taken_over(client, live):
    server = live()
    put_fragment(client, "tn_a", {"web": [backend("be_1", server.address, timeout=1.0)]})
    scheduler.sync_targets(client)
    soon = time.time() + 1
    stale = scheduler.claim_due(client, "slow", 10, now=soon, lease_grace=0.5)
    fresh = scheduler.claim_due(client, "fast", 10, now=soon + 5)
    assert [c.backend_id for c in fresh] == ["be_1"]
    from balancer.health.probe import ProbeResult

    recorded, _ = state.record_results(client, [(stale[0], ProbeResult(False, "late", 1.0))])
    assert recorded == 0 and not client.exists(keys.health_backend("be_1"))
    recorded, transitions = state.record_results(client, [(fresh[0], ProbeResult(True, "http 200", 1.0))])
    assert recorded == 1 and transitions[0].state == "up"


def test_it_mirrors_passive_ejections_into_the_backend_state(client, live):
    server = live()
    put_fragment(client, "tn_a", {"web": [backend("be_1", server.address)]})
    until = time.time() + 30
    client.hset(keys.passive_ejections(), "be_1", json.dumps({"node": "px1", "until": until, "reason": "5xx"}))
    state.mirror_passive_ejections(client)
    info = detail(client, "be_1")
    assert info["passive_ejected"] == "1"
    assert info["passive_ejected_by"] == "px1" and info["passive_ejection_reason"] == "5xx"

    client.hset(keys.passive_ejections(), "be_1", json.dumps({"node": "px1", "until": time.time() - 1}))
    state.mirror_passive_ejections(client)
    assert detail(client, "be_1").get("passive_ejected", "0") == "0"
    assert not client.hexists(keys.passive_ejections(), "be_1"), "an expired ejection is cleaned up"


def test_it_resolves_host_names(client, live):
    server = live()
    put_fragment(client, "tn_a", {"web": [backend("be_named", f"localhost:{server.port}")]})
    sweep_until(client, lambda: detail(client, "be_named").get("state"))
    assert detail(client, "be_named")["state"] == "up"


def test_it_leaves_backends_to_the_sweeper_until_they_are_overdue_in_the_safety_net_task(client, live):
    from balancer.tasks import health_sweep

    server = live()
    put_fragment(client, "tn_a", {"web": [backend("be_1", server.address)]})
    scheduler.sync_targets(client)
    assert health_sweep()["claimed"] == 0, "due now, not yet overdue by the safety net's margin"
    client.zadd(keys.health_due(), {"be_1": time.time() - 5})
    assert health_sweep() == {"claimed": 1, "recorded": 1, "transitions": 1}
    assert client.hget(keys.routing_health(), "be_1") == "up"
