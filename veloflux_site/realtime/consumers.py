"""The channel hub WebSocket (``/connection/websocket``), in the manner of Centrifugo.

Client → server frames: ``{"id": 1, "method": "subscribe", "params": {...}}``.
Server → client frames use the one realtime envelope
``{"type", "data", "timestamp"}`` (plus ``id`` on replies).

Methods: connect {token?}, subscribe {channel, recover?, offset?, epoch?, join_leave?},
unsubscribe {channel}, publish {channel, data, idempotency_key?},
presence {channel}, presence_stats {channel}, history {channel, limit?, since_offset?}, ping.
Pushes: ``publication`` (``data`` is the published payload; ``channel``, ``offset``,
``epoch`` sit beside it), ``join``/``leave`` {channel, info},
``unsubscribe`` {channel, code, reason} (code 3001: fell behind — resubscribe with recover).
Join/leave pushes are opt-in (``join_leave: true``), as in Centrifugo: on a channel with
N subscribers they would otherwise cost N² deliveries.

Centrifugo's own client protocol is served on the same endpoint, chosen per connection by its
first frame (``{"id": 1, "connect": {...}}``): see centrifugo.py and centrifugo_session.py. The
two protocols share this class's operations and the broker, so a publication reaches both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Coroutine

from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

from veloflux_site.documents import loads_json
from veloflux_site.realtime import centrifugo as cf
from veloflux_site.realtime import hub
from veloflux_site.realtime.auth import resolve_principal
from veloflux_site.realtime.broker import get_broker
from veloflux_site.realtime.centrifugo_session import CentrifugoSession
from veloflux_site.realtime.commands import CommandError, run_sync
from veloflux_site.realtime.outbox import envelope, outbox_for, publication_frame
from veloflux_site.realtime.permissions import Channel, ChannelError, can_publish, can_subscribe
from veloflux_site.realtime.pings import ping_registry
from veloflux_site.realtime.presence import presence_registry
from veloflux_site.realtime.server_orders import ServerOrders
from veloflux_site.storage import keys

log = logging.getLogger("veloflux.realtime")

HUB_PREFIX = keys.hub_pubsub("")
PRESENCE_PREFIX = keys.hub_presence_pubsub("")
FELL_BEHIND = 3001
# A subscriber with more than this not yet taken by its client is told it fell behind (and
# recovers from history) instead of the server buffering without bound.
MAX_BACKLOG_BYTES = 1024 * 1024
MAX_FRAME_BYTES = 64 * 1024
MAX_SUBSCRIPTIONS = 256
UNAVAILABLE = 108  # Centrifugo's "not available": the store did not answer, the command changed nothing


class BrokerConsumer(AsyncWebsocketConsumer):
    """A consumer fed by the process's broker, not by a channel layer.

    Channels would give every consumer its own channel-layer channel and a receive
    loop on channels-redis; ours never use it (deliveries come from one pub/sub
    connection per process), so naming a layer alias that is not configured makes
    Channels skip it — no per-connection Redis work, and a layer timeout under load
    cannot take the connections down.
    """

    channel_layer_alias = "__broker_only__"


class HubConsumer(ServerOrders, BrokerConsumer):
    """One hub connection; it is also its own broker subscriber (``deliver``/``on_lag``).

    ``deliver`` runs inside the broker's read loop, once per local subscriber of a
    publication, and does its work synchronously: decide, then push the frame to the
    connection's outbox (see outbox.py). Nothing waits per connection on that path.
    """

    async def connect(self):
        self.principal = self.scope.get("principal")
        self.client_id = secrets.token_hex(8)
        # A JWT/API key/session presented at the handshake counts as connect (existing
        # VeloFlux clients subscribe straight away); otherwise `connect` must come first.
        self.connected = bool(self.principal is not None and self.principal.is_authenticated)
        self.subscriptions: dict[str, Channel] = {}
        self._last_offset: dict[str, int] = {}  # per channel: the last offset this client was sent
        # Per channel whose subscribe reply is not out yet: what arrived meanwhile, sent after the reply.
        # Unbounded on purpose: a subscribe takes milliseconds, and the messages are shared with every subscriber.
        self._held: dict[str, list[tuple[str, dict | None]]] = {}
        self.join_leave: set[str] = set()  # channels whose join/leave notices this client asked for
        self._tasks: set[asyncio.Task] = set()
        self.session: CentrifugoSession | None = None  # set when the first frame speaks Centrifugo's protocol
        self.protocol_chosen = False
        self.conn_info: dict | None = None  # a connection token's ``info`` (presence's ``conn_info``)
        self.control_channel: str | None = None  # where the server API's unsubscribe/disconnect for our user arrive
        self.out = outbox_for(self.scope, self.send)
        await self.accept()
        if self.connected:
            await self.listen_control()

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also after a crash, when Channels never calls disconnect: the broker must not keep us.
            for name in list(getattr(self, "subscriptions", ())):
                await self._unlisten(name)
            if getattr(self, "control_channel", None):
                await get_broker().unsubscribe(self.control_channel, self)

    async def disconnect(self, code):
        if self.session is not None:
            ping_registry().discard(self.session)
        for name in list(self.subscriptions):
            await self._unlisten(name)
            with contextlib.suppress(RedisError):  # presence then expires by itself
                await self._leave(name)
        self.subscriptions.clear()
        self._held.clear()
        self.out.close()

    # --- frames -------------------------------------------------------------
    async def send_envelope(self, kind: str, data, request_id=None, **extra) -> None:
        self.out.push(envelope(kind, data, request_id, **extra))
        await self.out.drain()

    async def close_with(self, code: int, reason: str) -> None:
        """Close the connection with an application code (Centrifugo's disconnect codes)."""
        if self.session is not None:
            ping_registry().discard(self.session)
        await self.close(code=code, reason=cf.disconnect_reason(code, reason))

    def _choose_protocol(self, text: str) -> None:
        self.protocol_chosen = True
        if cf.looks_like(text):
            self.session = CentrifugoSession(self)
            self.connected = False  # Centrifugo's clients always send connect first

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None and not self.protocol_chosen:
            self._choose_protocol(text_data)
        if self.session is not None:
            if text_data is None or len(text_data) > MAX_FRAME_BYTES:
                await self.close_with(cf.DISCONNECT_BAD_REQUEST, "bad request: JSON text frames up to 64 KiB")
                return
            await self.session.receive(text_data)
            return
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self.send_envelope("error", {"code": 100, "message": "send JSON text frames up to 64 KiB"})
            return
        try:
            frame = loads_json(text_data)  # bounded nesting: a deep frame is a ValueError, not a crash
            if not isinstance(frame, dict):
                raise ValueError
        except ValueError:
            await self.send_envelope("error", {"code": 100, "message": "frames must be JSON objects"})
            return
        request_id, method = frame.get("id"), frame.get("method")
        params = frame.get("params") or {}
        handler = getattr(self, f"cmd_{method}", None) if isinstance(method, str) else None
        try:
            if handler is None:
                raise CommandError(104, f"unknown method {method!r}")
            if not isinstance(params, dict):
                raise CommandError(100, "params must be an object")
            if method not in ("connect", "ping") and not self.connected:
                raise CommandError(101, "send connect first")
            result = await handler(params)
        except CommandError as exc:
            await self.send_envelope("error", {"code": exc.code, "message": str(exc)}, request_id)
            return
        except (RedisError, TimeoutError) as exc:
            log.warning("hub %s failed, Redis unavailable: %s", method, exc)
            await self.send_envelope("error", {"code": UNAVAILABLE, "message": "the realtime store (Redis) is "
                                               "unavailable; nothing was changed, retry shortly"}, request_id)
            return
        self.out.push(envelope(method, result, request_id))
        if method == "subscribe":
            self._release(result["channel"])
        await self.out.drain()

    # --- commands -----------------------------------------------------------
    async def cmd_ping(self, params: dict) -> dict:
        return {}

    async def cmd_connect(self, params: dict) -> dict:
        token = params.get("token")
        if token:
            self.principal = await run_sync(resolve_principal, f"token={token}".encode(), [])
        if self.principal is None or not self.principal.is_authenticated:
            raise CommandError(109, "unauthorized: connect with a valid JWT (params.token) or a session")
        self.connected = True
        await self.listen_control()
        return {"client": self.client_id, "user": self._user_label(), "tenant_id": self.principal.tenant_id}

    def _channel(self, params: dict) -> Channel:
        try:
            return Channel.parse(params.get("channel"))
        except ChannelError as exc:
            raise CommandError(102, str(exc))

    def _readable(self, params: dict) -> Channel:
        channel = self._channel(params)
        if not can_subscribe(self.principal, channel):
            raise CommandError(103, f"permission denied for channel {channel.name}")
        return channel

    async def cmd_subscribe(self, params: dict) -> dict:
        channel = self._readable(params)
        if channel.name in self.subscriptions:
            raise CommandError(105, f"already subscribed to {channel.name}")
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise CommandError(106, f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        recover = bool(params.get("recover"))
        try:
            offset = int(params.get("offset", 0)) if recover else 0
        except (TypeError, ValueError):
            raise CommandError(100, "offset must be a whole number")
        # Subscribe before reading the position so nothing published in between is lost; what
        # arrives before the reply is held (see _release) and filtered by offset.
        self.subscriptions[channel.name] = channel
        self._held[channel.name] = []
        try:
            return await self._start_subscription(channel, params, recover, offset)
        except BaseException:  # a failed subscribe leaves nothing behind (broker, held messages)
            self._held.pop(channel.name, None)
            if self.subscriptions.pop(channel.name, None) is not None:
                await self._unlisten(channel.name)
            raise

    async def _start_subscription(self, channel: Channel, params: dict, recover: bool, offset: int) -> dict:
        await get_broker().subscribe(keys.hub_pubsub(channel.name), self)
        if params.get("join_leave"):
            self.join_leave.add(channel.name)
            await get_broker().subscribe(keys.hub_presence_pubsub(channel.name), self)
        result: dict = {"channel": channel.name}
        if recover:
            recovery = await run_sync(hub.recover, channel.name, offset, str(params.get("epoch", "")))
            result.update(recovered=recovery.recovered, publications=recovery.publications,
                          offset=recovery.offset, epoch=recovery.epoch)
        else:
            offset, epoch = await run_sync(hub.stream_position, channel.name)
            result.update(offset=offset, epoch=epoch)
        self._last_offset[channel.name] = result["offset"]
        await self._join(channel.name)
        return result

    async def cmd_unsubscribe(self, params: dict) -> dict:
        channel = self._channel(params)
        if self.subscriptions.pop(channel.name, None) is None:
            raise CommandError(107, f"not subscribed to {channel.name}")
        await self._unlisten(channel.name)
        await self._leave(channel.name)
        return {"channel": channel.name}

    async def cmd_publish(self, params: dict) -> dict:
        channel = self._channel(params)
        if not can_publish(self.principal, channel):
            raise CommandError(103, f"permission denied: you may not publish to {channel.name}")
        if "data" not in params:
            raise CommandError(100, "publish needs params.data")
        key = params.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 128):
            raise CommandError(100, "idempotency_key must be a string of 1..128 characters")
        publication = await run_sync(hub.publish, channel.name, params["data"], key)
        return {"channel": channel.name, "offset": publication.offset, "epoch": publication.epoch,
                "duplicate": publication.duplicate}

    async def cmd_presence(self, params: dict) -> dict:
        channel = self._readable(params)
        return {"channel": channel.name, "clients": await run_sync(hub.presence, channel.name)}

    async def cmd_presence_stats(self, params: dict) -> dict:
        channel = self._readable(params)
        return {"channel": channel.name, **await run_sync(hub.presence_stats, channel.name)}

    async def cmd_history(self, params: dict) -> dict:
        channel = self._readable(params)
        try:
            limit = max(1, min(int(params.get("limit", 100)), hub.HISTORY_SIZE))
            since = params.get("since_offset")
            since = None if since is None else int(since)
        except (TypeError, ValueError):
            raise CommandError(100, "limit and since_offset must be whole numbers")
        publications = await run_sync(hub.history, channel.name, since, limit)
        offset, epoch = await run_sync(hub.stream_position, channel.name)
        return {"channel": channel.name, "publications": publications, "offset": offset, "epoch": epoch}

    # --- delivery (called by the broker, synchronously) -----------------------
    def deliver(self, redis_channel: str, message: dict) -> None:
        if redis_channel == self.control_channel:
            self._control(message)
            return
        presence = redis_channel.startswith(PRESENCE_PREFIX)
        name = redis_channel[len(PRESENCE_PREFIX if presence else HUB_PREFIX):]
        if name not in self.subscriptions:
            return
        held = self._held.get(name)
        if held is not None:
            held.append((redis_channel, message))
            return
        if presence:
            self._presence_notice(name, message)
            return
        offset = message["offset"]
        if offset <= self._last_offset.get(name, 0):
            return  # already sent (recovery, or the position read after subscribing)
        if self.out.backlog() > MAX_BACKLOG_BYTES:
            self._fall_behind(name)
            return
        self._last_offset[name] = offset
        text, frame = (cf.publication_frame if self.session is not None else publication_frame)(name, message)
        self.out.push(text, frame)

    def on_lag(self, redis_channel: str) -> None:
        # A lost join/leave notice is not data: presence can always be re-read.
        if redis_channel.startswith(HUB_PREFIX):
            name = redis_channel[len(HUB_PREFIX):]
            held = self._held.get(name)
            if held is not None:
                held.append((redis_channel, None))
            else:
                self._fall_behind(name)

    def _release(self, name: str) -> None:
        """After the subscribe reply: what arrived while it was being prepared, in arrival order."""
        for redis_channel, message in self._held.pop(name, ()):
            if message is None:
                self.on_lag(redis_channel)
            else:
                self.deliver(redis_channel, message)

    def _presence_notice(self, channel: str, message: dict) -> None:
        kind = "join" if "join" in message else "leave"
        if message[kind].get("client") == self.client_id:  # no echo of one's own presence
            return
        if self.session is not None:
            self.out.push(cf.push(channel, kind, {"info": cf.client_info(message[kind])}))
        else:
            self.out.push(envelope(kind, {"channel": channel, "info": message[kind]}))

    def _fall_behind(self, channel: str) -> None:
        if self.subscriptions.pop(channel, None) is None:
            return
        # No longer refreshed, its presence expires unless it subscribes again (a leave here
        # could race with that subscribe's join).
        presence_registry().discard(channel, self.client_id)
        # The notice goes out even above the bound: it is the one frame the client must get.
        if self.session is not None:  # 2500 "insufficient state": the SDK resubscribes with recovery
            self.out.push(cf.push(channel, "unsubscribe", {"code": cf.UNSUBSCRIBE_INSUFFICIENT,
                                                           "reason": "insufficient state"}))
        else:
            self.out.push(envelope("unsubscribe", {
            "channel": channel, "code": FELL_BEHIND,
                "reason": "fell behind; subscribe again with recover=true and your last offset and epoch",
                "offset": self._last_offset.get(channel, 0)}))
        self._spawn(self._forget(channel))

    async def _forget(self, channel: str) -> None:
        if channel not in self.subscriptions:  # unless the client subscribed again meanwhile
            await self._unlisten(channel)

    async def _unlisten(self, channel: str) -> None:
        broker = get_broker()
        await broker.unsubscribe(keys.hub_pubsub(channel), self)
        if channel in self.join_leave:
            self.join_leave.discard(channel)
            await broker.unsubscribe(keys.hub_presence_pubsub(channel), self)

    def _spawn(self, coro: Coroutine) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- presence -------------------------------------------------------------
    def _user_label(self) -> str:
        return self.principal.actor_id if self.principal is not None else "anonymous"

    def _presence_info(self) -> dict:
        info: dict = {"client": self.client_id, "user": self._user_label()}
        if self.conn_info is not None:
            info["conn_info"] = self.conn_info
        return info

    async def _join(self, channel: str) -> None:
        await run_sync(hub.presence_join, channel, self.client_id, self._presence_info())
        presence_registry().add(channel, self.client_id)

    async def _leave(self, channel: str) -> None:
        presence_registry().discard(channel, self.client_id)
        await run_sync(hub.presence_leave, channel, self.client_id, self._presence_info())
