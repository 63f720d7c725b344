"""The health checker and the address policy: a refused address is never probed, and what the tenant sees
is the same whether the internal port behind it is open, closed or the platform's Redis."""

from __future__ import annotations

import socket

import pytest

from balancer.health.probe import POLICY_REFUSED
from balancer.health.sweep import sweep_once
from tests.health.support import Backend, backend, put_fragment
from tests.support.assertions import wait_until
from tests.support.redis_server import free_port
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


@pytest.fixture
def strict(settings):
    settings.BACKEND_ALLOWED_NETWORKS = []  # the default of a fresh deployment
    return settings


def details(client, ids: list[str]) -> list[dict]:
    return [client.hgetall(keys.health_backend(backend_id)) for backend_id in ids]


def sweep_until_checked(client, ids: list[str]) -> list[dict]:
    def step():
        sweep_once(client)
        found = details(client, ids)
        return found if all(d.get("state") in ("up", "down") for d in found) else None
    return wait_until(step, timeout=10, every=0.05)


def test_it_never_probes_an_address_the_policy_refuses(strict):
    client = get_redis()
    server = Backend().start()
    try:
        put_fragment(client, "tn_a", {"web": [backend("be_ip", server.address),
                                              backend("be_name", f"localhost:{server.port}")]})
        for info in sweep_until_checked(client, ["be_ip", "be_name"]):
            assert info["state"] == "down" and info["last_result"] == POLICY_REFUSED
        assert server.checks == []
    finally:
        server.stop()


@pytest.mark.parametrize("check_type", ["http", "tcp"])
def test_it_reports_open_and_closed_internal_ports_alike(strict, redis_server, check_type):
    client = get_redis()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        addresses = {"be_open": f"127.0.0.1:{listener.getsockname()[1]}", "be_closed": f"127.0.0.1:{free_port()}",
                     "be_redis": f"127.0.0.1:{redis_server.port}", "be_redis_name": f"localhost:{redis_server.port}",
                     "be_metadata": "169.254.169.254:80"}
        put_fragment(client, "tn_a", {"web": [backend(i, a, type=check_type) for i, a in addresses.items()]})
        seen = sweep_until_checked(client, list(addresses))
        assert {(info["state"], info["last_result"]) for info in seen} == {("down", POLICY_REFUSED)}
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing even connected
