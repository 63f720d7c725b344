"""WebSocket routes of every app."""

from django.urls import path

from veloflux_site.realtime.consumers import HubConsumer

websocket_urlpatterns: list = [
    path("connection/websocket", HubConsumer.as_asgi()),
]
