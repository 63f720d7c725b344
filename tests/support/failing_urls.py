"""A URLconf for plumbing tests: the project's URLs plus views that fail on purpose
(an unexpected exception, a throttle), to see the error shape of what real views rarely do."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from veloflux_site.urls import urlpatterns as project_urlpatterns


class OncePerMinute(AnonRateThrottle):
    rate = "1/min"
    scope = "plumbing-test"


class ThrottledView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (OncePerMinute,)

    def get(self, request):
        return Response({"ok": True})


class BrokenApiView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get(self, request):
        raise RuntimeError("boom: a bug in an API view")


def broken_page(request):
    raise RuntimeError("boom: a bug in a plain view")


urlpatterns = [
    path("test/throttled", ThrottledView.as_view()),
    path("test/broken-api", BrokenApiView.as_view()),
    path("test/broken-page", broken_page),
    path("", include(project_urlpatterns)),
]

handler400 = "veloflux_site.api.errors.handler400"
handler403 = "veloflux_site.api.errors.handler403"
handler404 = "veloflux_site.api.errors.handler404"
handler500 = "veloflux_site.api.errors.handler500"
