"""OpenAPI security schemes for our authentication classes (drf-spectacular extensions).

Without these the schema has no security schemes and the interactive docs offer no way to
authorize; imported from ``TenantsConfig.ready``.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.JWTAuthentication"
    name = "jwt"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token from POST /api/auth/login (or /api/auth/refresh)."}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.APIKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key",
                "description": "A key from POST /api/auth/api-keys (also accepted as 'Authorization: Api-Key ...')."}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME,
                "description": "The web UI's session (log in at /login); writes need the X-CSRFToken header."}
