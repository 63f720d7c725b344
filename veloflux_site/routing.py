"""WebSocket routes of every app."""

from django.urls import path

from veloflux_site.realtime.consumers import HubConsumer
from veloflux_site.realtime.streams import STREAMS

websocket_urlpatterns: list = [
    path("connection/websocket", HubConsumer.as_asgi()),
    *[path(f"api/ws/{name}", consumer.as_asgi()) for name, consumer in STREAMS.items()],
]
