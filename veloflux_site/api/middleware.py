"""Request id and store-unavailable handling for every request (DRF or not)."""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from veloflux_site.api.errors import STORE_UNAVAILABLE_MESSAGE, error_body
from veloflux_site.storage.errors import UNAVAILABLE_ERRORS, InvalidKeyPart

log = logging.getLogger("veloflux.api")
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_from(header_value: str | None) -> str:
    """Keep a caller's id when it is sane, otherwise make one."""
    if header_value and _VALID_REQUEST_ID.match(header_value):
        return header_value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_id_from(request.headers.get("X-Request-ID"))
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class StoreUnavailableMiddleware:
    """Redis errors escaping non-DRF views (pages, health) become a 503, and invalid key parts a 400, not a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, InvalidKeyPart):  # the API's safety net, for pages too: a 400, never a 500
            log.warning("identifier refused by the key builder on %s: %s", request.path, exception)
            return JsonResponse(error_body(exception.code, str(exception)), status=400)
        if isinstance(exception, UNAVAILABLE_ERRORS):
            log.warning("store unavailable on %s: %s", request.path, exception)
            response = JsonResponse(error_body("store_unavailable", STORE_UNAVAILABLE_MESSAGE), status=503)
            response["Retry-After"] = "5"
            return response
        return None


class DebugLoopbackOnlyMiddleware:
    """With DEBUG on, answer only requests that arrived on a loopback address.

    Settings refuse DEBUG with a non-loopback VF_WEB_HOST; this catches a server started some
    other way (``uvicorn --host 0.0.0.0`` by hand). The local address is the ASGI ``server``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.DEBUG and not _arrived_on_loopback(request):
            return JsonResponse(error_body("debug_mode_local_only", "This server runs in debug mode, which serves "
                                           "only 127.0.0.1; its operator must set VF_ENV=production."), status=403)
        return self.get_response(request)


def _arrived_on_loopback(request: HttpRequest) -> bool:
    local = str(request.META.get("SERVER_NAME", ""))
    try:
        return ipaddress.ip_address(local.strip("[]")).is_loopback
    except ValueError:
        return True  # a Unix socket or a test client's name: not reachable from another machine
