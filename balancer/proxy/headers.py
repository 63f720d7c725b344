"""Request and response header rewriting: hop-by-hop removal, X-Forwarded-*, X-Request-ID, framing."""

from __future__ import annotations

import os
import re
from itertools import count

HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                        b"transfer-encoding", b"upgrade"))
# request headers the proxy reads or rewrites itself (all others are copied as they came)
_REQUEST_SPECIAL = HOP_BY_HOP | {b"host", b"content-length", b"expect", b"x-forwarded-for",
                                 b"x-forwarded-proto", b"x-request-id", b"cookie", b"accept"}
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:+/=@-]{1,128}$")
_HOST = re.compile(rb"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$")

_prefix = os.urandom(4).hex()
_counter = count(1)


def new_request_id() -> str:
    return f"{_prefix}{next(_counter):012x}"


class BadRequest(Exception):
    pass


_HOSTS: dict[bytes, str] = {}  # raw Host value -> lower-case name without port (bounded cache)


def _normalize_host(value: bytes) -> str:
    if not _HOST.match(value):
        raise BadRequest("invalid Host")
    host = value.decode("ascii").lower()
    host = host.rsplit(":", 1)[0] if not host.endswith("]") and ":" in host else host
    host = host.rstrip(".")
    if len(_HOSTS) > 4096:
        _HOSTS.clear()
    _HOSTS[value] = host
    return host


class RequestHead:
    """What the proxy needs from a request's headers, plus the headers it forwards untouched."""

    __slots__ = ("accept", "chunked", "connection", "content_length", "cookie", "expect_continue", "forwarded",
                 "host", "host_raw", "request_id", "upgrade", "xff", "xfp")

    def __init__(self, headers: list[tuple[bytes, bytes]]):
        self.host: str | None = None
        self.host_raw = b""
        self.content_length = -1
        self.chunked = False
        self.expect_continue = False
        self.connection = b""
        self.upgrade: bytes | None = None
        self.xff: bytes | None = None
        self.xfp: bytes | None = None
        self.request_id: str | None = None
        self.cookie: bytes | None = None
        self.accept: bytes | None = None
        kept = []
        for name, value in headers:
            lower = name.lower()
            if lower not in _REQUEST_SPECIAL:
                kept.append(b"%s: %s\r\n" % (name, value))
                continue
            self._special(lower, value, kept, name)
        if self.connection and self.connection not in (b"keep-alive", b"close", b"upgrade"):
            kept = _drop_connection_listed(kept, self.connection)
        self.forwarded = b"".join(kept)

    def _special(self, lower: bytes, value: bytes, kept: list, name: bytes) -> None:
        if lower == b"host":
            if self.host is not None:
                raise BadRequest("duplicate Host")
            host = _HOSTS.get(value)
            if host is None:
                host = _normalize_host(value)
            self.host = host
            self.host_raw = value
            kept.append(b"Host: %s\r\n" % value)
        elif lower == b"content-length":
            self.content_length = int(value)  # the parser already rejected bad and duplicate values
            kept.append(b"Content-Length: %s\r\n" % value)
        elif lower == b"transfer-encoding":
            self.chunked = True  # the parser only accepts a final "chunked"
        elif lower == b"expect":
            if value.lower() == b"100-continue":
                self.expect_continue = True
            else:
                kept.append(b"%s: %s\r\n" % (name, value))
        elif lower == b"connection":
            self.connection = value.lower().strip()
        elif lower == b"upgrade":
            self.upgrade = value
        elif lower == b"x-forwarded-for":
            self.xff = value if self.xff is None else self.xff + b", " + value
        elif lower == b"x-forwarded-proto":
            self.xfp = value
        elif lower == b"x-request-id":
            if _REQUEST_ID.match(value):
                self.request_id = value.decode("ascii")
        elif lower == b"cookie":
            self.cookie = value if self.cookie is None else self.cookie + b"; " + value
            kept.append(b"Cookie: %s\r\n" % value)
        elif lower == b"accept":
            self.accept = value
            kept.append(b"Accept: %s\r\n" % value)


def absolute_form(head: RequestHead, url: bytes) -> bytes:
    """``GET http://host/path``: the authority replaces the Host header (RFC 9112 3.2.2); returns the path."""
    lower = url[:8].lower()
    if not (lower.startswith(b"http://") or lower.startswith(b"https://")):
        raise BadRequest("request target must be an absolute path or an absolute URL")
    authority, slash, path = url.split(b"://", 1)[1].partition(b"/")
    if b"@" in authority or not authority:
        raise BadRequest("invalid authority in the request target")
    host = _normalize_host(authority)
    if head.host_raw:
        head.forwarded = head.forwarded.replace(b"Host: %s\r\n" % head.host_raw, b"Host: %s\r\n" % authority, 1)
    else:
        head.forwarded = b"Host: %s\r\n" % authority + head.forwarded
    head.host, head.host_raw = host, authority
    return b"/" + path if slash else b"/"


def _drop_connection_listed(kept: list[bytes], connection: bytes) -> list[bytes]:
    listed = {token.strip() for token in connection.split(b",")} - {b"keep-alive", b"close", b"upgrade"}
    return [line for line in kept if line.split(b":", 1)[0].lower() not in listed]


def forwarding_headers(head: RequestHead, peer_ip: str, scheme: bytes, trusted: bool, request_id: str) -> bytes:
    peer = peer_ip.encode()
    xff = head.xff + b", " + peer if (trusted and head.xff) else peer
    xfp = head.xfp if (trusted and head.xfp) else scheme
    return b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nX-Request-ID: %s\r\n" % (xff, xfp, request_id.encode())


_RESPONSE_SPECIAL = {b"connection": 1, b"keep-alive": 2, b"proxy-connection": 2, b"te": 2, b"trailer": 2,
                     b"upgrade": 2, b"transfer-encoding": 3, b"content-length": 4, b"x-request-id": 5}


def response_head(headers: list[tuple[bytes, bytes]], parts: list[bytes]) -> tuple[int, bool, bool]:
    """Append the upstream response headers minus hop-by-hop ones to ``parts`` (as name, ": ", value, CRLF).

    Returns (content length or -1, whether the upstream sent an X-Request-ID, whether its body is chunked).
    """
    content_length = -1
    has_request_id = False
    chunked = False
    connection = b""
    start = len(parts)
    special = _RESPONSE_SPECIAL.get
    for name, value in headers:
        kind = special(name.lower())
        if kind is None or kind >= 4:
            if kind == 4:
                content_length = int(value) if value.isdigit() else -1
            elif kind == 5:
                has_request_id = True
            parts += (name, b": ", value, b"\r\n")
        elif kind == 1:
            connection = value.lower()
        elif kind == 3:
            chunked = b"chunked" in value.lower()
    if connection and connection not in (b"keep-alive", b"close"):
        listed = {token.strip() for token in connection.split(b",")}
        kept = parts[start:]
        del parts[start:]
        for i in range(0, len(kept), 4):
            if kept[i].lower() not in listed:
                parts += kept[i:i + 4]
    return content_length, has_request_id, chunked
