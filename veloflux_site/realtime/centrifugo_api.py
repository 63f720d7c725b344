"""Centrifugo's server HTTP API, as a compatibility mode: ``POST /api/<method>``, so Centrifugo's
server libraries (the ``cent`` Python client: ``Client("https://<host>/api", api_key)``) work against us.

Methods: publish, broadcast, presence, presence_stats, history, unsubscribe, disconnect. The
caller presents the platform's hub API key (``VF_REALTIME_API_KEY``) as ``X-API-Key: <key>`` or
``Authorization: apikey <key>``; it may act on every channel, like Centrifugo's API key, so it is
a platform credential and never a tenant's. Empty setting: the mode is off (401).

As in Centrifugo, a command's outcome is HTTP 200 with ``{"result": ...}`` or ``{"error": {"code",
"message"}}`` (102 unknown channel, 107 bad request, 112 unrecoverable position). A body that is not
the documented shape is a 400 with our error envelope; a missing or wrong key a 401.
"""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from veloflux_site.api.parsers import BoundedJSONParser
from veloflux_site.api.schema import error
from veloflux_site.api.views import ApiView
from veloflux_site.realtime import centrifugo as cf
from veloflux_site.realtime import hub
from veloflux_site.realtime.hub_key import HasHubKey, HubKeyAuthentication
from veloflux_site.realtime.permissions import Channel, ChannelError
from veloflux_site.realtime.strict_fields import StrictBooleanField, StrictCharField, StrictIntegerField
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


