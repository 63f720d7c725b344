"""ASGI entry: HTTP to Django, WebSockets to Channels (authenticated like the API)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "veloflux_site.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django_app = get_asgi_application()

from tenants.channels_auth import PrincipalAuthMiddleware, browser_origin_validator  # noqa: E402
from veloflux_site.api.body_limit import BodySizeLimit  # noqa: E402
from veloflux_site.routing import websocket_urlpatterns  # noqa: E402
from veloflux_site.storage.connection import warn_if_not_durable  # noqa: E402

warn_if_not_durable()

application = ProtocolTypeRouter({
    "http": BodySizeLimit(django_app),
    "websocket": browser_origin_validator(PrincipalAuthMiddleware(URLRouter(websocket_urlpatterns))),
})
