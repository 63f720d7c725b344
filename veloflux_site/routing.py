"""WebSocket routes of every app (the realtime issue fills these in)."""

websocket_urlpatterns: list = []
