"""WebSocket routes: the hub, and the streams the apps register in settings.REALTIME_STREAMS
(name -> dotted path of a StreamConsumer), so this module names no app."""

from django.conf import settings
from django.urls import path
from django.utils.module_loading import import_string

from veloflux_site.realtime.consumers import HubConsumer

websocket_urlpatterns: list = [
    path("connection/websocket", HubConsumer.as_asgi()),
    *[path(f"api/ws/{name}", import_string(consumer).as_asgi())
      for name, consumer in settings.REALTIME_STREAMS.items()],
]
