"""A ceiling on request bodies at the ASGI edge, before Django reads them.

Django's ASGI handler reads a whole body into a temporary file (spilling to disk) before any
view runs, and Django checks ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only afterwards; so without this a
client could make the server write gigabytes to disk one request at a time. Here a body larger
than the path's limit is a 413 in the error shape: at once when ``Content-Length`` says so, or
as soon as a chunked body passes the limit.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from veloflux_site.api.errors import error_body


class _BodyTooLarge(Exception):
    pass


def body_limit(path: str) -> int:
    """The most bytes a request to ``path`` may send (``API_LARGE_BODY_PATHS`` lists the exceptions)."""
    return int(settings.API_LARGE_BODY_PATHS.get(path, settings.DATA_UPLOAD_MAX_MEMORY_SIZE))


def _declared_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer_too_large(send: Any, limit: int) -> None:
    body = json.dumps(error_body("payload_too_large", f"The request body is too large (the limit is {limit} "
                                 "bytes); send less data per request.")).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path", ""))
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _answer_too_large(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _answer_too_large(send, limit)
