"""Reference point for the benchmark: the least a uvloop + httptools proxy can do.

One upstream connection per client connection, bytes relayed as they come (both parsers run, so
message boundaries are known), no routing, no header rewriting, no metrics. It shows what the
event loop and the parser cost on this machine, apart from the proxy's own per-request work.
Usage: python bench/proxy/bare_relay.py LISTEN_PORT UPSTREAM_PORT
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop


class Upstream(asyncio.Protocol):
    def __init__(self, client: Client):
        self.client = client
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)
        self.parser.feed_data(data)

    def connection_lost(self, exc) -> None:
        self.client.transport.close()


class Client(asyncio.Protocol):
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.parser = httptools.HttpRequestParser(self)
        self.upstream: Upstream | None = None
        self.pending: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.upstream = await loop.create_connection(lambda: Upstream(self), "127.0.0.1", self.upstream_port)
        for data in self.pending:
            self.upstream.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        if self.upstream is not None:
            self.upstream.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc) -> None:
        if self.upstream is not None:
            self.upstream.transport.close()


async def main(port: int, upstream_port: int) -> None:
    await asyncio.get_running_loop().create_server(lambda: Client(upstream_port), "127.0.0.1", port)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), int(sys.argv[2])))
