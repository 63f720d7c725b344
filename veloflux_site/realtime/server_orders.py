"""The server API's orders to hub connections (Centrifugo's ``unsubscribe`` and ``disconnect``).

Every connection of a user listens, through the process's broker, on the user's control channel
(``keys.hub_user_control``): the API publishes an order there once and every web process's
connections of that user act on it, whichever protocol they speak.
"""

from __future__ import annotations

import contextlib

from redis.exceptions import RedisError

from veloflux_site.realtime import centrifugo as cf
from veloflux_site.realtime.broker import get_broker
from veloflux_site.realtime.outbox import envelope
from veloflux_site.storage import keys


class ServerOrders:
    """Mixed into HubConsumer (uses its principal, subscriptions, outbox and helpers)."""

    control_channel: str | None = None

    async def listen_control(self) -> None:
        """Listen for the server API's orders to this connection's user (after every successful connect)."""
        user = getattr(self.principal, "user", None)
        wanted = keys.hub_user_control(user.id) if user is not None else None
        if wanted == self.control_channel:
            return
        if self.control_channel is not None:
            await get_broker().unsubscribe(self.control_channel, self)
        self.control_channel = wanted
        if wanted is not None:
            await get_broker().subscribe(wanted, self)

    def _control(self, order: dict) -> None:
        """unsubscribe {channel} or disconnect {code, reason}, from the server API (any web process)."""
        if order.get("client") not in (None, "", self.client_id):
            return  # meant for another connection of the same user
        if order.get("control") == "disconnect":
            code = order.get("code") or cf.DISCONNECT_FORCE_NOTHING
            self._spawn(self.close_with(int(code), str(order.get("reason") or "disconnected by the server")))
            return
        channel = order.get("channel")
        if order.get("control") != "unsubscribe" or self.subscriptions.pop(channel, None) is None:
            return
        self._held.pop(channel, None)
        if self.session is not None:
            self.out.push(cf.push(channel, "unsubscribe", {"code": cf.UNSUBSCRIBE_SERVER,
                                                           "reason": "server unsubscribe"}))
        else:
            self.out.push(envelope("unsubscribe", {"channel": channel, "code": cf.UNSUBSCRIBE_SERVER,
                                                   "reason": "unsubscribed by the server"}))
        self._spawn(self._unlisten_and_leave(channel))

    async def _unlisten_and_leave(self, channel: str) -> None:
        await self._unlisten(channel)
        with contextlib.suppress(RedisError):  # presence then expires by itself
            await self._leave(channel)
