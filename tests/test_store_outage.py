"""Redis goes away mid-run: the API answers 503 store_unavailable, then recovers by itself when it is back.

The session's shared redis-server is never touched: each test starts its own server, points the
app at it, and points the app back in a finally block.
"""

from __future__ import annotations

import logging

from tests.conftest import point_app_at
from tests.support.actors import PASSWORD, make_tenant
from tests.support.assertions import assert_error, assert_ok
from tests.support.redis_server import RedisServer
from veloflux_site.storage.connection import warn_if_not_durable


def test_it_answers_503_while_redis_is_down_and_recovers_when_it_is_back(api, own_redis):
    tenant_id, owner = make_tenant("Outage Co", "owner@outage.test")
    caller = api.as_(owner)
    assert_ok(caller.get(f"/api/tenants/{tenant_id}"))

    own_redis.stop()
    for response in (caller.get(f"/api/tenants/{tenant_id}"),
                     caller.put(f"/api/tenants/{tenant_id}", {"name": "Lost"}),
                     api.post("/api/auth/login", {"email": owner.email, "password": PASSWORD}),
                     api.post("/api/auth/register", {"email": "n@outage.test", "password": "s3cret-enough",
                                                     "tenant_name": "N"}),
                     api.get("/metrics")):
        error = assert_error(response, 503, "store_unavailable")
        assert "Redis" in error["message"] and "retry" in error["message"]
        assert response["Retry-After"]
        assert response["X-Request-ID"]
    readiness = api.get("/api/status/health")
    assert readiness.status_code == 503
    assert readiness.json()["error"]["code"] == "store_unavailable"
    # Liveness does not need Redis.
    assert_ok(api.get("/health"))

    own_redis.start()  # same port, same data directory
    body = assert_ok(caller.get(f"/api/tenants/{tenant_id}"))
    assert body["name"] == "Outage Co"  # the failed PUT changed nothing
    assert_ok(caller.put(f"/api/tenants/{tenant_id}", {"name": "Back"}))
    assert_ok(api.post("/api/auth/login", {"email": owner.email, "password": PASSWORD}))
    assert_ok(api.get("/api/status/health"))


def test_it_answers_503_for_the_web_login_page_too(client, own_redis):
    make_tenant("Page Co", "owner@page.test")
    own_redis.stop()
    response = client.post("/login", {"email": "owner@page.test", "password": PASSWORD})
    assert_error(response, 503, "store_unavailable")
    own_redis.start()
    assert client.post("/login", {"email": "owner@page.test", "password": PASSWORD}).status_code == 302


def test_it_answers_503_when_redis_was_never_there(api, redis_server):
    dead = RedisServer()  # a free port nobody listens on
    point_app_at(dead.url)
    try:
        assert_error(api.post("/api/auth/login", {"email": "a@b.test", "password": "x"}), 503, "store_unavailable")
    finally:
        point_app_at(redis_server.url)
        dead.cleanup()
    assert_error(api.post("/api/auth/login", {"email": "a@b.test", "password": "x"}), 401, "invalid_credentials")


def test_it_warns_at_start_when_redis_persistence_is_off(caplog):
    with caplog.at_level(logging.WARNING, logger="veloflux.storage"):
        status = warn_if_not_durable()  # the session server runs without AOF or snapshots
    assert status == {"aof": False, "rdb": False, "durable": False}
    assert "persistence is OFF" in caplog.text


def test_it_stays_quiet_when_redis_persists(caplog, own_redis):
    with caplog.at_level(logging.WARNING, logger="veloflux.storage"):
        status = warn_if_not_durable()
    assert status["aof"] is True and status["durable"] is True
    assert caplog.text == ""


def test_it_warns_without_failing_when_redis_is_unreachable_at_start(caplog, own_redis):
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="veloflux.storage"):
        assert warn_if_not_durable() is None
    assert "not reachable" in caplog.text


def test_it_reports_readiness_on_a_redis_without_the_config_command(api, redis_server, caplog):
    """Managed Redis services often disable CONFIG: persistence is then reported as unknown, not a 500."""
    server = RedisServer(appendonly=True, extra_args=("--rename-command", "CONFIG", "")).start()
    point_app_at(server.url)
    try:
        ready = assert_ok(api.get("/api/status/health"))
        persistence = ready["checks"]["redis"]["persistence"]
        assert persistence["aof"] is True and persistence["durable"] is True and persistence["rdb"] is None
        with caplog.at_level(logging.WARNING, logger="veloflux.storage"):
            assert warn_if_not_durable()["durable"] is True
        assert caplog.text == ""
    finally:
        point_app_at(redis_server.url)
        server.cleanup()


def test_it_closes_a_websocket_handshake_with_try_again_later_while_redis_is_down(owner, redis_server):
    import asyncio

    from tenants.channels_auth import STORE_UNAVAILABLE_CLOSE, PrincipalAuthMiddleware

    async def unreachable_app(scope, receive, send):  # never reached: the middleware answers first
        raise AssertionError("the app must not run without a principal")

    async def handshake() -> list[dict]:
        sent: list[dict] = []
        inbox = [{"type": "websocket.connect"}]

        async def receive():
            return inbox.pop(0)

        async def send(message):
            sent.append(message)

        scope = {"type": "websocket", "query_string": f"token={owner.token}".encode(), "headers": []}
        await PrincipalAuthMiddleware(unreachable_app)(scope, receive, send)
        return sent

    dead = RedisServer()
    point_app_at(dead.url)
    try:
        sent = asyncio.run(handshake())
    finally:
        point_app_at(redis_server.url)
        dead.cleanup()
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == STORE_UNAVAILABLE_CLOSE
