"""uvicorn's wsproto WebSocket protocol plus a raw-frame writer for the hub's fan-out.

Run the web process with ``--ws veloflux_site.realtime.wsserver:RawFrameWSProtocol``.
Every WebSocket scope then carries ``scope["extensions"]["veloflux.raw_ws"]``, a
:class:`RawWebSocket`: the app can write a frame it serialised itself (once, for all
its subscribers) straight to the connection's transport, synchronously — no ASGI
send, no per-frame wsproto encoding, no task switch per connection.

Why raw frames cannot corrupt wsproto's framing: a server's frames are unmasked, and
the only outgoing state wsproto keeps between frames is the opcode of an unfinished
fragmented message (uvicorn never fragments) and the close state (a raw write is
refused once a close was sent or received). With permessage-deflate negotiated, a
raw frame is simply an uncompressed message (RSV1 clear), which RFC 7692 allows.

Ordering: a raw write goes to the transport at once, after everything previously
written through ASGI ``send``. An ASGI send waiting for the transport to drain has
not written yet, so a raw write then would overtake it; that is refused with an
error (the hub never mixes the two: after ``accept`` it writes only raw frames).
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto.connection import ConnectionState
from wsproto.events import Request

EXTENSION = "veloflux.raw_ws"


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (server to client) carrying ``payload`` (UTF-8)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class RawWebSocket:
    """A connection's raw writer, handed to the app in the ASGI scope."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: RawFrameWSProtocol):
        self._protocol = protocol

    def write_frame(self, frame: bytes) -> bool:
        """Writes complete frame bytes now; False when the connection is not open (nothing written)."""
        protocol = self._protocol
        if (protocol.close_sent or protocol.disconnected or protocol.transport.is_closing()
                or protocol.conn.state is not ConnectionState.OPEN):
            return False
        if protocol.asgi_sends_waiting:
            raise RuntimeError("a raw frame would overtake an ASGI send still waiting for the transport")
        protocol.transport.write(frame)
        return True

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (the client is that far behind, plus the socket buffers)."""
        return self._protocol.transport.get_write_buffer_size()

    async def drain(self) -> None:
        """Waits until the transport is below its high-water mark (or the connection is gone)."""
        await self._protocol.writable.wait()


class RawFrameWSProtocol(WSProtocol):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.asgi_sends_waiting = 0

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The ASGI task was created but has not run yet: it sees the extension.
        self.scope["extensions"][EXTENSION] = RawWebSocket(self)

    async def send(self, message: ASGISendEvent) -> None:
        if self.writable.is_set():
            await super().send(message)  # writes before its first suspension point
            return
        self.asgi_sends_waiting += 1
        try:
            await self.writable.wait()
        finally:
            self.asgi_sends_waiting -= 1
        await super().send(message)
