"""One error shape for every failure: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from veloflux_site.documents import DocumentRefused, clip
from veloflux_site.storage.errors import (
    UNAVAILABLE_ERRORS,
    Conflict,
    InvalidKeyPart,
    LimitExceeded,
    NotFound,
    StaleVersion,
)

log = logging.getLogger("veloflux.api")

STORE_UNAVAILABLE_MESSAGE = (
    "The VeloFlux data store (Redis) is unreachable right now. Nothing was changed; retry in a few seconds."
)

_CODES = {
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


class ApiError(exceptions.APIException):
    """An error with our own code; raise it from views and services."""

    def __init__(self, status_code: int, code: str, message: str, fields: dict | None = None,
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra or {}


# An error answer stays small whatever the input: messages may quote what the caller sent.
MAX_FIELDS = 100


def _clip_fields(fields: dict[str, list[str]]) -> dict[str, list[str]]:
    names = list(fields)
    clipped = {clip(str(name), 200): [clip(str(m)) for m in fields[name][:10]] for name in names[:MAX_FIELDS]}
    if len(names) > MAX_FIELDS:
        clipped["non_field_errors"] = [*clipped.get("non_field_errors", []),
                                       f"... and {len(names) - MAX_FIELDS} more fields with errors (not shown)"]
    return clipped


def _clip_strings(value: Any, depth: int = 0) -> Any:
    """Long strings clipped inside an error's extra data (e.g. bulk's per-item results); our own shapes, shallow."""
    if isinstance(value, str):
        return clip(value)
    if depth < 6 and isinstance(value, dict):
        return {key: _clip_strings(item, depth + 1) for key, item in value.items()}
    if depth < 6 and isinstance(value, list):
        return [_clip_strings(item, depth + 1) for item in value]
    return value


def error_body(code: str, message: str, fields: dict | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"code": code, "message": clip(message)}
    if fields:
        body["fields"] = _clip_fields(fields)
    body.update({name: _clip_strings(value) for name, value in extra.items()})
    return {"error": body}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested ValidationError detail as {"a.b[0].c": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                name = prefix or "non_field_errors"
            for sub, messages in _flatten(value, name).items():
                out.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                for sub, messages in _flatten(item, f"{prefix}[{index}]").items():
                    out.setdefault(sub, []).extend(messages)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def validation_message(fields: dict[str, list[str]]) -> str:
    first_field, messages = next(iter(fields.items()))
    summary = f"{first_field}: {messages[0]}" if first_field != "non_field_errors" else messages[0]
    more = sum(len(m) for m in fields.values()) - 1
    return f"Invalid input. {summary}" + (f" (and {more} more)" if more else "")


def _too_big_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is too large (the limit is {limit} bytes); send less data per request."


def _response_for(exc: Exception) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", _too_big_message()), status=413)
    if isinstance(exc, DocumentRefused):
        return Response(error_body(exc.code, str(exc)), status=exc.status)
    if isinstance(exc, InvalidKeyPart):
        # Validation at the edge should have refused this text; never a 500 when it did not.
        log.warning("identifier refused by the key builder: %s", exc)
        return Response(error_body(exc.code, str(exc)), status=400)
    if isinstance(exc, ApiError):
        body = error_body(exc.error_code, exc.message, exc.fields, **exc.extra)
        return Response(body, status=exc.status_code, headers=exc.headers)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        return Response(error_body("validation_error", validation_message(fields), fields), status=400)
    if isinstance(exc, StaleVersion):
        return Response(error_body(exc.code, str(exc), {"version": [str(exc)]},
                                   current_version=exc.current_version), status=409)
    if isinstance(exc, Conflict):
        fields = {exc.field: [str(exc)]} if exc.field else None
        return Response(error_body(exc.code, str(exc), fields), status=409)
    if isinstance(exc, LimitExceeded):
        return Response(error_body(exc.code, str(exc), limit=exc.limit, maximum=exc.maximum), status=403)
    if isinstance(exc, NotFound | Http404):
        return Response(error_body("not_found", str(exc) or "Not found."), status=404)
    if isinstance(exc, UNAVAILABLE_ERRORS):
        log.warning("store unavailable: %s", exc)
        return Response(error_body("store_unavailable", STORE_UNAVAILABLE_MESSAGE), status=503,
                        headers={"Retry-After": "5"})
    if isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
        return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)
    return None


def exception_handler(exc: Exception, context: dict) -> Response | None:
    # No SQL database, so unlike DRF's default there is no transaction to roll back.
    return _response_for(exc)


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler404(request, exception=None) -> JsonResponse:
    return json_error(404, "not_found", f"No such path: {request.path}")


def handler500(request) -> JsonResponse:
    request_id = getattr(request, "request_id", "")
    return JsonResponse(error_body("internal_error", "An unexpected error happened on our side. It is logged; "
                                   "quote the request id when you contact support.", request_id=request_id),
                        status=500)


def handler400(request, exception=None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return json_error(413, "payload_too_large", _too_big_message())
    return json_error(400, "bad_request", "The request could not be understood.")


def handler403(request, exception=None) -> JsonResponse:
    return json_error(403, "permission_denied", str(exception) or "You may not do this.")


def csrf_message(reason: str) -> str:
    return f"CSRF verification failed: {(reason or 'no token').rstrip('.')}. Reload the page and try again."


def csrf_failure(request, reason: str = "") -> JsonResponse:
    return json_error(403, "csrf_failed", csrf_message(reason))


__all__ = ["ApiError", "error_body", "exception_handler", "status"]
