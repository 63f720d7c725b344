"""Per-tenant monitoring: metrics, logs, usage, alerts, status, billing, config read real (possibly empty) data."""

from __future__ import annotations

import json
import time

import pytest

from tenants.monitoring import current_period
from tenants.plans import PLANS
from tests.support.assertions import assert_error, assert_ok
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def url(tenant_id: str, what: str) -> str:
    return f"/api/tenants/{tenant_id}/{what}"


def test_it_reads_zero_traffic_for_a_new_tenant(api, viewer):
    body = assert_ok(api.as_(viewer).get(url(viewer.tenant_id, "metrics")))
    assert body["totals"]["requests"] == 0 and body["totals"]["avg_latency_ms"] is None
    assert len(body["per_minute"]) == 15 and all(m["requests"] == 0 for m in body["per_minute"])


def test_it_reads_the_traffic_the_proxy_recorded(api, viewer):
    client = get_redis()
    minute = int(time.time() // 60)
    client.hset(keys.tenant_metrics_total(viewer.tenant_id), mapping={"requests": 40, "responses_2xx": 38,
                                                                      "responses_5xx": 2, "latency_ms_sum": 200})
    client.hset(keys.tenant_metrics_minute(viewer.tenant_id, minute), mapping={"requests": 7})
    body = assert_ok(api.as_(viewer).get(url(viewer.tenant_id, "metrics")))
    assert body["totals"]["requests"] == 40 and body["totals"]["responses_5xx"] == 2
    assert body["totals"]["avg_latency_ms"] == 5.0
    assert body["per_minute"][-1]["requests"] == 7
    # The same call again reads the same numbers: nothing random.
    assert assert_ok(api.as_(viewer).get(url(viewer.tenant_id, "metrics")))["totals"] == body["totals"]


def test_it_reads_usage_against_the_plan(api, viewer):
    get_redis().hset(keys.tenant_usage(viewer.tenant_id, current_period()), mapping={"requests": 2_500_000})
    body = assert_ok(api.as_(viewer).get(url(viewer.tenant_id, "usage")))
    assert body["requests"] == 2_500_000 and body["bytes_in"] == 0
    assert body["resources"]["users"] == 4
    assert body["limits"] == PLANS["pro"].limits()
    assert body["request_quota_used_percent"] == 1.0


def test_it_lists_alerts_with_a_state_filter(api, viewer):
    client = get_redis()
    for alert_id, state, started in (("a1", "active", "2026-11-22T10:00:00Z"),
                                     ("a2", "resolved", "2026-11-22T09:00:00Z")):
        client.hset(keys.tenant_alerts(viewer.tenant_id), alert_id,
                    json.dumps({"id": alert_id, "state": state, "started_at": started}))
    body = assert_ok(api.as_(viewer).get(url(viewer.tenant_id, "alerts")))
    assert [a["id"] for a in body["items"]] == ["a1", "a2"]
    active = assert_ok(api.as_(viewer).get(url(viewer.tenant_id, "alerts"), {"state": "active"}))
    assert [a["id"] for a in active["items"]] == ["a1"]
    error = assert_error(api.as_(viewer).get(url(viewer.tenant_id, "alerts"), {"state": "on-fire"}), 400,
                         "validation_error")
    assert "state" in error["fields"]


def test_it_reports_status_from_real_state(api, owner, viewer):
    body = assert_ok(api.as_(viewer).get(url(viewer.tenant_id, "status")))
    assert body["active"] is True and body["plan"] == "pro" and body["active_alerts"] == 0
    assert body["resources"]["users"] == 4
    assert body["last_change_at"].endswith("Z")


def test_it_shows_billing_to_admins(api, admin, tenant_a):
    body = assert_ok(api.as_(admin).get(url(admin.tenant_id, "billing")))
    assert body["plan"]["id"] == "pro" and body["current_monthly_price"] == PLANS["pro"].monthly_price
    assert body["currency"] == "USD" and body["usage"]["requests"] == 0
    assert_error(api.as_(tenant_a["member"]).get(url(admin.tenant_id, "billing")), 403, "permission_denied")


def test_it_shows_the_tenant_config(api, viewer):
    body = assert_ok(api.as_(viewer).get(url(viewer.tenant_id, "config")))
    assert body["tenant_id"] == viewer.tenant_id and body["limits"]["max_pools"] == PLANS["pro"].max_pools
    assert body["resources"]["pools"] == 0


def test_it_shows_the_audit_log_as_logs_to_admins(api, admin, tenant_a):
    body = assert_ok(api.as_(admin).get(url(admin.tenant_id, "logs")))
    assert body["type"] == "audit"
    assert [e["action"] for e in body["items"]][-1] == "tenant.create"
    assert_error(api.as_(tenant_a["member"]).get(url(admin.tenant_id, "logs")), 403, "permission_denied")


def test_it_shows_the_access_log(api, admin):
    get_redis().xadd(keys.tenant_access_log(admin.tenant_id), {"method": "GET", "path": "/", "status": "200"})
    body = assert_ok(api.as_(admin).get(url(admin.tenant_id, "logs"), {"type": "access"}))
    assert body["items"][0]["path"] == "/" and body["items"][0]["status"] == "200"
    error = assert_error(api.as_(admin).get(url(admin.tenant_id, "logs"), {"type": "debug"}), 400, "validation_error")
    assert "type" in error["fields"]


@pytest.mark.parametrize("what", ["metrics", "usage", "alerts", "status", "config", "billing", "logs"])
def test_it_requires_credentials_for_monitoring(api, owner, what):
    assert_error(api.get(url(owner.tenant_id, what)), 401, "not_authenticated")


@pytest.mark.parametrize("what", ["metrics", "usage", "alerts", "status", "config", "billing", "logs"])
def test_it_refuses_writes_to_monitoring(api, owner, what):
    assert_error(api.as_(owner).post(url(owner.tenant_id, what), {}), 405, "method_not_allowed")


@pytest.mark.parametrize("kind", ["audit", "access"])
def test_it_pages_the_logs_with_a_cursor(api, admin, kind):
    for index in range(5):
        get_redis().xadd(keys.tenant_access_log(admin.tenant_id), {"path": f"/{index}"})
    url_logs = url(admin.tenant_id, "logs")
    everything = assert_ok(api.as_(admin).get(url_logs, {"type": kind, "limit": 100}))
    assert everything["next_cursor"] is None
    first = assert_ok(api.as_(admin).get(url_logs, {"type": kind, "limit": 2}))
    second = assert_ok(api.as_(admin).get(url_logs, {"type": kind, "limit": 100, "cursor": first["next_cursor"]}))
    assert first["items"] + second["items"] == everything["items"]
    assert second["next_cursor"] is None
    for bad in ("nope", "99999999999999999999-0"):
        error = assert_error(api.as_(admin).get(url_logs, {"type": kind, "cursor": bad}), 400, "validation_error")
        assert "cursor" in error["fields"]
