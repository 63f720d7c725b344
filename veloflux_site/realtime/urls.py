from django.urls import path

from veloflux_site.realtime import api

urlpatterns = [
    path("realtime/publish", api.PublishView.as_view(), name="realtime-publish"),
    path("realtime/broadcast", api.BroadcastView.as_view(), name="realtime-broadcast"),
    path("realtime/presence", api.PresenceView.as_view(), name="realtime-presence"),
    path("realtime/history", api.HistoryView.as_view(), name="realtime-history"),
    path("ws/control", api.StreamControlView.as_view(), name="ws-control"),
    path("ws/force-update", api.ForceUpdateView.as_view(), name="ws-force-update"),
]
