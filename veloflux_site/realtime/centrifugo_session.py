"""One hub connection speaking Centrifugo's client protocol (see centrifugo.py for the frames).

The session translates commands into the hub connection's own operations (HubConsumer: the
same subscribe/recover/publish/presence/history as the seeds' protocol), so permissions,
recovery, idempotent publish and the delivery guarantee do not depend on the protocol.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from redis.exceptions import RedisError

from veloflux_site.realtime import centrifugo as cf
from veloflux_site.realtime import hub
from veloflux_site.realtime.commands import CommandError, run_sync
from veloflux_site.realtime.connect_auth import ConnectRefused, principal_for_token
from veloflux_site.realtime.pings import ping_registry
from veloflux_site.realtime.tokens import SUBSCRIPTION, HubTokenError, verify

if TYPE_CHECKING:
    from veloflux_site.realtime.consumers import HubConsumer

log = logging.getLogger("veloflux.realtime")

VERSION = "veloflux"
# The seeds' protocol answers a bad parameter with 100; Centrifugo calls that 107 (100 is "internal").
_CODE_MAP = {100: cf.BAD_REQUEST}


class CentrifugoSession:
    def __init__(self, consumer: HubConsumer):
        self.hub = consumer
        self.expires_at: float | None = None  # the connection token's exp, when it has one
        self.last_seen = time.monotonic()
        self._to_release: list[str] = []  # channels subscribed by this command: held messages go after the reply

    # --- frames -------------------------------------------------------------
    async def receive(self, text: str) -> None:
        self.last_seen = time.monotonic()
        try:
            commands = cf.parse_commands(text)
        except ValueError:
            await self.hub.close_with(cf.DISCONNECT_BAD_REQUEST, "bad request")
            return
        for command in commands:
            if not isinstance(command, dict):
                await self.hub.close_with(cf.DISCONNECT_BAD_REQUEST, "bad request")
                return
            if command:  # {} answers a ping: nothing to do beyond last_seen
                await self._handle(command)
        await self.hub.out.drain()

    async def _handle(self, command: dict) -> None:
        request_id = command.get("id")
        self._to_release = []
        method = next((m for m in cf.METHODS if m in command), None)
        params = command.get(method) if method else None
        if method == "send":
            return  # an asynchronous message for the application backend: none is configured
        if method is None or not isinstance(params, dict):
            self.hub.out.push(cf.error_reply(request_id, cf.METHOD_NOT_FOUND if method is None else cf.BAD_REQUEST,
                                             "method not found" if method is None else "bad request"))
            return
        if method != "connect" and not self.hub.connected:
            await self.hub.close_with(cf.DISCONNECT_BAD_REQUEST, "bad request: send connect first")
            return
        try:
            self.hub.out.push(await self._answer(request_id, method, params))
        except ConnectRefused as refused:
            await self.hub.close_with(cf.DISCONNECT_INVALID_TOKEN, str(refused))
        finally:
            # What arrived for channels this command subscribed goes out after its reply (also when a later
            # step failed: held messages must never pile up).
            for channel in self._to_release:
                self.hub._release(channel)
            self._to_release = []

    async def _answer(self, request_id, method: str, params: dict) -> str:
        try:
            return cf.reply(request_id, method, await getattr(self, f"cmd_{method}")(params))
        except CommandError as exc:
            return cf.error_reply(request_id, _CODE_MAP.get(exc.code, exc.code), str(exc))
        except (RedisError, TimeoutError) as exc:
            log.warning("hub %s failed, Redis unavailable: %s", method, exc)
            return cf.error_reply(request_id, cf.NOT_AVAILABLE, "not available")

    # --- connection ---------------------------------------------------------
    def _expiry(self) -> dict:
        if self.expires_at is None:
            return {}
        return {"expires": True, "ttl": max(1, int(self.expires_at - time.time()))}

    async def cmd_connect(self, params: dict) -> dict:
        if self.hub.connected:
            raise CommandError(cf.BAD_REQUEST, "already connected")
        token = params.get("token")
        claims: dict = {}
        if token:
            if not isinstance(token, str):
                raise CommandError(cf.BAD_REQUEST, "token must be a string")
            principal, claims = await principal_for_token(token)
            self.hub.principal = principal
            self.expires_at = float(claims["exp"])
        elif self.hub.principal is None or not self.hub.principal.is_authenticated:
            raise CommandError(cf.UNAUTHORIZED, "unauthorized: connect with a token (POST /api/realtime/token)")
        if isinstance(claims.get("info"), dict):
            self.hub.conn_info = claims["info"]
        self.hub.connected = True
        await self.hub.listen_control()
        ping_registry().add(self)
        result = {"client": self.hub.client_id, "version": VERSION, **self._expiry(),
                  "ping": int(settings.REALTIME_PING_INTERVAL), "pong": True}
        subs = await self._server_side_subscriptions(claims.get("channels") or [], params.get("subs") or {})
        if subs:
            result["subs"] = subs
        return result

    async def _server_side_subscriptions(self, channels: list, positions: dict) -> dict:
        """The token's ``channels``: subscribed at connect (those the user may still read)."""
        subs = {}
        for name in channels[:16]:
            if not isinstance(name, str) or name in self.hub.subscriptions:
                continue
            try:
                channel = self.hub._readable({"channel": name})
            except CommandError:
                continue
            position = positions.get(name) if isinstance(positions.get(name), dict) else {}
            subs[name] = await self._subscribe(channel.name, position, server_side=True)
        return subs

    async def cmd_refresh(self, params: dict) -> dict:
        token = params.get("token")
        if not isinstance(token, str) or not token:
            raise CommandError(cf.BAD_REQUEST, "refresh needs a token")
        principal, claims = await principal_for_token(token)
        if principal.actor_id != self.hub.principal.actor_id or principal.tenant_id != self.hub.principal.tenant_id:
            raise ConnectRefused("invalid token: issued for another user")
        self.hub.principal = principal
        self.expires_at = float(claims["exp"])
        await self.hub.listen_control()
        return {"client": self.hub.client_id, "version": VERSION, **self._expiry()}

    # --- subscriptions ------------------------------------------------------
    def _subscription_token(self, params: dict, channel: str) -> dict:
        """A subscription token, when one is given, must be valid and for this user and channel."""
        token = params.get("token")
        if not token:
            return {}
        try:
            claims = verify(str(token), SUBSCRIPTION)
        except HubTokenError as exc:
            raise CommandError(cf.TOKEN_EXPIRED if exc.expired else cf.PERMISSION_DENIED, str(exc))
        if claims.get("channel") != channel or claims.get("sub") != self.hub.principal.actor_id:
            raise CommandError(cf.PERMISSION_DENIED, "permission denied: token is for another channel or user")
        return {"expires": True, "ttl": max(1, int(claims["exp"] - time.time()))}

    async def cmd_subscribe(self, params: dict) -> dict:
        channel = self.hub._readable(params)
        expiry = self._subscription_token(params, channel.name)
        return {**await self._subscribe(channel.name, params), **expiry}

    async def _subscribe(self, channel: str, params: dict, server_side: bool = False) -> dict:
        recover = bool(params.get("recover"))
        seeds = await self.hub.cmd_subscribe({"channel": channel, "recover": recover,
                                              "offset": params.get("offset") or 0, "epoch": params.get("epoch") or "",
                                              "join_leave": bool(params.get("join_leave"))})
        self._to_release = [*self._to_release, channel]
        result = {"recoverable": True, "positioned": True, "epoch": seeds["epoch"], "offset": seeds["offset"]}
        if recover:
            result.update(was_recovering=True, recovered=seeds["recovered"], publications=seeds["publications"])
        return result

    async def cmd_sub_refresh(self, params: dict) -> dict:
        channel = self.hub._channel(params)
        if channel.name not in self.hub.subscriptions:
            raise CommandError(cf.BAD_REQUEST, f"not subscribed to {channel.name}")
        if not params.get("token"):
            raise CommandError(cf.BAD_REQUEST, "sub_refresh needs a token")
        return self._subscription_token(params, channel.name)

    async def cmd_unsubscribe(self, params: dict) -> dict:
        try:
            await self.hub.cmd_unsubscribe(params)
        except CommandError as exc:
            if exc.code != 107:  # not subscribed: Centrifugo answers that with success
                raise
        return {}

    # --- channel operations -------------------------------------------------
    async def cmd_publish(self, params: dict) -> dict:
        await self.hub.cmd_publish(params)
        return {}

    async def cmd_presence(self, params: dict) -> dict:
        channel = self.hub._readable(params)
        clients = await run_sync(hub.presence, channel.name)
        return {"presence": {client_id: cf.client_info(info) for client_id, info in clients.items()}}

    async def cmd_presence_stats(self, params: dict) -> dict:
        channel = self.hub._readable(params)
        return await run_sync(hub.presence_stats, channel.name)

    async def cmd_history(self, params: dict) -> dict:
        channel = self.hub._readable(params)
        try:
            limit = min(int(params.get("limit") or 0), hub.HISTORY_SIZE)
        except (TypeError, ValueError):
            raise CommandError(cf.BAD_REQUEST, "limit must be a whole number")
        since = params.get("since") if isinstance(params.get("since"), dict) else None
        offset, epoch = await run_sync(hub.stream_position, channel.name)
        if since is not None and since.get("epoch") not in (None, "", epoch):
            raise CommandError(cf.UNRECOVERABLE_POSITION, "unrecoverable position")
        publications: list[dict] = []
        if limit != 0:
            since_offset = None if since is None else int(since.get("offset") or 0)
            publications = await run_sync(hub.history_page, channel.name, since_offset,
                                          hub.HISTORY_SIZE if limit < 0 else limit, bool(params.get("reverse")))
        return {"publications": publications, "offset": offset, "epoch": epoch}

    async def cmd_rpc(self, params: dict) -> dict:
        raise CommandError(cf.METHOD_NOT_FOUND, "method not found: the hub has no RPC handlers")

    async def cmd_ping(self, params: dict) -> dict:
        return {}  # the old client-sent ping of the protocol's earlier versions

    # --- liveness (called by the ping task) ---------------------------------
    def overdue(self, now_monotonic: float, interval: float) -> int | None:
        """The disconnect code this connection has earned, if any: no pong, or its token expired unrefreshed."""
        # Pings go out every interval; one not answered by the next tick (half an interval later at most) is lost.
        if now_monotonic - self.last_seen > 1.5 * interval:
            return cf.DISCONNECT_NO_PONG
        if self.expires_at is not None and time.time() > self.expires_at + settings.REALTIME_EXPIRED_GRACE:
            return cf.DISCONNECT_EXPIRED
        return None