class CommandFailed(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


# --- request bodies (JSON only, each field exactly its schema type) ------------------
def _channel_field() -> StrictCharField:
    # Any string: one that is not a channel is Centrifugo's error 102 in a 200, not a 400.
    return StrictCharField(max_length=256, allow_blank=True, trim_whitespace=False)


def _text(max_length: int, **options) -> StrictCharField:
    return StrictCharField(max_length=max_length, trim_whitespace=False, **options)


class PublishBody(serializers.Serializer):
    channel = _channel_field()
    data = serializers.JSONField(allow_null=True)
    idempotency_key = _text(128, required=False)


class BroadcastBody(serializers.Serializer):
    channels = serializers.ListField(child=_channel_field(), min_length=1, max_length=100)
    data = serializers.JSONField(allow_null=True)
    idempotency_key = _text(128, required=False)


class ChannelBody(serializers.Serializer):
    channel = _channel_field()


class StreamPositionBody(serializers.Serializer):
    offset = StrictIntegerField(min_value=0, default=0)
    epoch = _text(64, allow_blank=True, default="")


class HistoryBody(ChannelBody):
    limit = StrictIntegerField(min_value=-1, max_value=hub.HISTORY_SIZE, default=0)
    since = StreamPositionBody(required=False)
    reverse = StrictBooleanField(default=False)


class UnsubscribeBody(ChannelBody):
    user = _text(64)
    client = _text(64, required=False, allow_blank=True)


class DisconnectCodeBody(serializers.Serializer):
    code = StrictIntegerField(min_value=3000, max_value=4999)
    reason = _text(200, allow_blank=True, default="")


class DisconnectBody(serializers.Serializer):
    user = _text(64)
    client = _text(64, required=False, allow_blank=True)
    disconnect = DisconnectCodeBody(required=False)


# Centrifugo's reply (its protocol, not our HTTP error envelope): a command that failed is a 200 whose
# ``error`` is Centrifugo's {code, message} with Centrifugo's numeric codes. Named after the protocol.
class CentrifugoReplyErrorSerializer(serializers.Serializer):
    code = serializers.IntegerField(help_text="Centrifugo's error code: 102 unknown channel, 107 bad request, "
                                              "112 unrecoverable position.")
    message = serializers.CharField()


class CentrifugoReplySerializer(serializers.Serializer):
    result = serializers.DictField(required=False, help_text="The method's result, as Centrifugo answers it.")
    error = CentrifugoReplyErrorSerializer(required=False, help_text="The command failed (still HTTP 200).")


# --- methods -------------------------------------------------------------------
def _channel(name: str) -> str:
    try:
        return Channel.parse(name).name
    except ChannelError:
        raise CommandFailed(cf.UNKNOWN_CHANNEL, "unknown channel")


def _publish(data: dict) -> dict:
    publication = hub.publish(_channel(data["channel"]), data["data"], data.get("idempotency_key"))
    return {"offset": publication.offset, "epoch": publication.epoch}


def _broadcast(data: dict) -> dict:
    responses = []
    for name in data["channels"]:
        try:
            responses.append({"result": _publish({**data, "channel": name})})
        except CommandFailed as failed:
            responses.append({"error": {"code": failed.code, "message": str(failed)}})
    return {"responses": responses}


def _presence(data: dict) -> dict:
    clients = hub.presence(_channel(data["channel"]))
    return {"presence": {client_id: cf.client_info(info) for client_id, info in clients.items()}}


def _presence_stats(data: dict) -> dict:
    return hub.presence_stats(_channel(data["channel"]))


def _history(data: dict) -> dict:
    channel = _channel(data["channel"])
    offset, epoch = hub.stream_position(channel)
    since = data.get("since")
    if since is not None and since["epoch"] not in ("", epoch):
        raise CommandFailed(cf.UNRECOVERABLE_POSITION, "unrecoverable position")
    limit = data["limit"]
    publications = [] if limit == 0 else hub.history_page(
        channel, None if since is None else since["offset"], hub.HISTORY_SIZE if limit < 0 else limit, data["reverse"])
    return {"publications": publications, "offset": offset, "epoch": epoch}


def _order(user: str, order: dict) -> dict:
    """To every web process: the hub connections of ``user`` listen on its control channel."""
    get_redis().publish(keys.hub_user_control(user), json.dumps(order, separators=(",", ":")))
    return {}


def _unsubscribe(data: dict) -> dict:
    return _order(data["user"], {"control": "unsubscribe", "channel": _channel(data["channel"]),
                                 "client": data.get("client") or ""})


def _disconnect(data: dict) -> dict:
    disconnect = data.get("disconnect") or {"code": cf.DISCONNECT_FORCE_NOTHING, "reason": "force disconnect"}
    return _order(data["user"], {"control": "disconnect", "code": disconnect["code"],
                                 "reason": disconnect["reason"], "client": data.get("client") or ""})


# --- views -----------------------------------------------------------------------
class CentrifugoApiView(ApiView):
    # The platform's hub key, never a tenant's credential (see hub_key.py).
    authentication_classes = [HubKeyAuthentication]
    permission_classes = [HasHubKey]
    parser_classes = [BoundedJSONParser]  # Centrifugo's API takes JSON only
    run = staticmethod(_publish)

    def permission_denied(self, request, message=None, code=None):
        # The key is the only permission: a refusal is always "present the key" (401), with the way to do it.
        raise exceptions.NotAuthenticated(message)

    def post(self, request):
        data = self.validated()
        try:
            return Response({"result": type(self).run(data)})
        except CommandFailed as failed:
            return Response({"error": {"code": failed.code, "message": str(failed)}})


_RESPONSES = {
    200: CentrifugoReplySerializer,
    400: error("The body is not the method's documented shape (a command that fails is a 200 with Centrifugo's "
               "error)."),
    401: error("Missing or wrong hub API key (or the mode is off: VF_REALTIME_API_KEY is empty)."),
}


def _view(method: str, body: type[serializers.Serializer], func) -> type[CentrifugoApiView]:
    decorated = extend_schema(operation_id=f"centrifugo_{method}", request=body, responses=_RESPONSES,
                              tags=["centrifugo-compat"],
                              description=f"Centrifugo's server API method `{method}` (compatibility mode).")
    post = decorated(lambda self, request: CentrifugoApiView.post(self, request))
    return type(f"Centrifugo{method.title().replace('_', '')}View", (CentrifugoApiView,),
                {"serializer_class": body, "run": staticmethod(func), "post": post})


VIEWS = {
    "publish": _view("publish", PublishBody, _publish),
    "broadcast": _view("broadcast", BroadcastBody, _broadcast),
    "presence": _view("presence", ChannelBody, _presence),
    "presence_stats": _view("presence_stats", ChannelBody, _presence_stats),
    "history": _view("history", HistoryBody, _history),
    "unsubscribe": _view("unsubscribe", UnsubscribeBody, _unsubscribe),
    "disconnect": _view("disconnect", DisconnectBody, _disconnect),
}
