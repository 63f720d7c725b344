"""Console pages of the balancer: the live traffic dashboard."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def dashboard(request):
    principal = request.principal
    if not principal.is_authenticated:
        return HttpResponseRedirect("/login?" + urlencode({"next": request.get_full_path()}))
    return render(request, "console/dashboard.html", {"tenant_id": principal.tenant_id})
