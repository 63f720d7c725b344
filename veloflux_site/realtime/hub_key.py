"""The platform's hub API key (``VF_REALTIME_API_KEY``) as DRF authentication and permission classes.

Centrifugo's server API compatibility mode (``centrifugo_api.py``) is authenticated by this key alone:
``X-API-Key: <key>`` or ``Authorization: apikey <key>``. It is a platform credential (it acts on every
channel), never a tenant's, so no tenant credential is read on those views. Declared on the view, so
the isolation matrix (``platform_key``) and the OpenAPI schema (security scheme ``hubApiKey``, 401 as
the only refusal) read it from there.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

KEY_MESSAGE = ("Present the hub API key as 'X-API-Key: <key>' or 'Authorization: apikey <key>' "
               "(VF_REALTIME_API_KEY).")


class HubKeyHolder:
    """Whoever presented the platform's hub key: no user, no tenant."""

    is_authenticated = True
    is_anonymous = False
    is_platform_admin = False
    tenant_id = None
    role = None
    user = None
    actor_id = "hub-api-key"
    actor_label = "the hub API key"

    def has_role(self, minimum: str) -> bool:
        return False

    def __str__(self) -> str:
        return self.actor_label


def presented_key(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "apikey" and value.strip():
        return value.strip()
    return request.META.get("HTTP_X_API_KEY", "").strip()


def is_hub_key(presented: str) -> bool:
    expected = settings.REALTIME_API_KEY
    # Empty setting: the mode is off, no key (not even an empty one) is the hub key.
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


class HubKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        if not is_hub_key(presented_key(request)):
            return None  # HasHubKey refuses it: a 401 saying how to present the key
        return HubKeyHolder(), None

    def authenticate_header(self, request) -> str:
        return 'apikey realm="veloflux-hub"'  # present: DRF answers 401 (not 403) without the key


class HasHubKey(BasePermission):
    # Read by tests/test_isolation_matrix.py and VeloFluxAutoSchema: only the hub key passes (a 401 otherwise).
    platform_key = True
    message = KEY_MESSAGE

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, HubKeyHolder)


class HubKeyScheme(OpenApiAuthenticationExtension):
    target_class = HubKeyAuthentication
    name = "hubApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key",
                "description": "The platform's hub API key, VF_REALTIME_API_KEY (also accepted as "
                               "'Authorization: apikey <key>'). Empty setting: the compatibility mode is off."}
