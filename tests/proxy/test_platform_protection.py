"""The proxy never connects to the platform's insides (even when a backend's name resolves there at connect
time), never loops, bounds each tenant's upstream connections, and sends only well-formed requests upstream."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.proxy.conftest import PROXY_OPTIONS
from tests.proxy.support import ProxyProcess, fragment, get, pool, publish, raw, route, simple_site, uid
from veloflux_site.storage.connection import get_redis


def site_at(proxy: ProxyProcess, address: str) -> str:
    """One tenant whose only backend is ``address``, written straight into the routing table (as if the name
    had resolved to a public address when the API validated it); returns its host."""
    tenant, host = uid("tn"), f"{uid('site')}.test"
    spec = {"id": uid("be"), "address": address, "weight": 100, "enabled": True, "state": "active", "region": None}
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", [spec])}), proxy)
    return host


@pytest.mark.parametrize("spelling", ["127.0.0.1", "localhost"])
def test_it_never_sends_a_request_to_the_platform_redis(proxy, redis_server, spelling):
    host = site_at(proxy, f"{spelling}:{redis_server.port}")
    status, _, body = get(proxy, host, "/k", method="SET")
    assert status == 502, body
    assert get_redis().exists("/k") == 0  # before: Redis ran `SET /k HTTP/1.1`


@pytest.mark.parametrize("spelling", ["127.0.0.1", "localhost"])
def test_it_never_shows_its_admin_endpoint_through_a_backend(proxy, spelling):
    host = site_at(proxy, f"{spelling}:{proxy.admin_port}")
    status, _, body = get(proxy, host, "/status")
    assert status == 502 and b"routing_version" not in body


def test_it_answers_508_at_once_when_a_backend_is_its_own_listener(proxy, farm):
    loop_host = site_at(proxy, f"localhost:{proxy.port}")
    _, other_host, _ = simple_site(proxy, [farm.start("other")])
    started = time.monotonic()
    status, _, body = get(proxy, loop_host)
    assert status == 508 and json.loads(body)["error"]["code"] == "loop_detected"
    assert time.monotonic() - started < 1.0
    assert get(proxy, other_host)[0] == 200


class Relay:
    """A TCP relay on the farm's loop: what a loop through something the address policy cannot recognise
    (another proxy, a NAT, a public address of this machine) looks like. Counts the connections it carried."""

    def __init__(self, farm, target_port: int):
        self.farm = farm
        self.target_port = target_port
        self.connections = 0
        self.tasks: set[asyncio.Task] = set()
        self.server = farm.call(asyncio.start_server(self._accepted, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]

    def _accepted(self, reader, writer) -> None:
        self.connections += 1
        task = asyncio.get_running_loop().create_task(self._pipe(reader, writer))
        self.tasks.add(task)

    async def _pipe(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            await asyncio.gather(self._copy(reader, up_writer), self._copy(up_reader, writer))
        finally:
            writer.close()
            up_writer.close()

    @staticmethod
    async def _copy(source, sink) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

        self.farm.call(stop())


def test_it_stops_a_loop_through_another_hop_with_508_after_a_few_hops(proxy, farm):
    relay = Relay(farm, proxy.port)
    try:
        loop_host = site_at(proxy, f"127.0.0.1:{relay.port}")
        _, other_host, _ = simple_site(proxy, [farm.start("other")])
        with ThreadPoolExecutor(2) as pool_:
            looping = pool_.submit(get, proxy, loop_host)
            others = [get(proxy, other_host)[0] for _ in range(5)]
            status, headers, _ = looping.result(10)
    finally:
        relay.close()
    assert status == 508 and "x-veloflux-hops" not in headers
    assert relay.connections <= 5  # before: ~2,000 connections a second until something gave way
    assert others == [200] * 5


def test_it_marks_requests_with_via_and_a_hop_counter_and_strips_it_from_responses(proxy, farm):
    _, host, _ = simple_site(proxy, [farm.start("a")])
    status, _, body = get(proxy, host, headers={"Via": "1.0 corp-proxy", "X-VeloFlux-Hops": "2"})
    headers = json.loads(body)["headers"]
    assert status == 200
    assert [v for n, v in headers if n.lower() == "via"] == ["1.0 corp-proxy", "1.1 veloflux"]
    assert [v for n, v in headers if n.lower() == "x-veloflux-hops"] == ["3"]
    assert get(proxy, host, headers={"X-VeloFlux-Hops": "5"})[0] == 508


def test_it_bounds_each_tenants_upstream_connections_per_worker(redis_server, farm):
    options = [*PROXY_OPTIONS, "--max-upstream-per-tenant", "2", "--connect-timeout", "0.5"]
    proxy = ProxyProcess(redis_server.url, *options).start()
    try:
        _, greedy_host, _ = simple_site(proxy, [farm.start("slow")])
        _, other_host, _ = simple_site(proxy, [farm.start("other")])
        with ThreadPoolExecutor(4) as executor:
            slow = [executor.submit(get, proxy, greedy_host, "/sleep/1.5") for _ in range(3)]
            time.sleep(0.3)
            other = get(proxy, other_host)[0]
            results = sorted((f.result(10)[0], f.result(10)[2]) for f in slow)
        assert other == 200
        assert [status for status, _ in results] == [200, 200, 503]  # the third waited 0.5 s for room
        assert b"as many connections open to its servers" in results[2][1]
        assert get(proxy, greedy_host)[0] == 200  # the slots came back
        # a burst past the bound waits for connections to come back instead of failing
        with ThreadPoolExecutor(8) as executor:
            burst = [executor.submit(get, proxy, greedy_host, "/sleep/0.05") for _ in range(8)]
            assert [f.result(10)[0] for f in burst] == [200] * 8
        # at the bound, an idle connection to one backend makes room for one to another backend
        _, three_host, _ = simple_site(proxy, [farm.start("x"), farm.start("y"), farm.start("z")])
        assert [get(proxy, three_host)[0] for _ in range(6)] == [200] * 6
    finally:
        proxy.stop()


def test_it_refuses_chunked_http10_requests(proxy, farm):
    backend = farm.start("a")
    _, host, _ = simple_site(proxy, [backend])
    answer = raw(proxy, f"POST /echo HTTP/1.0\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n0\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400 ") and backend.requests == 0


def test_it_strips_an_h2c_upgrade_and_forwards_the_request_as_http11(proxy, farm):
    _, host, _ = simple_site(proxy, [farm.start("a")])
    answer = raw(proxy, f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n".encode(),
                 read_until_close=False)
    assert answer.startswith(b"HTTP/1.1 200 ")
    seen = {name.lower() for name, _ in json.loads(answer.split(b"\r\n\r\n", 1)[1])["headers"]}
    assert not seen & {"upgrade", "http2-settings", "connection"}


@pytest.mark.parametrize("line", [b"GE(T / HTTP/1.1", b"GET\t/ HTTP/1.1", b"GET /a\x80b HTTP/1.1",
                                  b"GET /a\x00b HTTP/1.1", b"SET /k HTTP/1.1 extra", b"GET  / HTTP/1.1"])
def test_it_forwards_only_well_formed_request_lines(proxy, farm, line):
    backend = farm.start("a")
    _, host, _ = simple_site(proxy, [backend])
    answer = raw(proxy, line + f"\r\nHost: {host}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400 ") and backend.requests == 0 and backend.connections == 0
