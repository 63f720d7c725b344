"""HTTP correctness through the proxy: keep-alive, versions, chunking, pipelining, headers, limits."""

from __future__ import annotations

import http.client
import json
import socket
import time

from tests.proxy.support import get, raw, read_response, simple_site


def _conn(proxy, source: str | None = None) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10,
                                      source_address=(source, 0) if source else None)


def test_it_keeps_connections_alive_on_both_sides(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    conn = _conn(proxy)
    for _ in range(20):
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Connection") is None
        response.read()
    conn.close()
    assert one.requests == 20 and one.connections == 1


def test_it_speaks_http_1_0(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    answer = raw(proxy, f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
    answer = raw(proxy, f"GET /chunked/3 HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    head, body = answer.split(b"\r\n\r\n", 1)
    assert b"chunked" not in head.lower() and body == b"chunk-0;chunk-1;chunk-2;"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        for _ in range(2):  # HTTP/1.0 keep-alive
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode())
            head, _ = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200") and b"Connection: keep-alive" in head


def test_it_streams_chunked_bodies_both_ways(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"hello ", b"chunked ", b"world")) + b"0\r\n\r\n"
    answer = raw(proxy, f"POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
                        f"Connection: close\r\n\r\n".encode() + body)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello chunked world")
    status, headers, data = get(proxy, host, "/chunked/50")
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert data == b"".join(b"chunk-%d;" % i for i in range(50))


def test_it_relays_close_delimited_responses_chunked_or_close_delimited(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    for _ in range(2):  # HTTP/1.1 client: re-framed as chunked on a kept-alive connection
        status, headers, body = get(proxy, host, "/eof")
        assert status == 200 and headers["transfer-encoding"] == "chunked" and body == b"body-until-close;" * 1000
    answer = raw(proxy, f"GET /eof HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head and body == b"body-until-close;" * 1000


def test_it_streams_a_large_upload_to_the_backend(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    payload = bytes(range(256)) * 32768  # 8 MB
    status, _, body = get(proxy, host, "/echo", method="PUT", body=payload)
    assert status == 200 and body == payload


def test_it_answers_pipelined_requests_in_order(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    requests = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for i in range(10))
    requests += f"GET /last HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    answer = raw(proxy, requests)
    paths = [json.loads(part.split(b"\r\n\r\n", 1)[1][:part.split(b"\r\n\r\n", 1)[1].index(b"}") + 1])["path"]
             for part in answer.split(b"HTTP/1.1 200")[1:]]
    assert paths == [f"/p{i}" for i in range(10)] + ["/last"]


def test_it_handles_expect_100_continue(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one], max_body=100)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(f"POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
                     .encode())
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abcde")
        data = b""
        while not data.endswith(b"abcde"):
            data += sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 200")
    assert all(name.lower() != "expect" for name, _ in one.seen[-1]["headers"])
    answer = raw(proxy, f"POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n"
                 .encode())
    assert answer.startswith(b"HTTP/1.1 413") and b"100 Continue" not in answer


def test_it_rewrites_hop_by_hop_and_forwarding_headers(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    # an untrusted client (127.0.0.2): its X-Forwarded-* are replaced
    _status, headers, _body = get(proxy, host, "/hop", source="127.0.0.2", headers={
        "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "Connection": "keep-alive, X-Drop",
        "X-Drop": "1", "Keep-Alive": "timeout=5", "TE": "trailers", "X-Request-ID": "req-42"})
    seen = {k.lower(): v for k, v in one.seen[-1]["headers"]}
    assert seen["host"] == host and seen["x-forwarded-for"] == "127.0.0.2" and seen["x-forwarded-proto"] == "http"
    assert seen["x-request-id"] == "req-42" and headers["x-request-id"] == "req-42"
    assert not {"x-drop", "keep-alive", "te", "proxy-connection"} & set(seen)
    assert not {"x-secret", "keep-alive", "proxy-connection"} & set(headers)
    # a trusted proxy (127.0.0.1): the chain is appended to
    get(proxy, host, source="127.0.0.1", headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
    seen = {k.lower(): v for k, v in one.seen[-1]["headers"]}
    assert seen["x-forwarded-for"] == "6.6.6.6, 127.0.0.1" and seen["x-forwarded-proto"] == "https"
    assert len(seen["x-request-id"]) >= 16  # generated


def test_it_accepts_absolute_form_targets_whose_authority_wins_over_host(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    answer = raw(proxy, f"GET http://{host}/abs?x=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n"
                 .encode())
    assert answer.startswith(b"HTTP/1.1 200")
    seen = {k.lower(): v for k, v in one.seen[-1]["headers"]}
    assert one.seen[-1]["path"] == "/abs" and seen["host"] == host


def test_it_answers_head_requests_without_a_body(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    conn = _conn(proxy)
    for method in ("HEAD", "GET", "HEAD", "GET"):
        conn.request(method, "/big/1000", headers={"Host": host})
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Length") == "1000"
        assert len(response.read()) == (0 if method == "HEAD" else 1000)
    conn.close()


def test_it_limits_header_size_with_431(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    answer = raw(proxy, f"GET / HTTP/1.1\r\nHost: {host}\r\nX-Big: {'a' * 9000}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 431")


def test_it_limits_body_size_per_route_with_413(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one], max_body=1000)
    assert get(proxy, host, "/echo", method="POST", body=b"x" * 1000)[0] == 200
    assert raw(proxy, f"POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1001\r\n\r\n".encode()
               + b"x" * 1001).startswith(b"HTTP/1.1 413")
    chunks = b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    assert raw(proxy, f"POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
               + chunks).startswith(b"HTTP/1.1 413")


def test_it_times_out_slow_headers_with_408(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
        for _ in range(3):
            time.sleep(0.5)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        data = sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 408")
        assert sock.recv(4096) == b""


def test_it_closes_a_silent_new_connection_without_an_answer(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        assert sock.recv(4096) == b""  # closed after the 1 s head timeout, nothing written


def test_it_closes_idle_keep_alive_connections(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        sock.settimeout(8)
        assert sock.recv(4096) == b""  # closed by the idle timeout (3 s in these tests)


def test_it_rejects_malformed_requests_with_400_and_closes(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    h = host.encode()
    bad = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: " + h + b"\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: " + h + b"\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET ftp://evil/ HTTP/1.1\r\nHost: " + h + b"\r\n\r\n",
        b"GET http://user@" + h + b"/ HTTP/1.1\r\nHost: " + h + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: " + h + b"\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: " + h + b"\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: " + h + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: " + h + b"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: " + h + b"\r\nX-A: b\rX-Injected: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: " + h + b"\r\nX-A: b\nX-Injected: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: " + h + b"\r\nX-A: b\x00c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: " + h + b"\r\n folded: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: " + h + b"\r\nHost: other\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\nHost: " + h + b"\r\n\r\n",
    ]
    before = one.requests
    for request in bad:
        answer = raw(proxy, request)
        assert answer.startswith(b"HTTP/1.1 400"), (request, answer)
    assert one.requests == before
    assert get(proxy, host)[0] == 200  # still alive


def test_it_keeps_memory_bounded_for_a_slow_client_of_a_large_response(proxy, farm):
    one = farm.start("one")
    _, host, _ = simple_site(proxy, [one])
    size = 64 * 1024 * 1024
    before = proxy.rss_kb()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(f"GET /big/{size} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        time.sleep(1.5)  # the client reads nothing: the proxy must stop reading from the backend
        during = proxy.rss_kb()
        received = 0
        while received < size:
            chunk = sock.recv(1 << 20)
            assert chunk
            received += len(chunk)
    assert during - before < 16 * 1024, (before, during)
    assert received >= size
