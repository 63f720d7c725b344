"""Tokens for Centrifugo's SDKs: ``POST /api/realtime/token`` and ``POST /api/realtime/subscription-token``.

A front end gets them from its own back end or, logged in, from these endpoints, typically in
the SDK's ``getToken`` callback (the SDK calls it again when a token expires).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from veloflux_site.api.errors import ApiError
from veloflux_site.api.parsers import BoundedJSONParser
from veloflux_site.api.schema import error
from veloflux_site.api.views import ApiView
from veloflux_site.realtime import tokens
from veloflux_site.realtime.permissions import CHANNEL_PATTERN, Channel, ChannelError, can_subscribe
from veloflux_site.realtime.strict_fields import StrictIntegerField

MAX_TOKEN_CHANNELS = 16


def channel_field() -> serializers.RegexField:
    return serializers.RegexField(CHANNEL_PATTERN, max_length=256,
                                  help_text="tenant:<tenant_id>:<topic>, admin:<topic> or user:<user_id>",
                                  error_messages={"invalid": "invalid channel: use tenant:<tenant_id>:<topic>, "
                                                             "admin:<topic> or user:<user_id>"})


def _ttl_field() -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=86400, required=False,
                                    help_text="Seconds; capped at VF_REALTIME_TOKEN_TTL.")


class ConnectionTokenRequestSerializer(serializers.Serializer):
    ttl = _ttl_field()
    channels = serializers.ListField(child=channel_field(), required=False,
                                     max_length=MAX_TOKEN_CHANNELS,
                                     help_text="Server-side subscriptions made at connect (channels you may read).")
    info = serializers.DictField(required=False, help_text="Shown to others in presence as conn_info.")

    def validate_info(self, value: dict) -> dict:
        if len(str(value)) > 1024:
            raise serializers.ValidationError("info must be at most about 1 KiB")
        return value


class SubscriptionTokenRequestSerializer(serializers.Serializer):
    channel = channel_field()
    ttl = _ttl_field()


class ConnectionTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.IntegerField(help_text="Unix time (seconds).")


class SubscriptionTokenSerializer(ConnectionTokenSerializer):
    channel = serializers.CharField()


# Why these operations answer 403 and 404 (VeloFluxAutoSchema adds the Error envelope and the other codes).
_ERRORS = {403: error("Not a user (an API key cannot hold hub tokens), or the tenant is suspended."),
           404: error("A channel you may not read (or that does not exist), or an X-Tenant-ID that names no "
                      "tenant of yours.")}


def _user(principal):
    if principal.user is None:
        raise ApiError(403, "permission_denied", "Hub tokens are issued to users (log in, or use a user's JWT).")
    return principal.user


def _readable(principal, name: str, field: str) -> Channel:
    try:
        channel = Channel.parse(name)
    except ChannelError as exc:
        raise ApiError(400, "validation_error", str(exc), {field: [str(exc)]})
    if not can_subscribe(principal, channel):
        raise ApiError(404, "not_found", f"channel {name!r} not found")
    return channel


def _ttl(data: dict) -> int:
    longest = int(settings.REALTIME_TOKEN_TTL)
    return min(data.get("ttl") or longest, longest)


class ConnectionTokenView(ApiView):
    serializer_class = ConnectionTokenRequestSerializer
    parser_classes = [BoundedJSONParser]

    @extend_schema(operation_id="realtime_token_create", request=ConnectionTokenRequestSerializer,
                   responses={200: ConnectionTokenSerializer, **_ERRORS})
    def post(self, request):
        data = self.validated()
        user = _user(request.user)
        channels = [_readable(request.user, name, "channels").name for name in data.get("channels", [])]
        issued = tokens.issue_connection(user.id, request.user.tenant_id, user.auth_epoch, _ttl(data),
                                         channels=channels, info=data.get("info"))
        return Response({"token": issued.token, "expires_at": issued.expires_at})


class SubscriptionTokenView(ApiView):
    serializer_class = SubscriptionTokenRequestSerializer
    parser_classes = [BoundedJSONParser]

    @extend_schema(operation_id="realtime_subscription_token_create", request=SubscriptionTokenRequestSerializer,
                   responses={200: SubscriptionTokenSerializer, **_ERRORS})
    def post(self, request):
        data = self.validated()
        user = _user(request.user)
        channel = _readable(request.user, data["channel"], "channel")
        issued = tokens.issue_subscription(user.id, request.user.tenant_id, channel.name, _ttl(data))
        return Response({"token": issued.token, "channel": channel.name, "expires_at": issued.expires_at})
