from django.urls import path

from veloflux_site.realtime import api, centrifugo_api, token_api

urlpatterns = [
    path("realtime/publish", api.PublishView.as_view(), name="realtime-publish"),
    path("realtime/broadcast", api.BroadcastView.as_view(), name="realtime-broadcast"),
    path("realtime/presence", api.PresenceView.as_view(), name="realtime-presence"),
    path("realtime/history", api.HistoryView.as_view(), name="realtime-history"),
    path("realtime/token", token_api.ConnectionTokenView.as_view(), name="realtime-token"),
    path("realtime/subscription-token", token_api.SubscriptionTokenView.as_view(), name="realtime-subscription-token"),
    path("ws/control", api.StreamControlView.as_view(), name="ws-control"),
    path("ws/force-update", api.ForceUpdateView.as_view(), name="ws-force-update"),
    # Centrifugo's server API (compatibility mode): cent's Client("<site>/api", key) posts to /api/<method>.
    *[path(method, view.as_view(), name=f"centrifugo-{method}") for method, view in centrifugo_api.VIEWS.items()],
]
