"""The OpenAPI schema, exact in one place: every operation's error answers come from its method, its
authentication and its permissions, so no view repeats them.

``VeloFluxAutoSchema`` (settings: REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]) adds our error envelope
(``{"error": {"code", "message", "fields"?}}``) for each status code an operation can answer:

- 400 validation_error / parse_error: any operation that takes a body or query parameters;
- 401: any operation that needs credentials, and the public ones that check credentials they are sent
  (login, refresh); an operation whose permission declares ``platform_key`` (the platform's hub key,
  veloflux_site/realtime/hub_key.py) has 401 as its only refusal: no tenant, no role, nothing to hide;
- 403 (role too low, tenant suspended) and 404 (another tenant's or a missing object, an X-Tenant-ID
  that names no tenant of yours): any authenticated operation;
- 409 (stale version, name taken): authenticated writes; 413, 415: operations with a body;
- 429: the public auth operations (login rate limit); 503 store_unavailable: every operation.

A view's success answer is what its ``extend_schema(responses=...)`` says; without one it is documented
as a free-form object (never the request serializer, which describes what is sent, not what is answered).
Lists use ``list_endpoint()`` (``paginated(item)``: ``{items, total_count, page, page_size, has_more}``).

An operation says WHY one of its errors happens, or adds a status of its own (410, 429, a 503 besides
the store's), with ``error(description)`` in its responses: the envelope is added here, never redeclared.
An error answer with more keys in ``error`` (login's ``tenants``) declares its own serializer.
"""

from __future__ import annotations

import functools
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny

BODY_METHODS = ("POST", "PUT", "PATCH")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

_DESCRIPTIONS = {
    "400": "Invalid input (validation_error, parse_error): nothing was changed.",
    "401": "No valid credentials (not_authenticated, authentication_failed, token_invalid, ...).",
    "403": "Authenticated but not allowed: role too low, platform administrators only, tenant suspended.",
    "404": "Not found, or not yours (another tenant's objects are answered exactly like missing ones).",
    "409": "Conflict: stale version, a name or host already in use, an object still in use.",
    "413": "The request body is too large.",
    "415": "Unsupported media type: send JSON.",
    "429": "Too many attempts from this address; retry after Retry-After seconds.",
    "503": "store_unavailable: the data store (Redis) is unreachable; nothing was changed.",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class ErrorSerializer(serializers.Serializer):
    """Every error answer: ``{"error": {"code", "message", "fields"?}}`` (some codes add keys to ``error``)."""

    error = ErrorDetailSerializer()


@functools.cache  # one component per name: two lists of the same items share their envelope
def paginated(name: str, item: type[serializers.Serializer] | None = None) -> Any:
    """The list envelope of API.md around ``item`` (a serializer class; default: any object)."""
    return inline_serializer(name=name, fields={
        "items": serializers.ListField(child=item() if item else serializers.DictField()),
        "total_count": serializers.IntegerField(min_value=0),
        "page": serializers.IntegerField(min_value=1),
        "page_size": serializers.IntegerField(min_value=1),
        "has_more": serializers.BooleanField(),
    })


PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="1-based page number (default 1)."),
    OpenApiParameter("limit", int, description="items per page (default VF_API_PAGE_SIZE, at most "
                                               "VF_API_MAX_PAGE_SIZE)."),
]


def error(description: str) -> OpenApiResponse:
    """Why this operation answers an error status (or one the autoschema does not add, like 410): the
    ``Error`` envelope is put under it by ``VeloFluxAutoSchema``."""
    return OpenApiResponse(description=description)


Errors = dict[int, OpenApiResponse] | None


def list_endpoint(operation_id: str, name: str, item: type[serializers.Serializer] | None = None,
                  parameters: list | None = None, errors: Errors = None):
    """``extend_schema`` for a paginated list: ``?page=&limit=`` and the envelope of ``item``."""
    return extend_schema(operation_id=operation_id, parameters=[*PAGE_PARAMETERS, *(parameters or [])],
                         responses={200: paginated(name, item), **(errors or {})})


def answers(status: int, body: Any = OpenApiTypes.OBJECT, errors: Errors = None, **kwargs: Any):
    """``extend_schema`` for the success answer (200 with a body, 201 created, 204, ...), the operation's
    own ``errors`` and any other ``extend_schema`` argument (operation_id, request, ...)."""
    return extend_schema(responses={status: body, **(errors or {})}, **kwargs)


class VeloFluxAutoSchema(AutoSchema):
    def get_response_serializers(self) -> Any:
        # Only reached when the view gave no responses= (extend_schema overrides this method).
        return OpenApiTypes.OBJECT

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, response in responses.items():
            if code[0] in "45" and "content" not in response:  # error(description): add the envelope
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=response["description"]), code)
        for code in self._error_codes():
            responses.setdefault(code, self._get_response_for_code(
                OpenApiResponse(response=ErrorSerializer, description=_DESCRIPTIONS[code]), code))
        return responses

    def _is_public(self) -> bool:
        return any(isinstance(p, AllowAny) for p in self.view.get_permissions()) or \
            self.view.authentication_classes == ()

    def _needs_platform_key(self) -> bool:
        return any(getattr(p, "platform_key", False) for p in self.view.get_permissions())

    def _takes_input(self) -> bool:
        return self.method in BODY_METHODS or any(p["in"] == "query" for p in self._get_parameters())

    def _error_codes(self) -> list[str]:
        codes = ["400"] if self._takes_input() else []
        if self._needs_platform_key():
            codes.append("401")
        elif self._is_public():
            if self.method == "POST" and self.path.startswith("/api/auth/"):
                codes += ["401", "429"]
        else:
            codes += ["401", "403", "404"]
            if self.method in WRITE_METHODS:
                codes.append("409")
        if self.method in BODY_METHODS:
            codes += ["413", "415"]
        return [*codes, "503"]
