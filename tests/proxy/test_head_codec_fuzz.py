"""The compiled request parser against references (h11 for what is forwarded, llhttp through httptools for what
is refused: h11 tolerates control characters in values, RFC 9110 and llhttp do not), and against arbitrary bytes."""

from __future__ import annotations

import h11
import httptools
from hypothesis import given, settings
from hypothesis import strategies as st

from balancer.proxy.codec import HeadError, parse_request

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
SPECIAL = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
           "trailer", "upgrade", "expect", "x-forwarded-for", "x-forwarded-proto", "x-request-id", "http2-settings",
           "x-veloflux-hops"}
FORBIDDEN_IN_VALUES = [bytes([c]) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]

names = st.text(TCHAR, min_size=1, max_size=20).filter(lambda n: n.lower() not in SPECIAL)
values = st.builds(lambda a, b: (a + b).strip(" "), st.text(VCHAR, min_size=1, max_size=1),
                   st.text(VCHAR + " \t", max_size=40)).filter(lambda v: v and v[-1] not in " \t")
requests = st.fixed_dictionaries({
    "method": st.text(TCHAR, min_size=1, max_size=10),
    "target": st.builds(lambda p: "/" + p, st.text(VCHAR, max_size=40)),
    "host": st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}\.){0,3}[a-z]{2,6}(:[0-9]{1,5})?", fullmatch=True),
    "headers": st.lists(st.tuples(names, values), max_size=12),
})


def head_of(request: dict) -> bytes:
    lines = [f"{request['method']} {request['target']} HTTP/1.1", f"Host: {request['host']}"]
    lines += [f"{name}: {value}" for name, value in request["headers"]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def h11_request(head: bytes) -> h11.Request:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    event = conn.next_event()
    assert isinstance(event, h11.Request), event
    return event


@settings(max_examples=300, deadline=None)
@given(requests)
def test_it_forwards_what_h11_reads_in_the_original_plus_the_forwarding_headers(request):
    head = head_of(request)
    ours = parse_request(head, 0, 65536, b"192.0.2.7", b"http", False)
    reference = h11_request(head)
    upstream = h11_request(ours.upstream)
    assert (upstream.method, upstream.target) == (reference.method, reference.target)
    expected = [*reference.headers, (b"x-forwarded-for", b"192.0.2.7"), (b"x-forwarded-proto", b"http"),
                (b"x-request-id", ours.request_id.encode()), (b"via", b"1.1 veloflux"), (b"x-veloflux-hops", b"1")]
    assert list(upstream.headers) == expected
    assert ours.end == len(head) and ours.path == request["target"]


@settings(max_examples=300, deadline=None)
@given(requests.filter(lambda r: r["headers"]), st.sampled_from(FORBIDDEN_IN_VALUES), st.data())
def test_it_rejects_a_control_character_in_a_value_as_llhttp_does(request, byte, data):
    index = data.draw(st.integers(0, len(request["headers"]) - 1))
    name, value = request["headers"][index]
    at = data.draw(st.integers(0, len(value)))
    broken = value[:at].encode() + byte + value[at:].encode()
    head = head_of(request).replace(f"\r\n{name}: {value}\r\n".encode(), f"\r\n{name}: ".encode() + broken + b"\r\n", 1)
    try:
        parse_request(head, 0, 65536, b"192.0.2.7", b"http", False)
        raise AssertionError("accepted")
    except HeadError as exc:
        assert exc.args[0] == 400
    parser = httptools.HttpRequestParser(object())
    try:
        parser.feed_data(head)
        raise AssertionError("llhttp accepted")
    except httptools.HttpParserError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 300))
def test_it_answers_any_bytes_with_a_head_a_wait_or_a_4xx_consistently_for_every_prefix(data, cut):
    def outcome(chunk: bytes):
        try:
            req = parse_request(chunk, 0, 256, b"192.0.2.7", b"http", False)
        except HeadError as exc:
            assert exc.args[0] in (400, 431)
            return ("error", exc.args[0])
        return "wait" if req is None else ("head", req.end)

    whole = outcome(data)
    prefix = outcome(data[:cut])
    if prefix != "wait":  # a prefix decides only what the whole decides too (431 aside: the whole is just longer)
        assert prefix == whole or whole == ("error", 431)
