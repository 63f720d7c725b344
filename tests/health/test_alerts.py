"""Alerts: raised once while a condition lasts, resolved when it clears, published for realtime."""

from __future__ import annotations

import json
import time

from balancer.health import alerts
from balancer.health.sweep import sweep_once
from tenants import monitoring
from tests.health.support import Backend, backend, put_fragment
from tests.support.assertions import wait_until
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def active(tenant_id: str) -> dict[str, dict]:
    return {a["key"]: a for a in monitoring.alerts(tenant_id, "active")}


def test_it_raises_backend_down_and_pool_alerts_once_and_resolves_them_when_the_backend_comes_back():
    client = get_redis()
    server = Backend().start()
    try:
        put_fragment(client, "tn_a", {"web": [backend("be_1", server.address, interval=0.2, rise=1, fall=1)]})
        events = client.pubsub(ignore_subscribe_messages=True)
        events.subscribe(keys.events_channel("alerts"))
        wait_until(lambda: sweep_once(client) and client.hget(keys.routing_health(), "be_1") == "up")
        assert active("tn_a") == {}

        server.stop()
        wait_until(lambda: sweep_once(client) and client.hget(keys.routing_health(), "be_1") == "down")
        opened = active("tn_a")
        assert set(opened) == {"backend_down:be_1", "pool_no_healthy:web"}
        assert opened["pool_no_healthy:web"]["severity"] == "critical"
        assert opened["backend_down:be_1"]["object_type"] == "backend"
        assert "connection refused" in opened["backend_down:be_1"]["message"]

        # The condition lasts: more failed rounds and evaluations open nothing new.
        for _ in range(3):
            time.sleep(0.25)
            sweep_once(client)
            alerts.evaluate_health_alerts(client)
        assert {k: a["id"] for k, a in active("tn_a").items()} == {k: a["id"] for k, a in opened.items()}
        assert len(monitoring.alerts("tn_a")) == 2

        server.start()
        wait_until(lambda: sweep_once(client) and client.hget(keys.routing_health(), "be_1") == "up")
        assert active("tn_a") == {}
        resolved = {a["key"]: a for a in monitoring.alerts("tn_a", "resolved")}
        assert set(resolved) == {"backend_down:be_1", "pool_no_healthy:web"}
        assert all(a["resolved_at"] >= a["started_at"] for a in resolved.values())

        published = []
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            if (message := events.get_message(timeout=0.1)) is not None:
                published.append(json.loads(message["data"]))
        assert sorted((m["type"], m["alert"]["key"]) for m in published) == [
            ("alert.raised", "backend_down:be_1"), ("alert.raised", "pool_no_healthy:web"),
            ("alert.resolved", "backend_down:be_1"), ("alert.resolved", "pool_no_healthy:web")]
    finally:
        server.stop()


def test_it_keeps_a_pool_alert_off_while_another_backend_is_healthy():
    client = get_redis()
    client.hset(keys.routing_health(), mapping={"be_1": "down", "be_2": "up"})
    put_fragment(client, "tn_a", {"web": [backend("be_1", "127.0.0.1:1"), backend("be_2", "127.0.0.1:2")]})
    alerts.evaluate_health_alerts(client)
    assert set(active("tn_a")) == {"backend_down:be_1"}


def test_it_resolves_health_alerts_of_a_backend_that_was_deleted():
    client = get_redis()
    client.hset(keys.routing_health(), "be_1", "down")
    put_fragment(client, "tn_a", {"web": [backend("be_1", "127.0.0.1:1")]})
    alerts.evaluate_health_alerts(client)
    assert set(active("tn_a")) == {"backend_down:be_1", "pool_no_healthy:web"}
    put_fragment(client, "tn_a", {"web": []})
    alerts.evaluate_health_alerts(client)
    assert active("tn_a") == {}


def test_it_alerts_on_error_rate_over_the_threshold_and_resolves_it_when_it_drops():
    client = get_redis()
    put_fragment(client, "tn_a", {"web": []})
    now = time.time()
    last_minute = int(now // 60) - 1
    bucket = keys.tenant_metrics("tn_a", f"m:{last_minute}")
    client.hset(bucket, mapping={"requests": 200, "responses_5xx": 30})
    assert alerts.evaluate_error_rate_alerts(client, now=now) == {"raised": 1, "resolved": 0}
    assert alerts.evaluate_error_rate_alerts(client, now=now) == {"raised": 0, "resolved": 0}
    alert = active("tn_a")["error_rate"]
    assert alert["severity"] == "warning" and alert["error_rate"] == 0.15
    assert "15.0% of 200" in alert["message"]

    client.hset(bucket, mapping={"requests": 200, "responses_5xx": 2})
    assert alerts.evaluate_error_rate_alerts(client, now=now) == {"raised": 0, "resolved": 1}
    assert active("tn_a") == {}

    client.hset(bucket, mapping={"requests": 200, "responses_5xx": 150})
    alerts.evaluate_error_rate_alerts(client, now=now)
    history = monitoring.alerts("tn_a")
    assert [a["state"] for a in history].count("resolved") == 1, "the earlier episode is kept, resolved"
    assert active("tn_a")["error_rate"]["severity"] == "critical"


def test_it_ignores_an_error_rate_on_too_few_requests():
    client = get_redis()
    put_fragment(client, "tn_a", {"web": []})
    now = time.time()
    client.hset(keys.tenant_metrics("tn_a", f"m:{int(now // 60) - 1}"), mapping={"requests": 3, "responses_5xx": 3})
    assert alerts.evaluate_error_rate_alerts(client, now=now)["raised"] == 0
