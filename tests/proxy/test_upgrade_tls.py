"""Upgrade tunnelling (WebSocket echo) and the HTTPS listener choosing certificates by SNI."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess

import pytest
from websockets.asyncio.server import serve
from websockets.sync.client import connect

from tests.proxy.backends import free_port
from tests.proxy.support import ProxyProcess, backend, fragment, pool, publish, raw, read_response, route, uid
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


class _WsBackend:
    def __init__(self):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.name = "ws"


def test_it_tunnels_a_websocket_echo(proxy, farm):
    ws_backend = _WsBackend()

    async def echo(websocket):
        async for message in websocket:
            await websocket.send(f"echo:{message}")

    async def start():
        return await serve(echo, "127.0.0.1", ws_backend.port)

    server = farm.run(start)
    tenant = uid("tn")
    publish(tenant, fragment(tenant, [route("127.0.0.1", "ws")], {"ws": pool("ws", [backend(ws_backend)])}), proxy)
    with connect(f"ws://127.0.0.1:{proxy.port}/chat", open_timeout=5) as websocket:
        for i in range(20):
            websocket.send(f"hello {i}")
            assert websocket.recv(timeout=5) == f"echo:hello {i}"
        big = "x" * 300_000
        websocket.send(big)
        assert websocket.recv(timeout=10) == "echo:" + big
    async def stop():
        server.close()
        await server.wait_closed()

    farm.run(stop)


def test_it_tunnels_other_upgrades_and_forwards_refusals(proxy, farm):
    one = farm.start("one")
    tenant, host = uid("tn"), f"{uid('s')}.test"
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", [backend(one)])}), proxy)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(f"GET /up HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(b"ping-through-the-tunnel")
        echoed = b""
        while len(echoed) < 23:
            echoed += sock.recv(4096)
        assert echoed == b"ping-through-the-tunnel"
    assert raw(proxy, b"GET / HTTP/1.1\r\nHost: nobody.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
               ).startswith(b"HTTP/1.1 404")
    # a backend that refuses the upgrade: its answer is relayed and the connection closed
    refusing = farm.start("refusing", refuse_upgrade=True)
    publish(tenant, fragment(tenant, [route(host, "web")], {"web": pool("web", [backend(refusing)])}), proxy)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(f"GET /status/426 HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                     .encode())
        answer = b""
        while chunk := sock.recv(65536):  # ends with the close (a timeout here would fail the test)
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 426") and answer.endswith(b"}")


def _certificate(tmp_path, name: str) -> dict:
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)
    return {"cert": cert.read_text(), "key": key.read_text()}


def _peer_common_name(port: int, server_name: str, cafile) -> str:
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname=server_name) as tls:
        subject = dict(item[0] for item in tls.getpeercert()["subject"])
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\n\r\n".encode())
        head, body = read_response(tls)
        assert head.startswith(b"HTTP/1.1 200")
        seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
        assert seen["x-forwarded-proto"] == "https"
        return subject["commonName"]


@pytest.mark.slow
def test_it_serves_https_with_the_certificate_chosen_by_sni(redis_server, farm, tmp_path):
    one = farm.start("one")
    names = [f"{uid('a')}.test", f"{uid('b')}.test"]
    get_redis().hset(keys.tls_certificates(), mapping={
        name: json.dumps(_certificate(tmp_path, name)) for name in names})
    https_port = free_port()
    tls_proxy = ProxyProcess(redis_server.url, "--https-port", str(https_port)).start()
    try:
        tenant = uid("tn")
        publish(tenant, fragment(tenant, [route(name, "web") for name in names],
                                 {"web": pool("web", [backend(one)])}), tls_proxy)
        for name in names:
            assert _peer_common_name(https_port, name, tmp_path / f"{name}.crt") == name
        with pytest.raises(ssl.SSLError):
            _peer_common_name(https_port, "unknown.test", tmp_path / f"{names[0]}.crt")
    finally:
        tls_proxy.stop()
