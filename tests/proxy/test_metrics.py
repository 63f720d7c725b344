"""Metrics: aggregated in memory, flushed to the contract's Redis keys once a second; Prometheus text."""

from __future__ import annotations

import time

from tests.proxy.support import get, simple_site
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def _wait_for(key: str, field: str, value: int, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = get_redis().hgetall(key)
        if int(data.get(field, 0)) >= value:
            return data
        time.sleep(0.1)
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
        deadline = time.monotonic() + 5
        entry = None
        while entry is None and time.monotonic() < deadline:
            for line in logged.log_path.read_text().splitlines():
                if "log-me-1" in line:
                    entry = json_lib.loads(line[line.index("{"):])
            time.sleep(0.05)
        assert entry["status"] == 200 and entry["tenant"] == tenant and entry["backend"] == specs[0]["id"]
        assert entry["path"] == "/logged?q=1" and entry["method"] == "GET" and entry["ms"] >= 0
    finally:
        logged.stop()
