"""The proxy's own short error responses (JSON or HTML by Accept), always with an X-Request-ID."""

from __future__ import annotations

import html
import json

REASONS = {
    400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 413: "Content Too Large",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported", 508: "Loop Detected",
}

MESSAGES = {
    400: "The request could not be parsed.",
    404: "No route for this host.",
    408: "The request headers did not arrive in time.",
    413: "The request body is larger than this route allows.",
    431: "The request headers are too large.",
    502: "The upstream server refused or dropped the connection.",
    503: "No healthy backend is available for this route.",
    504: "The upstream server did not answer in time.",
    508: "This request went through too many VeloFlux proxies: a backend points back at a proxy.",
}
TENANT_CONNECTIONS_FULL = ("This site has as many connections open to its servers as the proxy allows; "
                           "try again shortly.")

CODES = {400: "bad_request", 404: "no_route", 408: "request_timeout", 413: "body_too_large",
         431: "headers_too_large", 502: "bad_gateway", 503: "no_backend", 504: "upstream_timeout",
         505: "http_version", 508: "loop_detected"}


def error_response(status: int, request_id: str, accept: bytes | None = None, close: bool = False,
                   message: str | None = None) -> bytes:
    reason = REASONS.get(status, "Error")
    message = message or MESSAGES.get(status, reason)
    if accept and b"text/html" in accept and b"json" not in accept:
        body = (f"<!doctype html><html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1>"
                f"<p>{html.escape(message)}</p><p>Request ID: {html.escape(request_id)}</p></body></html>").encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": {"code": CODES.get(status, "error"), "message": message,
                                     "request_id": request_id}}).encode()
        content_type = b"application/json"
    head = (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Request-ID: %s\r\n"
            b"Cache-Control: no-store\r\nServer: veloflux\r\n"
            % (status, reason.encode(), content_type, len(body), request_id.encode()))
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body
