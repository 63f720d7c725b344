"""Routing: host and path matching, error statuses and bodies, snapshot reloads."""

from __future__ import annotations

import json

from tests.proxy.support import (
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
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def test_it_routes_exact_host_before_wildcard_then_longest_prefix(proxy, farm):
    exact, wild, api = farm.start("exact"), farm.start("wild"), farm.start("api")
    tenant = uid("tn")
    domain = f"{uid('d')}.test"
    publish(tenant, fragment(tenant, [
        route(f"*.{domain}", "wild"), route(f"www.{domain}", "exact"), route(f"www.{domain}", "api", prefix="/api"),
    ], {"wild": pool("wild", [backend(wild)]), "exact": pool("exact", [backend(exact)]),
        "api": pool("api", [backend(api)])}), proxy)
    assert backend_name(get(proxy, f"www.{domain}", "/")[2]) == "exact"
    assert backend_name(get(proxy, f"WWW.{domain.upper()}:80", "/x")[2]) == "exact"
    assert backend_name(get(proxy, f"www.{domain}", "/api/users")[2]) == "api"
    assert backend_name(get(proxy, f"shop.{domain}", "/api/users")[2]) == "wild"
    assert backend_name(get(proxy, f"a.b.{domain}", "/")[2]) == "wild"
    assert get(proxy, domain, "/")[0] == 404


def test_it_answers_unknown_host_with_404_json_or_html_and_a_request_id(proxy):
    status, headers, body = get(proxy, "nobody.test")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["request_id"] == headers["x-request-id"]
    status, headers, body = get(proxy, "nobody.test", headers={"Accept": "text/html", "X-Request-ID": "abc-123"})
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert headers["x-request-id"] == "abc-123" and b"abc-123" in body


def test_it_answers_503_when_no_backend_is_healthy_or_the_tenant_is_inactive(proxy, farm):
    one = farm.start("one")
    tenant, host, specs = simple_site(proxy, [one])
    get_redis().hset(keys.routing_health(), specs[0]["id"], "down")
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", specs)}), proxy)
    status, headers, body = get(proxy, host)
    assert status == 503 and json.loads(body)["error"]["code"] == "no_backend" and headers["x-request-id"]
    get_redis().hdel(keys.routing_health(), specs[0]["id"])
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", specs)}, active=False), proxy)
    assert get(proxy, host)[0] == 503


def test_it_answers_502_when_the_backend_refuses(proxy, farm):
    gone = farm.start("gone")
    farm.stop(gone)
    _, host, _ = simple_site(proxy, [gone])
    status, _headers, body = get(proxy, host)
    assert status == 502 and json.loads(body)["error"]["code"] == "bad_gateway"


def test_it_answers_502_when_the_backend_resets_without_answering(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    assert get(proxy, host, "/close", method="POST", body=b"x")[0] == 502


def test_it_answers_504_when_the_backend_is_too_slow(proxy, farm):
    slow = farm.start("slow")
    _, host, _ = simple_site(proxy, [slow])
    status, _, body = get(proxy, host, "/sleep/4")
    assert status == 504 and json.loads(body)["error"]["code"] == "upstream_timeout"


def test_it_does_not_cut_a_slow_response_that_keeps_making_progress(proxy, farm):
    slow = farm.start("slow")
    _, host, _ = simple_site(proxy, [slow])
    status, _, body = get(proxy, host, "/drip/7")  # 3.5 s in total, longer than the 2 s upstream timeout
    assert status == 200 and body == b"drip;" * 7


def test_it_reloads_on_the_periodic_version_check_without_an_event(proxy, farm):
    first, second = farm.start("first"), farm.start("second")
    tenant, host, _ = simple_site(proxy, [first])
    version = publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", [backend(second)])}),
                      event=False)
    proxy.wait_version(version, timeout=5)
    assert backend_name(get(proxy, host)[2]) == "second"


def test_it_honours_the_health_overlay_within_a_second(proxy, farm):
    a, b = farm.start("a"), farm.start("b")
    _, host, specs = simple_site(proxy, [a, b])
    get_redis().hset(keys.routing_health(), specs[0]["id"], "down")  # no event: the 1 s poll must see it
    eventually(lambda: proxy.status()["backends"][specs[0]["id"]]["down"], timeout=3)
    assert {backend_name(get(proxy, host)[2]) for _ in range(6)} == {"b"}
    get_redis().hset(keys.routing_health(), specs[0]["id"], "up")
    get_redis().publish(keys.events_channel("health"), json.dumps(
        {"type": "backend.health", "backend_id": specs[0]["id"], "tenant_id": "x", "state": "up"}))
    eventually(lambda: not proxy.status()["backends"][specs[0]["id"]]["down"], timeout=3)
    assert {backend_name(get(proxy, host)[2]) for _ in range(6)} == {"a", "b"}


def test_it_skips_an_invalid_tenant_fragment_and_serves_the_others(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    broken = uid("tn")
    get_redis().hset(keys.routing_table(), broken, "{not json")
    other = uid("tn")
    publish(other, {"tenant_id": other, "routes": [{"host": "x.test"}]}, proxy)  # route without a pool name
    assert backend_name(get(proxy, host)[2]) == "one"
    assert get(proxy, "x.test")[0] == 503
