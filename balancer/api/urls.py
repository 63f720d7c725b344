"""Load balancer core and configuration endpoints (filled in by the balancer issue)."""

urlpatterns: list = []
