"""Load balancer core (/api/pools, /api/backends, /api/routes, /api/bulk) and configuration
(/api/config*, /api/reload, /api/backup/*, /api/status, /api/metrics, /api/analytics)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpResponse
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from balancer import backup, bulk, config_io, monitoring, services
from balancer.api.serializers import (
    BackendSerializer,
    BackupSerializer,
    BulkSerializer,
    ConfigDocumentSerializer,
    NoBodySerializer,
    PoolSerializer,
    RouteSerializer,
    backend_payload,
    pool_payload,
    record_payload,
    route_payload,
)
from balancer.store import load_snapshot, read_health, read_health_detail
from balancer.workspace import ItemError
from tenants.permissions import IsPlatformAdmin, ViewerReadsMemberWrites, role_required
from veloflux_site.api.errors import ApiError
from veloflux_site.api.pagination import paginate_list
from veloflux_site.api.views import ApiView
from veloflux_site.storage.errors import Conflict

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


class BalancerView(ApiView):
    permission_classes = [ViewerReadsMemberWrites]

    def handle_exception(self, exc):
        if isinstance(exc, ItemError):
            extra = {"current_version": exc.current_version} if exc.current_version is not None else None
            exc = ApiError(exc.status, exc.code, exc.message, exc.fields or None, extra=extra)
        elif isinstance(exc, bulk.BulkError):
            exc = ApiError(exc.status, "bulk_rejected", str(exc), exc.fields(), extra={"items": exc.items})
        elif isinstance(exc, config_io.DocumentError):
            exc = ApiError(400, "invalid_config", str(exc), exc.errors,
                           extra={"errors": [{"path": p, "message": m} for p, ms in exc.errors.items() for m in ms],
                                  "ignored": exc.ignored})
        elif isinstance(exc, backup.BackupError):
            exc = ApiError(400, "invalid_backup", f"{exc} Nothing was changed.")
        return super().handle_exception(exc)

    def body(self) -> Any:
        data = self.request.data
        if hasattr(data, "dict") and not isinstance(data, dict):
            data = data.dict()
        return data

    def object_body(self) -> dict:
        data = self.body()
        if not isinstance(data, dict):
            raise ApiError(400, "validation_error", "The request body must be a JSON object.",
                           {"non_field_errors": ["expected a JSON object"]})
        return data

    def body_version(self, data: dict) -> Any:
        version = data.get("version", self.request.query_params.get("version"))
        if isinstance(version, str) and version.isdigit():
            return int(version)
        return version

    # --- Idempotency-Key ----------------------------------------------------------
    def idempotent(self, payload: Any, run: Callable[[services.Stored | None], Response],
                   build: Callable[[Any, services.Committed], tuple[int, Any]]) -> Response:
        """Replays the stored answer of a request already applied with this Idempotency-Key (24 h)."""
        raw_key = self.request.headers.get("Idempotency-Key")
        if not raw_key:
            return run(None)
        if len(raw_key) > 255:
            raise ApiError(400, "validation_error", "Idempotency-Key must be at most 255 characters.")
        tenant_id = self.tenant_id()
        key_hash = services.idempotency_key_hash(f"{self.request.path}\n{raw_key}")
        fingerprint = hashlib.sha256(json.dumps([self.request.get_full_path(), payload], sort_keys=True,
                                                default=str).encode()).hexdigest()
        stored = services.Stored(key_hash, fingerprint, build)
        answer = services.stored_answer(tenant_id, key_hash)
        if answer is None:
            try:
                return run(stored)
            except Conflict as exc:
                if not services.is_idempotency_race(exc):
                    raise
                answer = services.stored_answer(tenant_id, key_hash)
                if answer is None:
                    raise
        if answer["fingerprint"] != fingerprint:
            raise ApiError(422, "idempotency_key_reused", "This Idempotency-Key was already used for a different "
                           "request in the last 24 hours; use a new key for a new request.")
        return Response(answer["body"], status=answer["status"], headers={"Idempotent-Replayed": "true"})


    def create(self, kind: str, present: Callable[[Any], dict]) -> Response:
        """POST of one object; with an Idempotency-Key a retried request gets the first answer again."""
        data = self.object_body()

        def build(created: Any, committed: services.Committed) -> tuple[int, dict]:
            return status.HTTP_201_CREATED, present(created)

        def run(stored: services.Stored | None) -> Response:
            created = services.create_object(self.tenant_id(), self.actor(), kind, data, stored)
            return Response(present(created), status=status.HTTP_201_CREATED)

        return self.idempotent(data, run, build)


# --- pools ---------------------------------------------------------------------------------
class PoolListView(BalancerView):
    serializer_class = PoolSerializer

    def get(self, request):
        snapshot = load_snapshot(self.tenant_id())
        counts: dict[str, int] = {}
        for backend in snapshot.backends.values():
            counts[backend.pool] = counts.get(backend.pool, 0) + 1
        routes: dict[str, int] = {}
        for route in snapshot.routes.values():
            routes[route.pool] = routes.get(route.pool, 0) + 1
        pools = [pool_payload(p, counts.get(p.name, 0), routes.get(p.name, 0))
                 for p in sorted(snapshot.pools.values(), key=lambda p: p.name)]
        return Response(paginate_list(request, pools))

    def post(self, request):
        return self.create("pool", lambda pool: pool_payload(pool, 0, 0))


class PoolDetailView(BalancerView):
    serializer_class = PoolSerializer

    def get(self, request, name: str):
        snapshot = load_snapshot(self.tenant_id())
        if name not in snapshot.pools:
            raise ApiError(404, "not_found", f"pool {name!r} not found")
        backends = sorted((b for b in snapshot.backends.values() if b.pool == name), key=lambda b: b.address)
        health = read_health([b.id for b in backends])
        data = pool_payload(snapshot.pools[name], len(backends),
                            sum(1 for r in snapshot.routes.values() if r.pool == name))
        data["backends"] = [backend_payload(b, health.get(b.id)) for b in backends]
        return Response(data)

    def put(self, request, name: str):
        data = self.object_body()
        pool = services.update_object(self.tenant_id(), self.actor(), "pool", name, data, self.body_version(data))
        return Response(pool_payload(pool))

    patch = put

    def delete(self, request, name: str):
        force = _truthy(request.query_params.get("force"))
        version = self.body_version(dict(request.query_params.items()))
        removed = services.delete_object(self.tenant_id(), self.actor(), "pool", name, version, force)
        return Response({"deleted": name, "removed": [{"type": type(r).__name__.lower(), "id": r.id}
                                                      for r in removed]})


# --- backends ------------------------------------------------------------------------------
class BackendListView(BalancerView):
    serializer_class = BackendSerializer

    def get(self, request):
        snapshot = load_snapshot(self.tenant_id())
        backends = sorted(snapshot.backends.values(), key=lambda b: (b.pool, b.address, b.id))
        pool = request.query_params.get("pool")
        if pool:
            backends = [b for b in backends if b.pool == pool]
        for name in ("state", "region"):
            wanted = request.query_params.get(name)
            if wanted:
                backends = [b for b in backends if getattr(b, name) == wanted]
        health = read_health([b.id for b in backends])
        return Response(paginate_list(request, [backend_payload(b, health.get(b.id)) for b in backends]))

    def post(self, request):
        return self.create("backend", lambda backend: backend_payload(backend, None))


class BackendDetailView(BalancerView):
    serializer_class = BackendSerializer

    def get(self, request, backend_id: str):
        snapshot = load_snapshot(self.tenant_id())
        backend = snapshot.backends.get(backend_id)
        if backend is None:
            raise ApiError(404, "not_found", f"backend {backend_id!r} not found")
        healthy = read_health([backend.id]).get(backend.id)
        return Response(backend_payload(backend, healthy, read_health_detail(backend.id), detail=True))

    def put(self, request, backend_id: str):
        data = self.object_body()
        backend = services.update_object(self.tenant_id(), self.actor(), "backend", backend_id, data,
                                         self.body_version(data))
        return Response(backend_payload(backend, read_health([backend.id]).get(backend.id)))

    patch = put

    def delete(self, request, backend_id: str):
        version = self.body_version(dict(request.query_params.items()))
        services.delete_object(self.tenant_id(), self.actor(), "backend", backend_id, version)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- routes --------------------------------------------------------------------------------
class RouteListView(BalancerView):
    serializer_class = RouteSerializer

    def get(self, request):
        snapshot = load_snapshot(self.tenant_id())
        routes = sorted(snapshot.routes.values(), key=lambda r: (r.host, r.path_prefix))
        for name in ("pool", "host"):
            wanted = request.query_params.get(name)
            if wanted:
                routes = [r for r in routes if getattr(r, name) == wanted.lower() or getattr(r, name) == wanted]
        return Response(paginate_list(request, [route_payload(r) for r in routes]))

    def post(self, request):
        return self.create("route", route_payload)


class RouteDetailView(BalancerView):
    serializer_class = RouteSerializer

    def get(self, request, route_id: str):
        route = load_snapshot(self.tenant_id()).routes.get(route_id)
        if route is None:
            raise ApiError(404, "not_found", f"route {route_id!r} not found")
        return Response(route_payload(route))

    def put(self, request, route_id: str):
        data = self.object_body()
        route = services.update_object(self.tenant_id(), self.actor(), "route", route_id, data,
                                       self.body_version(data))
        return Response(route_payload(route))

    patch = put

    def delete(self, request, route_id: str):
        version = self.body_version(dict(request.query_params.items()))
        services.delete_object(self.tenant_id(), self.actor(), "route", route_id, version)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- bulk ----------------------------------------------------------------------------------
def _bulk_answer(applied: list, committed: services.Committed | None) -> tuple[int, dict]:
    results = []
    for index, op, kind, result, item_status in applied:
        item: dict[str, Any] = {"index": index, "op": op, "type": kind, "status": item_status}
        if op == "delete":
            removed = result if isinstance(result, list) else [result]
            item["id"] = removed[0].id
            item["removed"] = [{"type": type(r).__name__.lower(), "id": r.id} for r in removed]
        else:
            item["id"] = result.id
            item["object"] = record_payload(result)
        results.append(item)
    return 200, {"applied": len(results), "config_version": committed.config_version if committed else None,
                 "results": results}


class BulkView(BalancerView):
    serializer_class = BulkSerializer

    def post(self, request):
        body = self.body()

        def run(stored: services.Stored | None) -> Response:
            applied, committed = bulk.apply_bulk(self.tenant_id(), self.actor(), body, stored)
            answer_status, answer = _bulk_answer(applied, committed)
            return Response(answer, status=answer_status)

        def build(applied: list, committed: services.Committed) -> tuple[int, dict]:
            return _bulk_answer(applied, committed)

        return self.idempotent(body, run, build)


# --- configuration -------------------------------------------------------------------------
class ConfigView(BalancerView):
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

    def post(self, request):
        try:
            document = self.document()
        except config_io.DocumentError as exc:
            return Response({"valid": False, "errors": [{"path": p, "message": m} for p, ms in exc.errors.items()
                                                        for m in ms], "ignored": []})
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

    def get(self, request):
        fmt = (request.query_params.get("format") or "json").lower()
        response = Response(config_io.current_document(self.tenant_id()))
        response["Content-Disposition"] = f'attachment; filename="veloflux-config.{fmt}"'
        return response


class ConfigImportView(DocumentView):
    def post(self, request):
        document = self.document()
        if _truthy(request.query_params.get("dry_run")):
            return Response(config_io.dry_run_import(self.tenant_id(), document))

        def run(stored: services.Stored | None) -> Response:
            return Response(config_io.import_document(self.tenant_id(), self.actor(), document, stored=stored))

        def build(plan: dict, committed: services.Committed) -> tuple[int, dict]:
            return 200, config_io.import_answer(plan, committed)

        return self.idempotent(document, run, build)


class ConfigVersionsView(BalancerView):
    def get(self, request):
        return Response(paginate_list(request, config_io.list_versions(self.tenant_id())))


class ConfigVersionDetailView(BalancerView):
    def get(self, request, version: int):
        return Response(config_io.get_version(self.tenant_id(), version))


class ConfigRollbackView(BalancerView):
    serializer_class = NoBodySerializer

    def post(self, request, version: int):
        def run(stored: services.Stored | None) -> Response:
            return Response(config_io.rollback(self.tenant_id(), self.actor(), version, stored=stored))

        def build(plan: dict, committed: services.Committed) -> tuple[int, dict]:
            return 200, {**config_io.import_answer(plan, committed), "rolled_back_to": version}

        return self.idempotent({"rollback": version}, run, build)


class ReloadView(BalancerView):
    serializer_class = NoBodySerializer

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
            data = json.loads(raw or b"null")
        except ValueError as exc:
            raise ApiError(400, "invalid_backup", f"The backup is not valid JSON ({exc}). Nothing was changed.")
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
    def get(self, request):
        raw = request.query_params.get("minutes", "60")
        if not raw.isdigit() or not 1 <= int(raw) <= 2880:
            raise ApiError(400, "validation_error", f"minutes must be a whole number from 1 to 2880, got {raw!r}.",
                           {"minutes": ["must be 1..2880"]})
        return Response(monitoring.analytics(self.tenant_id(), int(raw)))
