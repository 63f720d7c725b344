"""The interactive docs page (a module apart: drf_spectacular.views imports the schema class)."""

from __future__ import annotations

from drf_spectacular.views import SpectacularSwaggerView


class SwaggerView(SpectacularSwaggerView):
    # Only GET: its HTML renderer has no template for OPTIONS' metadata (an OPTIONS was a 500).
    http_method_names = ["get", "head"]
