"""Centrifugo's client protocol (JSON), the frames and codes, written from its specification
(``centrifugal/protocol`` client.proto and Centrifugo's documentation).

A WebSocket text frame carries one or more JSON objects separated by newlines.
Client -> server: commands keyed by method, ``{"id": 1, "subscribe": {"channel": "..."}}``;
``{}`` is the answer to a server ping; ``send`` carries no id and gets no reply.
Server -> client: replies ``{"id": 1, "subscribe": {...}}`` or ``{"id": 1, "error": {"code", "message"}}``;
pushes ``{"push": {"channel": "...", "pub": {"data", "offset"}}}`` (also ``join``, ``leave``,
``unsubscribe``, ``message``, ``disconnect``); ``{}`` is a ping.
"""

from __future__ import annotations

import json

from veloflux_site.documents import loads_json
from veloflux_site.realtime.wsserver import text_frame

METHODS = ("connect", "subscribe", "unsubscribe", "publish", "presence", "presence_stats", "history",
           "ping", "send", "rpc", "refresh", "sub_refresh")

# Error codes (reply ``error``), as Centrifugo documents them.
INTERNAL = 100
UNAUTHORIZED = 101
UNKNOWN_CHANNEL = 102
PERMISSION_DENIED = 103
METHOD_NOT_FOUND = 104
ALREADY_SUBSCRIBED = 105
LIMIT_EXCEEDED = 106
BAD_REQUEST = 107
NOT_AVAILABLE = 108
TOKEN_EXPIRED = 109
UNRECOVERABLE_POSITION = 112
TEMPORARY = frozenset({INTERNAL, NOT_AVAILABLE})  # the SDK retries these by itself

# Unsubscribe push codes: below 2500 the SDK stays unsubscribed, from 2500 it resubscribes.
UNSUBSCRIBE_SERVER = 2000
UNSUBSCRIBE_INSUFFICIENT = 2500  # fell behind: resubscribe with recovery

# Disconnect codes: 3000-3499 the SDK reconnects, 3500-3999 it does not.
DISCONNECT_CONNECTION_CLOSED = 3000
DISCONNECT_EXPIRED = 3005
DISCONNECT_NO_PONG = 3012
DISCONNECT_INVALID_TOKEN = 3500
DISCONNECT_BAD_REQUEST = 3501
DISCONNECT_FORCE_NOTHING = 3503  # disconnected by the server API: do not reconnect
DISCONNECT_FORCE_RECONNECT = 3011

PING = "{}"


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def parse_commands(text: str) -> list:
    """The JSON values of one frame (newline-delimited); raises ValueError on bad or too deeply nested JSON."""
    return [loads_json(line) for line in text.strip().split("\n") if line.strip()]


def looks_like(text: str) -> bool:
    """Whether a connection's first frame speaks this protocol (the seeds' frames carry ``method``)."""
    try:
        first = parse_commands(text)[0]
    except (ValueError, IndexError):
        return False
    return isinstance(first, dict) and "method" not in first and (not first or any(m in first for m in METHODS))


def reply(request_id, method: str, result: dict) -> str:
    return _dumps({"id": request_id, method: result})


def error_reply(request_id, code: int, message: str) -> str:
    error: dict = {"code": code, "message": message}
    if code in TEMPORARY:
        error["temporary"] = True
    return _dumps({"id": request_id, "error": error})


def push(channel: str | None, kind: str, body: dict) -> str:
    frame: dict = {kind: body}
    if channel is not None:
        frame["channel"] = channel
    return _dumps({"push": frame})


def publication_frame(channel: str, message: dict) -> tuple[str, bytes]:
    """A publication push, built once per process however many subscribers get it (cached on the
    broker's message dict, beside the seeds' frame)."""
    cached = message.get("_cf_frame")
    if cached is None:
        text = _dumps({"push": {"channel": channel, "pub": {"data": message["data"], "offset": message["offset"]}}})
        cached = message["_cf_frame"] = (text, text_frame(text.encode()))
    return cached


def client_info(info: dict) -> dict:
    """Our presence info (``client``, ``user``, maybe ``conn_info``) as Centrifugo's ClientInfo."""
    out = {"client": info.get("client", ""), "user": info.get("user", "")}
    if info.get("conn_info") is not None:
        out["conn_info"] = info["conn_info"]
    return out


def disconnect_reason(code: int, reason: str) -> str:
    # The SDK reads a close reason as JSON advice ({"reason", "reconnect"}) or as plain text.
    return _dumps({"reason": reason, "reconnect": code < 3500 or 4000 <= code < 4500})
