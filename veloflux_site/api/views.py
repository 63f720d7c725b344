"""The base of every API view: actor for the audit log, validation helper,
browsable-API forms from a serializer class, tenant resolution."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.views import APIView

from veloflux_site.actor import Actor
from veloflux_site.api.client_ip import client_ip
from veloflux_site.api.errors import ApiError


class ApiMetadata(SimpleMetadata):
    """OPTIONS: a view without a request serializer (a POST that takes no body) describes no form
    (DRF's SimpleMetadata read the fields of None: a 500)."""

    def determine_actions(self, request, view) -> dict:
        if getattr(view, "serializer_class", None) is None:
            return {}
        return super().determine_actions(request, view)


class ApiView(APIView):
    serializer_class: Any = None
    metadata_class = ApiMetadata

    def get_serializer(self, *args, **kwargs):
        # The browsable API renders an HTML form from this.
        if self.serializer_class is None:
            return None
        return self.serializer_class(*args, **kwargs)

    def validated(self, serializer_class=None, data=None, partial: bool = False) -> dict:
        serializer_class = serializer_class or self.serializer_class
        source = self.request.data if data is None else data
        if not isinstance(source, dict) and not hasattr(source, "getlist"):
            raise ApiError(400, "validation_error", "The request body must be a JSON object.",
                           {"non_field_errors": ["expected a JSON object"]})
        serializer = serializer_class(data=source, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def actor(self) -> Actor:
        principal = self.request.user
        return Actor(principal.actor_id, principal.actor_label, client_ip(self.request))

    @property
    def principal(self):
        return self.request.user

    def tenant_id(self) -> str:
        """The caller's acting tenant (permission classes made sure there is one)."""
        return self.request.user.tenant_id

    def url_tenant(self, tenant_id: str) -> str:
        """A tenant id from the URL: only the caller's own (platform admins: any existing one).

        Anything else is a 404, the same answer as for a tenant that does not exist.
        """
        principal = self.request.user
        if principal.is_platform_admin:
            return tenant_id
        if tenant_id != principal.tenant_id:
            raise ApiError(404, "not_found", f"tenant {tenant_id!r} not found")
        return tenant_id
