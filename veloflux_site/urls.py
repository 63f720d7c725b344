from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from balancer import views as balancer_pages
from tenants import views as tenant_pages
from veloflux_site import health
from veloflux_site.api.schema_views import SwaggerView

api_patterns = [
    path("", include("tenants.api.urls")),
    path("", include("balancer.api.urls")),
    path("", include("cluster.api.urls")),
    path("", include("veloflux_site.realtime.urls")),
    path("status/health", health.readiness, name="readiness"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    path("", health.root, name="root"),
    path("health", health.liveness, name="liveness"),
    path("metrics", health.prometheus_metrics, name="prometheus"),
    path("api/", include(api_patterns)),
    path("dashboard", balancer_pages.dashboard, name="dashboard"),
    path("login", tenant_pages.login_page, name="login"),
    path("logout", tenant_pages.logout_page, name="logout"),
    # The browsable API's log in / log out links.
    path("api-auth/", include(([
        path("login/", tenant_pages.login_page, name="login"),
        path("logout/", tenant_pages.logout_page, name="logout"),
    ], "rest_framework"))),
]

handler400 = "veloflux_site.api.errors.handler400"
handler403 = "veloflux_site.api.errors.handler403"
handler404 = "veloflux_site.api.errors.handler404"
handler500 = "veloflux_site.api.errors.handler500"
