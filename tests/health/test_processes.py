"""Real processes: two sweepers never double-probe, a killed sweeper loses no backend,
two beats run one schedule, a worker and beat run the schedules end to end."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from balancer.health import scheduler
from cluster.schedules import list_schedules
from tests.health.processes import celery, sweeper
from tests.health.support import Backend, backend, put_fragment
from tests.support.assertions import wait_until
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

pytestmark = pytest.mark.slow


@pytest.fixture
def server():
    live = Backend().start()
    yield live
    live.stop()


def test_it_shares_the_work_between_two_sweepers_without_probing_a_backend_twice_in_a_round(
        redis_server, server, tmp_path):
    client = get_redis()
    put_fragment(client, "tn_a", {"web": [backend(f"be_{i}", server.address, interval=0.3) for i in range(60)]})
    workers = [sweeper(redis_server.url, tmp_path / f"{name}.log", name, duration=30) for name in ("one", "two")]
    try:
        wait_until(lambda: len(server.checks) >= 60 * 8, timeout=30)
    finally:
        for worker in workers:
            worker.stop()
    assert client.hlen(keys.health_claims()) == 0, "stopped sweepers give back what they had claimed"
    rounds = Counter(tuple(tag.split("|")[1:]) for tag in server.checks)
    assert rounds and max(rounds.values()) == 1, "one probe per backend per round"
    by_worker = Counter(tag.split("|")[0] for tag in server.checks)
    assert set(by_worker) == {"one", "two"}, by_worker
    assert client.hlen(keys.routing_health()) == 60
    overlay = client.hgetall(keys.routing_health())
    down = {b: client.hget(keys.health_backend(b), "last_result") for b, s in overlay.items() if s != "up"}
    assert down == {}


def test_it_retries_the_backends_a_killed_sweeper_had_claimed(redis_server, server, tmp_path):
    client = get_redis()
    server.delay = 30  # hold every probe open: the sweeper dies mid-sweep with all of them claimed
    put_fragment(client, "tn_a", {"web": [backend(f"be_{i}", server.address, timeout=2) for i in range(20)]})
    doomed = sweeper(redis_server.url, tmp_path / "doomed.log", "doomed")
    try:
        wait_until(lambda: len(server.checks) == 20, timeout=20)
        claims = client.hgetall(keys.health_claims())
        assert len(claims) == 20 and all('"doomed"' in c for c in claims.values())
    finally:
        doomed.kill()
        doomed.stop()
    server.delay = 0
    assert client.hlen(keys.routing_health()) == 0, "nothing was recorded by the dead sweeper"

    def everything_checked() -> bool:
        from balancer.health.sweep import sweep_once

        sweep_once(client, worker_id="rescuer")
        return client.hlen(keys.routing_health()) == 20

    wait_until(everything_checked, timeout=20, every=0.2)
    assert set(client.hvals(keys.routing_health())) == {"up"}
    assert all(tag.startswith("rescuer|") for tag in server.checks[20:])
    assert client.hlen(keys.health_claims()) == 0


def test_it_runs_one_beat_at_a_time_and_fails_over_when_the_holder_dies(redis_server, tmp_path):
    client = get_redis()
    first = celery(redis_server.url, tmp_path / "beat1.log", "beat", VF_BEAT_LOCK_TIMEOUT="3s")
    second = None
    try:
        wait_until(lambda: "Sending due task" in first.output, timeout=30)
        second = celery(redis_server.url, tmp_path / "beat2.log", "beat", VF_BEAT_LOCK_TIMEOUT="3s")
        wait_until(lambda: "beat: Starting" in second.output or "Acquiring" in second.output
                   or "beat:" in second.output, timeout=30)
        time.sleep(3)
        assert "Sending due task" not in second.output, "the second beat waits for the lock"
        sent_by_first = first.output.count("Sending due task")
        first.kill()
        wait_until(lambda: "Sending due task" in second.output, timeout=20)
        assert sent_by_first > 0
        assert client.exists(scheduler_lock_key())
    finally:
        for beat in (first, second):
            if beat is not None:
                beat.stop()


def scheduler_lock_key() -> str:
    from veloflux_site.celery import REDBEAT_KEY_PREFIX

    return REDBEAT_KEY_PREFIX + ":lock"


def test_it_runs_the_schedules_with_a_worker_and_beat(redis_server, server, tmp_path):
    client = get_redis()
    put_fragment(client, "tn_a", {"web": [backend("be_1", server.address)]})
    worker = celery(redis_server.url, tmp_path / "worker.log", "worker", "--pool", "solo", "-c", "1",
                    "--without-gossip", "--without-mingle")
    beat = celery(redis_server.url, tmp_path / "beat.log", "beat")
    try:
        wait_until(lambda: client.hget(keys.routing_health(), "be_1") == "up", timeout=40, every=0.2)
        assert any(m.startswith("celery@") for m in client.zrange(keys.heartbeat("worker"), 0, -1))
        listed = {item["name"]: item for item in list_schedules(client)["schedules"]}
        assert listed["health-sweep-safety-net"]["last_run_at"] is not None
        assert listed["health-sweep-safety-net"]["next_run_at"] is not None
        assert scheduler.sync_targets(client).changed is False, "the worker's sweep synced the table"
    finally:
        beat.stop()
        worker.stop()
    assert "health_sweep" in worker.output
