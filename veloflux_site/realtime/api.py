"""The hub's server API (publish, broadcast, presence, history) and the stream controls."""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from veloflux_site.api.errors import ApiError
from veloflux_site.api.parsers import BoundedJSONParser
from veloflux_site.api.views import ApiView
from veloflux_site.realtime import hub
from veloflux_site.realtime.permissions import Channel, ChannelError, can_publish, can_subscribe
from veloflux_site.realtime.strict_fields import StrictCharField
from veloflux_site.realtime.token_api import channel_field
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


# Exactly what the schema says is accepted (schemathesis: a schema-valid body is never a 400): the channel's
# pattern, any JSON as data (null included), the idempotency key as sent (a string, not trimmed to blank).
def _idempotency_key() -> StrictCharField:
    return StrictCharField(max_length=128, required=False, trim_whitespace=False)


class PublishSerializer(serializers.Serializer):
    channel = channel_field()
    data = serializers.JSONField(allow_null=True)
    idempotency_key = _idempotency_key()


class BroadcastSerializer(serializers.Serializer):
    channels = serializers.ListField(child=channel_field(), min_length=1, max_length=100)
    data = serializers.JSONField(allow_null=True)
    idempotency_key = _idempotency_key()


class ChannelQuerySerializer(serializers.Serializer):
    channel = channel_field()
    limit = serializers.IntegerField(min_value=1, max_value=hub.HISTORY_SIZE, default=100)
    # Offsets are stream ids' first part (64-bit unsigned in Redis); the bound keeps since_offset + 1 one of them.
    since_offset = serializers.IntegerField(min_value=0, max_value=2**63 - 1, required=False)


class PublicationOutSerializer(serializers.Serializer):
    channel = serializers.CharField()
    offset = serializers.IntegerField()
    epoch = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="true when the idempotency key was already used")


class BroadcastOutSerializer(serializers.Serializer):
    results = PublicationOutSerializer(many=True)


class PresenceOutSerializer(serializers.Serializer):
    channel = serializers.CharField()
    clients = serializers.DictField(child=serializers.DictField(), help_text="client id -> {user, ...}")
    num_clients = serializers.IntegerField()
    num_users = serializers.IntegerField()


class HistoryEntryOutSerializer(serializers.Serializer):
    offset = serializers.IntegerField()
    data = serializers.JSONField()


class HistoryOutSerializer(serializers.Serializer):
    channel = serializers.CharField()
    publications = HistoryEntryOutSerializer(many=True)
    offset = serializers.IntegerField()
    epoch = serializers.CharField()


def _channel(name: str, field: str = "channel") -> Channel:
    try:
        return Channel.parse(name)
    except ChannelError as exc:
        raise ApiError(400, "validation_error", str(exc), {field: [str(exc)]})


def _require_read(principal, channel: Channel) -> None:
    # 404 for another tenant's channel, like every other cross-tenant access.
    if not can_subscribe(principal, channel):
        raise ApiError(404, "not_found", f"channel {channel.name!r} not found")


def _require_publish(principal, channel: Channel) -> None:
    _require_read(principal, channel)
    if not can_publish(principal, channel):
        raise ApiError(403, "permission_denied", f"Your role may not publish to {channel.name}.")


def _publication(pub: hub.Publication) -> dict:
    return {"channel": pub.channel, "offset": pub.offset, "epoch": pub.epoch, "duplicate": pub.duplicate}


class PublishView(ApiView):
    serializer_class = PublishSerializer
    parser_classes = [BoundedJSONParser]  # data is JSON: a form cannot carry it (a documented form body was a 400)

    @extend_schema(responses={200: PublicationOutSerializer})
    def post(self, request):
        data = self.validated()
        channel = _channel(data["channel"])
        _require_publish(request.user, channel)
        return Response(_publication(hub.publish(channel.name, data["data"], data.get("idempotency_key"))))


class BroadcastView(ApiView):
    serializer_class = BroadcastSerializer
    parser_classes = [BoundedJSONParser]

    @extend_schema(responses={200: BroadcastOutSerializer})
    def post(self, request):
        data = self.validated()
        channels = [_channel(name, "channels") for name in data["channels"]]
        for channel in channels:  # all or nothing: check every channel before publishing to any
            _require_publish(request.user, channel)
        key = data.get("idempotency_key")
        results = [_publication(hub.publish(c.name, data["data"], key)) for c in channels]
        return Response({"results": results})


