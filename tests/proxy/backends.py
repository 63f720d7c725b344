"""Little real HTTP backends for the proxy tests: asyncio servers on an event loop in a thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import httptools


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BackendProtocol(asyncio.Protocol):
    """Answers by path: /, /status/<code>, /sleep/<seconds>, /big/<bytes>, /chunked/<n>, /echo, /close."""

    def __init__(self, server: TestBackend):
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport = None
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections += 1
        self.server.open.add(self)

    def connection_lost(self, exc) -> None:
        self.server.open.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self.server.refuse_upgrade:  # answer as a plain request and keep the connection open
                path = self.url.decode("latin-1")
                self.answer(path, "GET", {"backend": self.server.name, "path": path}, True)
                return
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
            self.upgraded = True
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", [], bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade():
            return  # answered with 101 when the parser reports the upgrade
        server = self.server
        server.requests += 1
        path = self.url.decode("latin-1").split("?")[0]
        method = self.parser.get_method().decode()
        record = {"backend": server.name, "method": method, "path": path, "headers": self.headers,
                  "body_len": len(self.body), "version": self.parser.get_http_version()}
        server.seen.append(record)
        keep = self.parser.should_keep_alive()
        if server.delay:
            asyncio.get_running_loop().call_later(server.delay, self.answer, path, method, record, keep)
        else:
            self.answer(path, method, record, keep)

    def answer(self, path: str, method: str, record: dict, keep: bool) -> None:
        if self.transport.is_closing():
            return
        parts = path.strip("/").split("/")
        status = self.server.status
        body = json.dumps(record).encode()
        extra = b""
        if parts[0] == "close":
            self.transport.close()
            return
        if parts[0] == "drip":  # one chunk every 0.5 s: slow but steady progress
            self.transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            self._drip(int(parts[1]))
            return
        if parts[0] == "eof":  # a close-delimited body: no Content-Length, no chunking
            self.transport.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"body-until-close;" * 1000)
            self.transport.close()
            return
        if parts[0] == "status":
            status = int(parts[1])
        elif parts[0] == "sleep":
            asyncio.get_running_loop().call_later(float(parts[1]), self.answer, "/", method, record, keep)
            return
        elif parts[0] == "big":
            body = b"x" * int(parts[1])
        elif parts[0] == "echo":
            body = bytes(self.body)
        elif parts[0] == "chunked":
            self._chunked(int(parts[1]), keep)
            return
        elif parts[0] == "hop":
            extra = b"Connection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n"
        head = b"HTTP/1.1 %d Status\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Backend: %s\r\n%s" % (
            status, len(body), self.server.name.encode(), extra)
        if not keep:
            head += b"Connection: close\r\n"
        self.transport.write(head + b"\r\n" + (b"" if method == "HEAD" else body))
        if not keep:
            self.transport.close()

    def _drip(self, left: int) -> None:
        if self.transport.is_closing():
            return
        if left == 0:
            self.transport.write(b"0\r\n\r\n")
            return
        self.transport.write(b"5\r\ndrip;\r\n")
        asyncio.get_running_loop().call_later(0.5, self._drip, left - 1)

    def _chunked(self, count: int, keep: bool) -> None:
        out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Backend: %s\r\n\r\n" % self.server.name.encode()]
        for i in range(count):
            data = b"chunk-%d;" % i
            out.append(b"%x\r\n%s\r\n" % (len(data), data))
        out.append(b"0\r\n\r\n")
        self.transport.write(b"".join(out))
        if not keep:
            self.transport.close()


class EchoAfterUpgrade(BackendProtocol):
    upgraded = False

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            self.transport.write(data)
            return
        super().data_received(data)


class TestBackend:
    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, port: int | None = None, delay: float = 0.0,
                 status: int = 200, refuse_upgrade: bool = False):
        self.loop = loop
        self.name = name
        self.port = port or free_port()
        self.delay = delay
        self.status = status
        self.refuse_upgrade = refuse_upgrade
        self.requests = 0
        self.connections = 0
        self.seen: list[dict] = []
        self.open: set = set()
        self.server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self.server = await self.loop.create_server(lambda: EchoAfterUpgrade(self), "127.0.0.1", self.port,
                                                    reuse_address=True)

    async def _stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for proto in list(self.open):
                proto.transport.abort()
            self.server = None


class BackendFarm:
    """Owns an event loop thread and the backends a test starts on it."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.backends: list[TestBackend] = []

    def call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, name: str, **options) -> TestBackend:
        backend = TestBackend(self.loop, name, **options)
        self.call(backend._start())
        self.backends.append(backend)
        return backend

    def stop(self, backend: TestBackend) -> None:
        self.call(backend._stop())

    def run(self, coro_factory, timeout: float = 10.0):
        """Run any extra server coroutine (e.g. a WebSocket server) on the farm's loop."""
        return self.call(coro_factory(), timeout)

    def close(self) -> None:
        for backend in self.backends:
            self.call(backend._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
