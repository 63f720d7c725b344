"""The compiled head codec on its own: request heads in, upstream heads out; response heads and body framing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from balancer.proxy import codec
from balancer.proxy.codec import CHUNKED, EOF, LENGTH, Framer, HeadError, parse_request, parse_response

PEER = b"10.1.2.3"


def parse(head: bytes, trusted: bool = False, scheme: bytes = b"http", max_head: int = 8192) -> codec.Request:
    return parse_request(head, 0, max_head, PEER, scheme, trusted)


def rejection(head: bytes, max_head: int = 8192) -> int:
    with pytest.raises(HeadError) as caught:
        parse(head, max_head=max_head)
    return caught.value.args[0]


def test_it_builds_the_upstream_head_by_splicing_the_original_header_lines():
    head = (b"GET /a/b?c=1 HTTP/1.1\r\nHost: Shop.Example.COM.:8080\r\nX-A:  spaced  \r\nAccept: */*\r\n"
            b"Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
            b"Proxy-Connection: x\r\nTrailer: y\r\nX-Request-ID: req-42\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n")
    req = parse(head + b"GET /next")
    assert req.upstream == (b"GET /a/b?c=1 HTTP/1.1\r\nHost: Shop.Example.COM.:8080\r\nX-A:  spaced  \r\n"
                            b"Accept: */*\r\nCookie: a=1\r\nCookie: b=2\r\nX-Forwarded-For: 10.1.2.3\r\n"
                            b"X-Forwarded-Proto: http\r\nX-Request-ID: req-42\r\nVia: 1.1 veloflux\r\n"
                            b"X-VeloFlux-Hops: 1\r\n\r\n")
    assert (req.method, req.path, req.host, req.request_id) == (b"GET", "/a/b?c=1", "shop.example.com", "req-42")
    assert req.cookie == b"a=1; b=2" and req.accept == b"*/*" and req.keep_alive and not req.http10
    assert req.end == len(head)


def test_it_replaces_forwarding_headers_of_untrusted_clients_and_extends_those_of_trusted_proxies():
    head = (b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\n"
            b"X-Forwarded-Proto: https\r\n\r\n")
    untrusted = parse(head)
    assert b"X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: http\r\n" in untrusted.upstream
    assert b"6.6.6.6" not in untrusted.upstream and b"https" not in untrusted.upstream
    trusted = parse(head, trusted=True)
    assert b"X-Forwarded-For: 6.6.6.6, 7.7.7.7, 10.1.2.3\r\nX-Forwarded-Proto: https\r\n" in trusted.upstream
    assert trusted.xff == b"6.6.6.6, 7.7.7.7"


def test_it_keeps_a_valid_request_id_and_generates_unique_ones_otherwise():
    kept = parse(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Request-ID: abc.DEF_1:2+3/4=5@6-7\r\n\r\n")
    assert kept.request_id == "abc.DEF_1:2+3/4=5@6-7"
    made = [parse(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Request-ID: not valid\r\n\r\n").request_id for _ in range(3)]
    assert len(set(made)) == 3 and all(len(rid) == 20 for rid in made)
    req = parse(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Request-ID: not valid\r\n\r\n")
    assert b"not valid" not in req.upstream and b"X-Request-ID: %s\r\n" % req.request_id.encode() in req.upstream


def test_it_replaces_host_with_the_authority_of_an_absolute_form_target():
    req = parse(b"GET http://Api.Example.com:81/p?q HTTP/1.1\r\nX-A: 1\r\nHost: other.test\r\nX-B: 2\r\n\r\n")
    assert (req.host, req.path) == ("api.example.com", "/p?q")
    assert req.upstream.startswith(b"GET /p?q HTTP/1.1\r\nX-A: 1\r\nHost: Api.Example.com:81\r\nX-B: 2\r\n")
    bare = parse(b"GET https://api.example.com HTTP/1.0\r\n\r\n")
    assert (bare.host, bare.path) == ("api.example.com", "/")
    assert bare.upstream.startswith(b"GET / HTTP/1.1\r\nHost: api.example.com\r\n")


def test_it_reads_framing_and_keep_alive_as_rfc_9112_says():
    chunked = parse(b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n")
    assert chunked.chunked and chunked.expect_continue and chunked.content_length == -1
    assert chunked.upstream.endswith(b"Transfer-Encoding: chunked\r\n\r\n") and b"Expect" not in chunked.upstream
    sized = parse(b"PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0012\r\nConnection: close\r\n\r\n")
    assert sized.content_length == 12 and not sized.keep_alive and b"Content-Length: 0012\r\n" in sized.upstream
    assert not parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive
    old = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    assert old.keep_alive and old.http10 and old.host == "" and old.flags == codec.CLIENT_HTTP10
    assert parse(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").flags == codec.HEAD_REQUEST


def test_it_asks_for_an_upgrade_only_with_connection_upgrade():
    ws = parse(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Key: k\r\n\r\n")
    assert ws.upgrade == b"websocket"
    assert ws.upstream.endswith(b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    assert parse(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").upgrade is None


def test_it_never_lets_connection_drop_host_or_content_length():
    req = parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nX-Gone: 1\r\n"
                b"Connection: host, content-length, x-gone\r\n\r\n")
    assert b"Host: a\r\nContent-Length: 1\r\nX-Forwarded-For" in req.upstream and b"X-Gone" not in req.upstream


def test_it_gives_each_host_its_own_lowercase_name_when_recent_names_are_reused():
    hosts = ["a1c.x", "A2C.X", "a1c.x.", "[::1]:8080", "b" * 70, "B" * 70 + ":81", "a2c.x"]
    for _ in range(2):  # the second pass is served from the recent-names table
        names = [parse(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()).host for host in hosts]
        assert names == ["a1c.x", "a2c.x", "a1c.x", "[::1]", "b" * 70, "b" * 70, "a2c.x"]


def test_it_waits_for_the_rest_of_an_incomplete_head():
    head = b"\r\nGET / HTTP/1.1\r\nHost: a.test\r\nX-Long: " + b"v" * 100 + b"\r\n\r\n"
    for cut in range(len(head)):
        assert parse(head[:cut]) is None, cut
    assert parse(head).end == len(head)


def test_it_parses_pipelined_heads_from_an_offset():
    data = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\nGET /3 HTT"
    first = parse(data)
    second = parse_request(data, first.end, 8192, PEER, b"http", False)
    assert (first.path, second.path, second.host) == ("/1", "/2", "b")
    assert parse_request(data, second.end, 8192, PEER, b"http", False) is None


BAD_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: a\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / http/1.1\r\nHost: a\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET ftp://evil/ HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET relative HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rX-Injected: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nX-Injected: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n folded: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tcontinued\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a:99999x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Header: x\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad-Header : x\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n: x\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
]


@pytest.mark.parametrize("head", BAD_REQUESTS)
def test_it_rejects_malformed_request_heads_with_400(head):
    assert rejection(head) == 400


def test_it_answers_431_for_heads_larger_than_the_limit_complete_or_not():
    assert rejection(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 200 + b"\r\n\r\n", max_head=128) == 431
    assert rejection(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 200, max_head=128) == 431
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(codec.MAX_HEADERS + 1))
    assert rejection(b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n", max_head=65536) == 431


# --- responses -------------------------------------------------------------------------------------------------
def response(raw: bytes, flags: int = 0, extra: bytes = b"") -> tuple:
    return parse_response(raw, 0, flags, parse(b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: rid-1\r\n\r\n"), extra)


def test_it_rewrites_the_response_head_and_carries_the_body_that_came_with_it():
    raw = (b"HTTP/1.1 200 Fine\r\nServer: nginx\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
           b"Keep-Alive: timeout=5\r\nSet-Cookie: s=1\r\n\r\nhelloNEXT")
    end, status, out, framer, keep_alive, close, body = response(raw, extra=b"Set-Cookie: vf=2\r\n")
    assert out == (b"HTTP/1.1 200 Fine\r\nServer: nginx\r\nContent-Length: 5\r\nSet-Cookie: s=1\r\n"
                   b"X-Request-ID: rid-1\r\nSet-Cookie: vf=2\r\n\r\nhello")
    assert (end, status, framer, keep_alive, close, body) == (len(raw) - 4, 200, None, True, False, 5)


def test_it_keeps_the_backends_request_id_and_fills_in_a_missing_reason():
    out = response(b"HTTP/1.1 404\r\nX-Request-ID: theirs\r\nContent-Length: 0\r\n\r\n")[2]
    assert out == b"HTTP/1.1 404 Not Found\r\nX-Request-ID: theirs\r\nContent-Length: 0\r\n\r\n"


def test_it_skips_interim_responses_and_sends_no_body_for_head_204_and_304():
    assert response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
                    )[1:4] == (204, b"HTTP/1.1 204 No Content\r\nX-Request-ID: rid-1\r\n\r\n", None)
    assert response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n") is None
    head = response(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", flags=codec.HEAD_REQUEST)
    assert head[3] is None and head[2].endswith(b"Content-Length: 1000\r\nX-Request-ID: rid-1\r\n\r\n")


def test_it_rechunks_chunked_and_close_delimited_bodies_for_http_1_1_and_decodes_them_for_http_1_0():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
    assert response(raw)[2].endswith(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    old = response(raw, flags=codec.CLIENT_HTTP10)
    assert old[2].endswith(b"Connection: close\r\n\r\nhello") and old[5] is True
    _, _, out, framer, keep_alive, _, _ = response(b"HTTP/1.1 200 OK\r\n\r\nuntil")
    assert out.endswith(b"Transfer-Encoding: chunked\r\n\r\n5\r\nuntil\r\n") and framer.mode == EOF and not keep_alive
    assert framer.feed(b"close") == b"5\r\nclose\r\n" and not framer.done
    assert response(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx")[4] is False
    assert response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", flags=codec.CLOSE_CLIENT)[2].endswith(
        b"Connection: close\r\n\r\nx")


@pytest.mark.parametrize("raw", [
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"ICY 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_it_refuses_invalid_responses_as_502(raw):
    with pytest.raises(HeadError) as caught:
        response(raw)
    assert caught.value.args[0] == 502


# --- bodies ----------------------------------------------------------------------------------------------------
def test_it_forwards_a_content_length_body_as_received_and_finds_where_it_ends():
    framer = Framer(LENGTH, 8)
    data = b"12345"
    assert framer.feed(data) is data and not framer.done  # no copy
    assert framer.feed(b"678GET /next", 0) == b"678" and framer.done and framer.end == 3 and framer.decoded == 8
    assert framer.feed(b"more") == b""


@pytest.mark.parametrize("body", [
    b"zz\r\nabc\r\n0\r\n\r\n",
    b"3\r\nabcdef\r\n0\r\n\r\n",
    b"3\nabc\r\n0\r\n\r\n",
    b"3\r\nabc\n0\r\n\r\n",
    b" 3\r\nabc\r\n0\r\n\r\n",
    b"3 \r\nabc\r\n0\r\n\r\n",
    b"-3\r\nabc\r\n0\r\n\r\n",
    b"\r\n",
    b"ffffffffffffffffff\r\n",
    b"3;x\x00\r\nabc\r\n0\r\n\r\n",
    b"0\r\nBad Trailer\r\n\r\n",
])
def test_it_rejects_invalid_chunked_framing(body):
    with pytest.raises(HeadError) as caught:
        Framer(CHUNKED, 0, True).feed(body)
    assert caught.value.args[0] == 400


def test_it_decodes_chunked_bodies_the_same_whatever_the_read_boundaries():
    body = b"5\r\nhello\r\n1;a=b\r\n \r\n00b\r\nchunked wor\r\n2\r\nld\r\n0\r\nT: 1\r\n\r\nNEXT"
    for cut in range(len(body) + 1):
        framer = Framer(CHUNKED)
        out = framer.feed(body[:cut])
        ended = framer.end if framer.done else None
        out += framer.feed(body[cut:])
        ended = cut + framer.end if ended is None else ended
        assert (out, framer.done, framer.decoded, ended) == (b"hello chunked world", True, 19, len(body) - 4), cut


def test_it_refuses_to_start_the_proxy_without_the_compiled_codec_and_names_the_build_command():
    hide_the_build = textwrap.dedent("""
        import sys
        class Unbuilt:
            def find_spec(self, name, path=None, target=None):
                if name == "balancer.proxy._codec":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Unbuilt())
        sys.argv = ["manage.py", "runproxy", "--port", "0", "--admin-port", "0", "--workers", "1"]
        import runpy
        runpy.run_path("manage.py", run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", hide_the_build], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 1
    assert "CommandError" in result.stderr and "python setup.py build_ext --inplace" in result.stderr
