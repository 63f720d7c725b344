"""GET /api/status, /api/metrics, /api/analytics: zeros when empty, the proxies' numbers otherwise."""

from __future__ import annotations

import time

from tests.balancer.helpers import backend, error, pool, route
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def test_it_reports_an_empty_tenant_as_zeros(api, viewer):
    metrics = api.as_(viewer).get("/api/metrics").json()
    assert metrics["totals"]["requests"] == 0 and metrics["totals"]["avg_latency_ms"] is None
    assert metrics["backends"] == []
    analytics = api.as_(viewer).get("/api/analytics?minutes=5").json()
    assert analytics["totals"]["requests"] == 0 and analytics["error_rate"] == 0.0
    assert len(analytics["series"]) == 5 and all(point["requests"] == 0 for point in analytics["series"])
    status = api.as_(viewer).get("/api/status").json()
    assert status["status"] == "ok" and status["backends"]["total"] == 0 and status["proxies"] == []


def test_it_reads_the_metrics_the_proxies_write(api, member, tenant_a):
    pool(api, member)
    be = backend(api, member)
    client = get_redis()
    tenant = tenant_a["id"]
    client.hset(keys.tenant_metrics_total(tenant), mapping={"requests": 10, "responses_2xx": 9, "responses_5xx": 1,
                                                            "latency_ms_sum": 55.0, "bytes_out": 1000})
    client.hset(keys.backend_metrics(tenant, be["id"]), mapping={"requests": 10, "errors": 1, "le_5": 7, "le_50": 3,
                                                                 "latency_ms_sum": 55.0})
    minute = int(time.time() // 60)
    client.hset(keys.tenant_metrics_minute(tenant, minute), mapping={"requests": 6, "responses_5xx": 3,
                                                                     "latency_ms_sum": 12})
    metrics = api.as_(member).get("/api/metrics").json()
    assert metrics["totals"]["requests"] == 10 and metrics["totals"]["avg_latency_ms"] == 5.5
    row = metrics["backends"][0]
    assert row["id"] == be["id"] and row["errors"] == 1 and row["latency_histogram"] == {"le_5": 7, "le_50": 3}
    analytics = api.as_(member).get("/api/analytics?minutes=10").json()
    assert analytics["totals"]["requests"] == 6 and analytics["error_rate"] == 0.5
    assert analytics["avg_latency_ms"] == 2.0 and analytics["peak_minute"] is not None
    assert analytics["all_time"]["requests"] == 10


def test_it_summarises_health_and_proxies_in_the_status(api, member):
    pool(api, member)
    up = backend(api, member, "10.0.0.1:80")
    down = backend(api, member, "10.0.0.2:80", state="draining")
    route(api, member)
    client = get_redis()
    client.hset(keys.routing_health(), mapping={up["id"]: "up", down["id"]: "down"})
    client.zadd(keys.heartbeat("proxy"), {"node-a": time.time(), "node-old": time.time() - 3600})
    status = api.as_(member).get("/api/status").json()
    assert status["status"] == "degraded"
    assert status["backends"]["healthy"] == 1 and status["backends"]["unhealthy"] == 1
    assert status["backends"]["draining"] == 1 and status["routes"] == 1
    assert [p["node"] for p in status["proxies"]] == ["node-a"]


def test_it_bounds_the_analytics_window(api, viewer):
    response = api.as_(viewer).get("/api/analytics?minutes=0")
    assert response.status_code == 400 and "minutes" in error(response)["fields"]
    assert api.as_(viewer).get("/api/analytics?minutes=abc").status_code == 400
