"""Configuration and system: /api/config*, /api/reload, /api/backup/*, /api/status, /api/metrics,
/api/analytics."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from balancer import backup, config_io, monitoring, services
from balancer.api.base import BalancerView, truthy
from balancer.api.serializers import (
    BackupSerializer,
    ConfigDocumentSerializer,
    ConfigImportOutSerializer,
    ConfigOutSerializer,
    ConfigRollbackOutSerializer,
    ConfigValidateOutSerializer,
    NoBodySerializer,
    ReloadOutSerializer,
)
from balancer.store import load_snapshot
from tenants.permissions import IsPlatformAdmin, role_required
from veloflux_site.api.errors import ApiError
from veloflux_site.api.pagination import paginate_list
from veloflux_site.api.schema import list_endpoint
from veloflux_site.documents import DocumentRefused, loads_json

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


# --- configuration -------------------------------------------------------------------------
class ConfigView(BalancerView):
    @extend_schema(responses={200: ConfigOutSerializer})
    def get(self, request):
        snapshot = load_snapshot(self.tenant_id())
        document = config_io.build_document(snapshot)
        return Response({**document, "config_version": snapshot.config_version,
                         "routing_version": snapshot.routing_version})


class DocumentView(BalancerView):
    serializer_class = ConfigDocumentSerializer

    def document(self) -> Any:
        content_type = (self.request.content_type or "").split(";")[0].strip().lower()
        if content_type in YAML_TYPES or content_type == "text/plain":
            return config_io.load_text(self.request.body)
        data = self.body()
        if isinstance(data, dict) and set(data) == {"content"} and isinstance(data["content"], str):
            return config_io.load_text(data["content"])
        if isinstance(data, dict) and set(data) == {"config"}:
            return data["config"]
        return data


class ConfigValidateView(DocumentView):
    # Validating changes nothing: a viewer may check a document too.
    permission_classes = [role_required("viewer", "viewer")]

    @extend_schema(responses={200: ConfigValidateOutSerializer})
    def post(self, request):
        try:
            document = self.document()
        except config_io.DocumentError as exc:
            return Response(config_io.invalid_answer(exc))
        return Response(config_io.validate_document(self.tenant_id(), document))


class YamlRenderer(BaseRenderer):
    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return config_io.render(data, "yaml")[0].encode()


class ConfigExportView(BalancerView):
    """``?format=json|yaml`` (DRF's own format override picks the renderer)."""

    renderer_classes = [JSONRenderer, YamlRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except (NotFound, Http404):
            fmt = request.query_params.get("format")
            raise ApiError(400, "validation_error", f"format must be json or yaml, got {fmt!r}.",
                           {"format": ["must be json or yaml"]})

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["json", "yaml"])])
    def get(self, request):
        fmt = (request.query_params.get("format") or "json").lower()
        response = Response(config_io.current_document(self.tenant_id()))
        response["Content-Disposition"] = f'attachment; filename="veloflux-config.{fmt}"'
        return response


class ConfigImportView(DocumentView):
    @extend_schema(parameters=[OpenApiParameter("dry_run", bool)], responses={200: ConfigImportOutSerializer})
    def post(self, request):
        document = self.document()
        if truthy(request.query_params.get("dry_run")):
            return Response(config_io.dry_run_import(self.tenant_id(), document))

        def run(stored: services.Stored | None) -> Response:
            return Response(config_io.import_document(self.tenant_id(), self.actor(), document, stored=stored))

        def build(plan: dict, committed: services.Committed) -> tuple[int, dict]:
            return 200, config_io.import_answer(plan, committed)

        return self.idempotent(document, run, build)


class ConfigVersionsView(BalancerView):
    @list_endpoint("config_versions_list", "ConfigVersionPage")
    def get(self, request):
        return Response(paginate_list(request, config_io.list_versions(self.tenant_id())))


class ConfigVersionDetailView(BalancerView):
    def get(self, request, version: int):
        return Response(config_io.get_version(self.tenant_id(), version))


class ConfigRollbackView(BalancerView):
    serializer_class = NoBodySerializer

    @extend_schema(responses={200: ConfigRollbackOutSerializer})
    def post(self, request, version: int):
        def run(stored: services.Stored | None) -> Response:
            return Response(config_io.rollback(self.tenant_id(), self.actor(), version, stored=stored))

        def build(plan: dict, committed: services.Committed) -> tuple[int, dict]:
            return 200, {**config_io.import_answer(plan, committed), "rolled_back_to": version}

        return self.idempotent({"rollback": version}, run, build)


class ReloadView(BalancerView):
    serializer_class = NoBodySerializer

    @extend_schema(responses={200: ReloadOutSerializer})
    def post(self, request):
        committed = services.reload_routing(self.tenant_id(), self.actor())
        return Response({"reloaded": True, "routing_version": committed.routing_version,
                         "config_version": committed.config_version})


# --- backup (platform admins) -----------------------------------------------------------------
class BackupCreateView(BalancerView):
    permission_classes = [IsPlatformAdmin]

    def get(self, request):
        document = backup.create_backup()
        response = HttpResponse(json.dumps(document, separators=(",", ":")), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="veloflux-backup-{document["created_at"]}.json"'
        return response


class BackupRestoreView(BalancerView):
    permission_classes = [IsPlatformAdmin]
    serializer_class = BackupSerializer

    def post(self, request):
        # Read the stream directly: a platform's backup is larger than Django's 2.5 MB in-memory limit
        # for request.body, which is right for every other endpoint.
        raw = request._request.read(backup.MAX_BACKUP_BYTES + 1)
        if len(raw) > backup.MAX_BACKUP_BYTES:
            raise ApiError(413, "payload_too_large", f"A backup may be at most {backup.MAX_BACKUP_BYTES // 2**20} MiB. "
                           "Nothing was changed.")
        try:
            data = loads_json(raw or b"null")
        except DocumentRefused as exc:
            raise ApiError(400, "invalid_backup", f"The backup cannot be read: {exc} Nothing was changed.")
        document = data.get("backup") if isinstance(data, dict) and set(data) == {"backup"} else data
        return Response(backup.restore_backup(document))


# --- status, metrics, analytics ----------------------------------------------------------------
class StatusView(BalancerView):
    def get(self, request):
        return Response(monitoring.status(self.tenant_id()))


class MetricsView(BalancerView):
    def get(self, request):
        return Response(monitoring.metrics(self.tenant_id()))


class AnalyticsView(BalancerView):
    @extend_schema(parameters=[OpenApiParameter("minutes", int, description="1..2880 (default 60)")])
    def get(self, request):
        raw = request.query_params.get("minutes", "60")
        if not raw.isdigit() or not 1 <= int(raw) <= 2880:
            raise ApiError(400, "validation_error", f"minutes must be a whole number from 1 to 2880, got {raw!r}.",
                           {"minutes": ["must be 1..2880"]})
        return Response(monitoring.analytics(self.tenant_id(), int(raw)))
