from django.urls import path

from veloflux_site.realtime import api

urlpatterns = [
    path("realtime/publish", api.PublishView.as_view(), name="realtime-publish"),
    path("realtime/broadcast", api.BroadcastView.as_view(), name="realtime-broadcast"),
    path("realtime/presence", api.PresenceView.as_view(), name="realtime-presence"),
    path("realtime/history", api.HistoryView.as_view(), name="realtime-history"),
]
