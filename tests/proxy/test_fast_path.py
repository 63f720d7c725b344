"""The compiled hot path (csrc/fastpath.c) and the Python methods it hands over to, on the same connections.

A plain GET on a pooled connection runs in C; a body, pipelining, a partial head, a chunked response,
a new upstream connection or an error run in Python. These tests switch between the two on one
keep-alive connection and check that every answer is right, in order, and counted exactly once.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from tests.proxy.support import ProxyProcess, backend_name, get, simple_site
from tests.support.assertions import eventually


def _read(stream, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One response from a buffered socket file: Content-Length, chunked, or no body (``head``: to a HEAD)."""
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, b"" if head else _body(stream, headers)


def _body(stream, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return stream.read(int(headers["content-length"]))
    if headers.get("transfer-encoding") != "chunked":
        return b""
    chunks = []
    while (size := int(stream.readline().split(b";")[0], 16)) > 0:
        chunks.append(stream.read(size))
        stream.readline()
    stream.readline()  # the empty trailer
    return b"".join(chunks)


def _request(host: str, path: str, method: str = "GET", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{length}\r\n".encode() + body


def _requests_counted(proxy, tenant: str) -> int:
    prefix = "veloflux_proxy_requests_total{"
    return sum(int(line.rsplit(" ", 1)[1]) for line in proxy.metrics_text().splitlines()
               if line.startswith(prefix) and f'tenant="{tenant}"' in line)


def test_it_answers_compiled_and_python_exchanges_in_order_on_one_connection(proxy, farm):
    one = farm.start("one")
    tenant, host, _ = simple_site(proxy, [one])
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        stream = sock.makefile("rb")

        def send(*parts: bytes) -> None:
            for part in parts:
                sock.sendall(part)
                time.sleep(0.02)  # separate reads at the proxy

        answers = []
        send(_request(host, "/a"))  # compiled (a new upstream connection: Python connects)
        answers.append(_read(stream))
        send(_request(host, "/b"))  # compiled, pooled connection
        answers.append(_read(stream))
        send(_request(host, "/echo", "POST", b"payload"))  # a body: Python
        answers.append(_read(stream))
        send(_request(host, "/c") + _request(host, "/d"))  # pipelined in one read: Python
        answers += [_read(stream), _read(stream)]
        head = _request(host, "/e")
        send(head[:9], head[9:])  # a head split over two reads: Python
        answers.append(_read(stream))
        send(_request(host, "/chunked/3"))  # a chunked response: its head in C, its body in Python
        answers.append(_read(stream))
        send(_request(host, "/f", "HEAD"))  # HEAD: compiled, no body
        answers.append(_read(stream, head=True))
        send(_request(host, "/status/404"))  # compiled, counted as a 4xx
        answers.append(_read(stream))
        send(_request(host, "/g"))
        answers.append(_read(stream))
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200, 200, 200, 200, 200, 200, 200, 404, 200]
    paths = [json.loads(answers[i][2])["path"] for i in (0, 1, 3, 4, 5, 9)]
    assert paths == ["/a", "/b", "/c", "/d", "/e", "/g"]
    assert answers[2][2] == b"payload" and answers[7][1]["content-length"] != "0"
    assert all(headers.get("x-request-id") for _, headers, _ in answers)
    assert eventually(lambda: _requests_counted(proxy, tenant) == len(answers))  # each once, none lost


def test_it_sends_a_compiled_exchange_to_the_next_backend_in_turn(proxy, farm):
    backends = [farm.start(name) for name in ("one", "two", "three")]
    _, host, _ = simple_site(proxy, backends)
    names = []
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        stream = sock.makefile("rb")
        for _ in range(9):
            sock.sendall(_request(host, "/"))
            names.append(backend_name(_read(stream)[2]))
    assert sorted(names) == sorted(["one", "two", "three"] * 3)
    assert all(names[i] != names[i + 1] for i in range(len(names) - 1))


def test_it_frees_what_each_exchange_used(redis_server, farm):
    """The compiled objects (exchange, request, cores) are released: memory stays flat over 20,000 requests.
    Under bin/test-sanitized, ASan keeps freed malloc blocks in a quarantine (256 MB by default): any message
    larger than pymalloc's 512-byte objects would look like a leak, so this proxy gets a small quarantine."""
    asan = os.environ.get("ASAN_OPTIONS")
    proxy = ProxyProcess(redis_server.url, env={"ASAN_OPTIONS": f"{asan}:quarantine_size_mb=1"} if asan else None)
    proxy.start()
    try:
        one = farm.start("one")
        _, host, _ = simple_site(proxy, [one])

        def run(count: int) -> None:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
                stream = sock.makefile("rb")
                for _ in range(count):
                    sock.sendall(_request(host, "/"))
                    assert _read(stream)[0] == 200

        run(2000)  # warm-up: pools, caches, allocator arenas
        before = proxy.rss_kb()
        run(20000)
        grown_kb = proxy.rss_kb() - before
        assert grown_kb < 2048, f"the proxy grew by {grown_kb} KB over 20,000 requests"  # a leak: >= 10 MB
    finally:
        proxy.stop()


def test_it_serves_from_one_thread_when_everything_is_an_ip_address(redis_server, farm):
    """Listeners bound to an IP literal and upstreams at IP addresses never start libuv's thread pool: with
    more than one thread, the kernel takes a file reference at every read and write of the hot path."""
    own_proxy = ProxyProcess(redis_server.url).start()
    try:
        _, host, _ = simple_site(own_proxy, [farm.start("one")])
        assert get(own_proxy, host)[0] == 200
        threads = sorted(path.name for path in (Path("/proc") / str(own_proxy.process.pid) / "task").iterdir())
        assert threads == [str(own_proxy.process.pid)], f"the proxy runs {len(threads)} threads"
    finally:
        own_proxy.stop()