class PresenceView(ApiView):
    @extend_schema(parameters=[ChannelQuerySerializer], responses={200: PresenceOutSerializer})
    def get(self, request):
        query = self.validated(ChannelQuerySerializer, data=request.query_params.dict())
        channel = _channel(query["channel"])
        _require_read(request.user, channel)
        return Response({"channel": channel.name, "clients": hub.presence(channel.name),
                         **hub.presence_stats(channel.name)})


class HistoryView(ApiView):
    @extend_schema(parameters=[ChannelQuerySerializer], responses={200: HistoryOutSerializer})
    def get(self, request):
        query = self.validated(ChannelQuerySerializer, data=request.query_params.dict())
        channel = _channel(query["channel"])
        _require_read(request.user, channel)
        offset, epoch = hub.stream_position(channel.name)
        publications = hub.history(channel.name, query.get("since_offset"), query["limit"])
        return Response({"channel": channel.name, "publications": publications, "offset": offset, "epoch": epoch})


STREAM_NAMES = ("backends", "metrics", "status", "billing", "health")


class ControlSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=("refresh", "notice", "disconnect"))
    streams = serializers.ListField(child=serializers.ChoiceField(choices=STREAM_NAMES), required=False, default=list)
    message = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    tenant_id = serializers.CharField(max_length=64, required=False)

    def validate(self, attrs):
        if attrs["action"] == "notice" and not attrs["message"]:
            raise serializers.ValidationError({"message": ["a notice needs a message"]})
        return attrs


class ForceUpdateSerializer(serializers.Serializer):
    streams = serializers.ListField(child=serializers.ChoiceField(choices=STREAM_NAMES), required=False, default=list)
    tenant_id = serializers.CharField(max_length=64, required=False)


class CanControlStreams(BasePermission):
    """Tenant admins (their own tenant's streams) and platform admins (any tenant's, no X-Tenant-ID needed).

    A permission class, so a caller below admin gets 403 before their body is even read.
    """

    message = "Stream controls need the admin role or higher."
    read_role, write_role, needs_tenant = "admin", "admin", False  # read by tests/test_isolation_matrix.py

    def has_permission(self, request, view) -> bool:
        principal = request.user
        return bool(principal and principal.is_authenticated and principal.has_role("admin"))


class ControlOutSerializer(serializers.Serializer):
    action = serializers.CharField()
    streams = serializers.ListField(child=serializers.CharField())
    tenant_id = serializers.CharField(allow_null=True, help_text="null: every tenant (platform admins)")
    web_processes_reached = serializers.IntegerField()


def _send_control(request, action: str, data: dict) -> dict:
    """Publish a control message to every web process's streams of the caller's tenant.

    Tenant admins reach their own tenant's streams; platform admins every tenant's,
    or one with ``tenant_id``.
    """
    principal = request.user
    if principal.is_platform_admin:
        tenant_id = data.get("tenant_id")
    else:
        if data.get("tenant_id") not in (None, principal.tenant_id):
            raise ApiError(404, "not_found", f"tenant {data['tenant_id']!r} not found")
        tenant_id = principal.tenant_id
    message = {"action": action, "streams": data.get("streams") or [], "message": data.get("message", ""),
               "tenant_id": tenant_id}
    receivers = get_redis().publish(keys.events_channel("ws"), json.dumps(message, separators=(",", ":")))
    return {"action": action, "streams": message["streams"] or list(STREAM_NAMES), "tenant_id": tenant_id,
            "web_processes_reached": int(receivers)}


class StreamControlView(ApiView):
    permission_classes = (CanControlStreams,)
    serializer_class = ControlSerializer

    @extend_schema(responses={200: ControlOutSerializer})
    def post(self, request):
        data = self.validated()
        return Response(_send_control(request, data["action"], data))


class ForceUpdateView(ApiView):
    permission_classes = (CanControlStreams,)
    serializer_class = ForceUpdateSerializer

    @extend_schema(responses={200: ControlOutSerializer})
    def post(self, request):
        return Response(_send_control(request, "refresh", self.validated()))
