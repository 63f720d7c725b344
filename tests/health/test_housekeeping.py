"""Housekeeping: roll-ups are idempotent and bounded; streams trimmed; lost TTLs restored; schedules listed."""

from __future__ import annotations

import json
import time

from balancer.health import alerts, housekeeping
from tests.health.support import put_fragment
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def test_it_rolls_seconds_into_minutes_and_minutes_into_hours_idempotently():
    client = get_redis()
    put_fragment(client, "tn_a", {"web": []})
    now = time.time()
    minute = int(now // 60) - 1
    for second in range(minute * 60, minute * 60 + 60, 10):
        client.hset(keys.tenant_metrics("tn_a", f"s:{second}"), mapping={"requests": 5, "responses_5xx": 1})
    client.hset(keys.tenant_metrics("tn_a", f"m:{int(now // 60)}"), mapping={"requests": 7})

    first = housekeeping.rollup_metrics(client, now=now)
    housekeeping.rollup_metrics(client, now=now)

    assert first["minutes"] >= 1
    assert client.hgetall(keys.tenant_metrics("tn_a", f"m:{minute}")) == {"requests": "30", "responses_5xx": "6"}
    hours = {int(minute // 60), int(now // 3600)}
    total = sum(int(client.hget(keys.tenant_metrics("tn_a", f"h:{h}"), "requests") or 0) for h in hours)
    assert total == 37, "running twice does not double-count"
    ttl = client.ttl(keys.tenant_metrics("tn_a", f"h:{int(now // 3600)}"))
    assert 0 < ttl <= housekeeping.HOUR_RETENTION


def test_it_trims_streams_and_drops_old_resolved_alerts():
    client = get_redis()
    put_fragment(client, "tn_a", {"web": []})
    for i in range(300):
        client.xadd(keys.tenant_access_log("tn_a"), {"n": i})
    long_ago = time.time() - housekeeping.RESOLVED_ALERT_RETENTION - 60
    alerts.raise_alert(client, "tn_a", "k_old", "backend_down", "warning", "old", "backend", "be", now=long_ago)
    alerts.resolve_alert(client, "tn_a", "k_old", now=long_ago + 1)
    alerts.raise_alert(client, "tn_a", "k_new", "backend_down", "warning", "new", "backend", "be2")
    client.zadd(keys.heartbeat("worker"), {"dead": time.time() - 2 * 86400, "alive": time.time()})

    from django.test import override_settings

    with override_settings(ACCESS_LOG_MAXLEN=100):
        housekeeping.trim_streams(client)

    assert client.xlen(keys.tenant_access_log("tn_a")) < 300
    assert set(client.hkeys(keys.tenant_alerts("tn_a"))) == {"k_new"}
    assert client.zrange(keys.heartbeat("worker"), 0, -1) == ["alive"]


def test_it_restores_the_expiry_of_auth_records_that_lost_it():
    client = get_redis()
    client.set(keys.refresh_token("abc"), json.dumps({"used": False}))
    client.set(keys.token_family("fam"), "active", ex=60)
    assert housekeeping.clean_expired_auth_state(client) == {"expiry_restored": 1}
    assert client.ttl(keys.refresh_token("abc")) > 0
    assert 0 < client.ttl(keys.token_family("fam")) <= 60


def test_it_lists_the_schedules_for_platform_admins_only(api, platform_admin, owner):
    assert api.as_(owner).get("/api/system/schedules").status_code == 403
    response = api.as_(platform_admin).get("/api/system/schedules")
    assert response.status_code == 200
    schedules = {item["name"]: item for item in response.json()["schedules"]}
    assert schedules["health-sweep-safety-net"]["task"] == "balancer.tasks.health_sweep"
    assert schedules["metrics-rollup"]["every_seconds"] == 60.0
    assert schedules["stream-trim"]["last_run_at"] is None
