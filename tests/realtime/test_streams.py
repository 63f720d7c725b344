"""The VeloFlux streams /api/ws/* through a real uvicorn process."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tenants.plans import PLANS
from tests.support.aio import run
from tests.support.assertions import assert_error
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def put_fragment(tenant_id: str, backend_ids: list[str]) -> None:
    """A routing-table fragment as the control plane writes it (docs/data-plane-contract.md)."""
    backends = [{"id": b, "address": f"127.0.0.1:{9000 + i}", "weight": 100, "enabled": True, "state": "active",
                 "region": None} for i, b in enumerate(backend_ids)]
    fragment = {"tenant_id": tenant_id, "active": True, "config_version": 1, "routes": [],
                "pools": {"web": {"name": "web", "algorithm": "round_robin", "sticky_sessions": False,
                                  "backends": backends}}}
    get_redis().hset(keys.routing_table(), tenant_id, json.dumps(fragment))


class Stream:
    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def open(cls, server, name: str, actor=None) -> Stream:
        query = f"?token={actor.token}" if actor else ""
        return cls(await connect(f"{server.ws_url}/api/ws/{name}{query}", origin="http://127.0.0.1"))

    async def next(self, timeout: float = 5.0) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def until(self, predicate, timeout: float = 5.0) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - asyncio.get_running_loop().time()))
            if predicate(frame):
                return frame


def test_it_closes_an_unauthenticated_stream_with_a_reason(asgi_server):
    async def scenario():
        stream = await Stream.open(asgi_server, "metrics")
        first = await stream.next()
        try:
            await stream.next()
        except ConnectionClosed as closed:
            return first, closed.rcvd.code
        return first, None

    first, code = run(scenario())
    assert first["type"] == "error" and first["data"]["code"] == "not_authenticated"
    assert code == 4401


def test_it_sends_the_tenants_backends_at_once(asgi_server, owner, outsider):
    put_fragment(owner.tenant_id, ["be_a1", "be_a2"])
    put_fragment(outsider.tenant_id, ["be_x1"])

    async def scenario():
        mine = await Stream.open(asgi_server, "backends", owner)
        theirs = await Stream.open(asgi_server, "backends", outsider)
        frames = await mine.next(), await theirs.next()
        await mine.ws.close()
        await theirs.ws.close()
        return frames

    mine, theirs = run(scenario())
    assert mine["type"] == "backends_update" and set(mine) == {"type", "data", "timestamp"}
    assert [b["id"] for b in mine["data"]["backends"]] == ["be_a1", "be_a2"]
    assert all(b["healthy"] is None for b in mine["data"]["backends"])
    assert [b["id"] for b in theirs["data"]["backends"]] == ["be_x1"]


def test_it_pushes_a_health_change_before_the_periodic_refresh(asgi_server, owner):
    put_fragment(owner.tenant_id, ["be_h1"])

    async def scenario():
        stream = await Stream.open(asgi_server, "backends", owner)
        await stream.next()
        get_redis().hset(keys.routing_health(), "be_h1", "down")
        get_redis().publish(keys.events_channel("health"),
                            json.dumps({"type": "backend.health", "backend_id": "be_h1", "tenant_id": owner.tenant_id,
                                        "state": "down"}))
        # The periodic refresh comes every 5 s; the push must come well before.
        frame = await stream.until(lambda f: f["data"]["backends"][0]["healthy"] is False, timeout=3)
        await stream.ws.close()
        return frame

    assert run(scenario())["data"]["unhealthy"] == 1


def test_it_reports_real_traffic_rates_from_proxy_counters(asgi_server, api, owner, admin):
    async def scenario():
        stream = await Stream.open(asgi_server, "metrics", owner)
        first = await stream.next()
        get_redis().hincrby(keys.tenant_metrics(owner.tenant_id, "total"), "requests", 40)
        get_redis().hincrby(keys.tenant_metrics(owner.tenant_id, "total"), "responses_2xx", 40)
        get_redis().hincrbyfloat(keys.tenant_metrics(owner.tenant_id, "total"), "latency_ms_sum", 200.0)
        await asyncio.to_thread(api.as_(admin).post, "/api/ws/force-update", {"streams": ["metrics"]})
        second = await stream.until(lambda f: f["data"]["totals"]["requests"] == 40)
        await stream.ws.close()
        return first, second

    first, second = run(scenario())
    assert first["data"]["totals"]["requests"] == 0 and first["data"]["rates"] == {}
    assert second["data"]["rates"]["requests_per_second"] > 0
    assert second["data"]["rates"]["avg_latency_ms"] == 5.0


def test_it_limits_stream_controls_to_admins(api, viewer, admin, outsider):
    assert_error(api.as_(viewer).post("/api/ws/force-update", {}), 403, "permission_denied")
    assert_error(api.as_(admin).post("/api/ws/control", {"action": "notice"}), 400, "validation_error")
    assert_error(api.as_(admin).post("/api/ws/force-update", {"tenant_id": outsider.tenant_id}), 404, "not_found")
    response = api.as_(admin).post("/api/ws/control", {"action": "notice", "message": "maintenance at 22:00"})
    assert response.status_code == 200 and response.json()["tenant_id"] == admin.tenant_id


def test_it_delivers_an_admin_notice_only_to_that_tenants_streams(asgi_server, api, owner, admin, outsider):
    async def scenario():
        mine = await Stream.open(asgi_server, "status", owner)
        theirs = await Stream.open(asgi_server, "status", outsider)
        await mine.next()
        await theirs.next()
        await asyncio.to_thread(api.as_(admin).post, "/api/ws/control", {"action": "notice", "message": "hi"})
        notice = await mine.until(lambda f: f["type"] == "notice")
        try:
            leaked = await theirs.until(lambda f: f["type"] == "notice", timeout=1.5)
        except TimeoutError:
            leaked = None
        await mine.ws.close()
        await theirs.ws.close()
        return notice, leaked

    notice, leaked = run(scenario())
    assert notice["data"]["message"] == "hi"
    assert leaked is None


def test_it_sends_status_billing_and_health_snapshots(asgi_server, owner):
    put_fragment(owner.tenant_id, ["be_s1"])
    get_redis().hset(keys.routing_health(), "be_s1", "down")

    async def scenario():
        frames = {}
        for name in ("status", "billing", "health"):
            stream = await Stream.open(asgi_server, name, owner)
            frames[name] = await stream.next()
            await stream.ws.close()
        return frames

    frames = run(scenario())
    assert frames["status"]["data"]["process"]["rss_bytes"] > 0
    billing = frames["billing"]["data"]["tenants"][0]
    assert billing["amount_due"] == PLANS["pro"].monthly_price and billing["requests"] == 0
    health = frames["health"]["data"]
    assert health["backends"]["unhealthy"] == 1
    assert health["pools_without_healthy_backend"] == [{"tenant_id": owner.tenant_id, "pool": "web"}]
