"""System endpoints for platform administrators."""

from __future__ import annotations

from rest_framework.response import Response

from cluster.schedules import list_schedules
from tenants.permissions import IsPlatformAdmin
from veloflux_site.api.views import ApiView


class SchedulesView(ApiView):
    """GET /api/system/schedules: the beat schedules with their last and next run (platform admins only)."""

    permission_classes = [IsPlatformAdmin]

    def get(self, request):
        return Response(list_schedules())
