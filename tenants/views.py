"""Web pages of the tenants app: session login and logout (CSRF protected)."""

from __future__ import annotations

from django import forms
from django.http import HttpResponseRedirect
from django.middleware.csrf import rotate_token
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from tenants import accounts
from tenants.api.serializers import KEY_UNSAFE, TENANT_ID_INVALID, TENANT_ID_PATTERN
from tenants.middleware import SESSION_EPOCH, SESSION_TENANT, SESSION_USER
from veloflux_site.api.client_ip import client_ip
from veloflux_site.api.errors import ApiError
from veloflux_site.storage import keys


def _key_safe(value: str) -> None:
    # The same rule as the API's serializers: an email is part of Redis keys.
    if value and not keys.is_safe_part(value):
        raise forms.ValidationError(KEY_UNSAFE)


class LoginForm(forms.Form):
    email = forms.EmailField(max_length=254, validators=[_key_safe])
    password = forms.CharField(widget=forms.PasswordInput, max_length=256)
    tenant_id = forms.RegexField(TENANT_ID_PATTERN, required=False, max_length=64, label="Tenant id (optional)",
                                 error_messages={"invalid": TENANT_ID_INVALID})


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/api/"
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/api/"


@require_http_methods(["GET", "POST"])
def login_page(request):
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = accounts.authenticate_password(data["email"], data["password"], client_ip(request))
            tenant_id = accounts.choose_tenant(user, data.get("tenant_id") or None)
        except ApiError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            accounts.record_tenant_choice(user.id, tenant_id)
            request.session.cycle_key()
            request.session[SESSION_USER] = user.id
            request.session[SESSION_TENANT] = tenant_id
            request.session[SESSION_EPOCH] = user.auth_epoch
            rotate_token(request)
            return HttpResponseRedirect(_safe_next(request))
    elif request.method == "POST":
        status = 400
    return render(request, "tenants/login.html", {"form": form, "next": _safe_next(request)}, status=status)


@require_http_methods(["GET", "POST"])
def logout_page(request):
    if request.method == "POST":
        request.session.flush()
        return HttpResponseRedirect("/login")
    return render(request, "tenants/logout.html", {})
