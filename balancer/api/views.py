"""Load balancer core: /api/pools, /api/backends, /api/routes, /api/bulk."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from balancer import bulk, domains, services
from balancer.api.base import BalancerView, truthy
from balancer.api.serializers import (
    BackendOutSerializer,
    BackendSerializer,
    BulkOutSerializer,
    BulkSerializer,
    PoolDeletedOutSerializer,
    PoolDetailOutSerializer,
    PoolOutSerializer,
    PoolSerializer,
    RouteOutSerializer,
    RouteSerializer,
    backend_payload,
    pool_payload,
    record_payload,
    route_payload,
)
from balancer.store import BackendStore, RouteStore, load_snapshot, read_health, read_health_detail
from veloflux_site.api.errors import ApiError
from veloflux_site.api.pagination import paginate_list
from veloflux_site.api.schema import answers, list_endpoint


# --- pools ---------------------------------------------------------------------------------
class PoolListView(BalancerView):
    serializer_class = PoolSerializer

    @list_endpoint("pools_list", "PoolPage", PoolOutSerializer)
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

    @answers(201, PoolOutSerializer)
    def post(self, request):
        return self.create("pool", lambda pool: pool_payload(pool, 0, 0))


class PoolDetailView(BalancerView):
    serializer_class = PoolSerializer

    @answers(200, PoolDetailOutSerializer)
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

    @answers(200, PoolOutSerializer)
    def put(self, request, name: str):
        data = self.object_body()
        pool = services.update_object(self.tenant_id(), self.actor(), "pool", name, data, self.body_version(data))
        return Response(pool_payload(pool))

    patch = put

    @extend_schema(parameters=[OpenApiParameter("force", bool), OpenApiParameter("version", int)],
                   responses={200: PoolDeletedOutSerializer})
    def delete(self, request, name: str):
        force = truthy(request.query_params.get("force"))
        version = self.body_version(dict(request.query_params.items()))
        removed = services.delete_object(self.tenant_id(), self.actor(), "pool", name, version, force)
        return Response({"deleted": name, "removed": [{"type": type(r).__name__.lower(), "id": r.id}
                                                      for r in removed]})


# --- backends ------------------------------------------------------------------------------
class BackendListView(BalancerView):
    serializer_class = BackendSerializer

    @list_endpoint("backends_list", "BackendPage", BackendOutSerializer, parameters=[
        OpenApiParameter("pool", str), OpenApiParameter("state", str), OpenApiParameter("region", str)])
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

    @answers(201, BackendOutSerializer)
    def post(self, request):
        return self.create("backend", lambda backend: backend_payload(backend, None))


class BackendDetailView(BalancerView):
    serializer_class = BackendSerializer

    @answers(200, BackendOutSerializer)
    def get(self, request, backend_id: str):
        backend = BackendStore(self.tenant_id()).find_by_client_id(backend_id)
        if backend is None:
            raise ApiError(404, "not_found", f"backend {backend_id!r} not found")
        healthy = read_health([backend.id]).get(backend.id)
        return Response(backend_payload(backend, healthy, read_health_detail(backend.id), detail=True))

    @answers(200, BackendOutSerializer)
    def put(self, request, backend_id: str):
        data = self.object_body()
        backend = services.update_object(self.tenant_id(), self.actor(), "backend", backend_id, data,
                                         self.body_version(data))
        return Response(backend_payload(backend, read_health([backend.id]).get(backend.id)))

    patch = put

    @extend_schema(parameters=[OpenApiParameter("version", int)])
    def delete(self, request, backend_id: str):
        version = self.body_version(dict(request.query_params.items()))
        services.delete_object(self.tenant_id(), self.actor(), "backend", backend_id, version)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- routes --------------------------------------------------------------------------------
def routed(tenant_id: str, route) -> dict[str, Any]:
    """A route with its serving status (pending_verification while its host is not the tenant's)."""
    return route_payload(route, domains.status_of(tenant_id, route))


class RouteListView(BalancerView):
    serializer_class = RouteSerializer

    @list_endpoint("routes_list", "RoutePage", RouteOutSerializer,
                   parameters=[OpenApiParameter("pool", str), OpenApiParameter("host", str)])
    def get(self, request):
        snapshot = load_snapshot(self.tenant_id())
        routes = sorted(snapshot.routes.values(), key=lambda r: (r.host, r.path_prefix))
        for name in ("pool", "host"):
            wanted = request.query_params.get(name)
            if wanted:
                routes = [r for r in routes if getattr(r, name) == wanted.lower() or getattr(r, name) == wanted]
        statuses = domains.route_statuses(snapshot, routes)
        return Response(paginate_list(request, [route_payload(r, statuses[r.id]) for r in routes]))

    @answers(201, RouteOutSerializer)
    def post(self, request):
        return self.create("route", lambda route: routed(self.tenant_id(), route))


class RouteDetailView(BalancerView):
    serializer_class = RouteSerializer

    @answers(200, RouteOutSerializer)
    def get(self, request, route_id: str):
        route = RouteStore(self.tenant_id()).find_by_client_id(route_id)
        if route is None:
            raise ApiError(404, "not_found", f"route {route_id!r} not found")
        return Response(routed(self.tenant_id(), route))

    @answers(200, RouteOutSerializer)
    def put(self, request, route_id: str):
        data = self.object_body()
        route = services.update_object(self.tenant_id(), self.actor(), "route", route_id, data,
                                       self.body_version(data))
        return Response(routed(self.tenant_id(), route))

    patch = put

    @extend_schema(parameters=[OpenApiParameter("version", int)])
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

    @extend_schema(responses={200: BulkOutSerializer})
    def post(self, request):
        body = self.body()

        def run(stored: services.Stored | None) -> Response:
            applied, committed = bulk.apply_bulk(self.tenant_id(), self.actor(), body, stored)
            answer_status, answer = _bulk_answer(applied, committed)
            return Response(answer, status=answer_status)

        def build(applied: list, committed: services.Committed) -> tuple[int, dict]:
            return _bulk_answer(applied, committed)

        return self.idempotent(body, run, build)


