"""A GET-only HTTP/1.1 server for a few fixed answers (the proxy's admin endpoint, the demo backends)."""

from __future__ import annotations

import asyncio

from httptools import HttpParserError, HttpRequestParser


class TinyHttpProtocol(asyncio.Protocol):
    """Subclasses say what to answer: ``answer(url) -> (status line, header lines, body)``."""

    def __init__(self) -> None:
        self.parser = HttpRequestParser(self)
        self.url = b""
        self.transport = None

    def answer(self, url: bytes) -> tuple[bytes, bytes, bytes]:
        raise NotImplementedError

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        url, self.url = self.url, b""
        status, headers, body = self.answer(url)
        keep = self.parser.should_keep_alive()
        self.transport.write(b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n%s\r\n%s"
                             % (status, headers, len(body), b"" if keep else b"Connection: close\r\n", body))
        if not keep:
            self.transport.close()
