"""Resolve the web session's principal once per request (pages and the browsable API)."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject
from rest_framework.exceptions import APIException

from tenants.principal import AnonymousPrincipal

SESSION_USER = "vf_user_id"
SESSION_TENANT = "vf_tenant_id"
SESSION_EPOCH = "vf_auth_epoch"


def session_principal(request):
    from tenants.authentication import principal_for_user

    user_id = request.session.get(SESSION_USER)
    if not user_id:
        return AnonymousPrincipal()
    try:
        principal = principal_for_user(request, user_id, request.session.get(SESSION_TENANT), "session",
                                       auth_epoch=request.session.get(SESSION_EPOCH, 0))
    except APIException:
        # A page (not the API) has no error shape to show; the session simply does not count.
        # The API's SessionAuthentication calls principal_for_user itself and reports the reason.
        return AnonymousPrincipal()
    return principal or AnonymousPrincipal()


class SessionPrincipalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.principal = SimpleLazyObject(lambda: session_principal(request))
        return self.get_response(request)
