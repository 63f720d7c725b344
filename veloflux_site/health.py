"""Public endpoints: /, /health (liveness), /api/status/health (readiness), /metrics."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis, persistence_status
from veloflux_site.storage.errors import UNAVAILABLE_ERRORS

# Processes (proxy nodes, workers) announce themselves with a heartbeat key that expires.
HEARTBEAT_STALE_AFTER = 15


@require_GET
def root(request):
    return JsonResponse({"status": "ok", "service": "veloflux", "version": settings.VERSION})


@require_GET
def liveness(request):
    return JsonResponse({"status": "ok"})


def _heartbeats(kind: str) -> list[dict]:
    client = get_redis()
    now = time.time()
    cutoff = now - HEARTBEAT_STALE_AFTER
    members = client.zrangebyscore(keys.heartbeat(kind), cutoff, "+inf", withscores=True)
    return [{"id": member, "last_seen_seconds_ago": round(now - score, 3)} for member, score in members]


@require_GET
def readiness(request):
    checks: dict = {}
    started = time.perf_counter()
    try:
        get_redis().ping()
        checks["redis"] = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                           "persistence": persistence_status()}
        checks["workers"] = {"alive": _heartbeats("worker")}
        checks["proxy_nodes"] = {"alive": _heartbeats("proxy")}
    except UNAVAILABLE_ERRORS as exc:
        checks["redis"] = {"ok": False, "error": str(exc)}
        return JsonResponse({"status": "unavailable", "checks": checks,
                             "error": {"code": "store_unavailable", "message": "Redis is unreachable."}},
                            status=503)
    return JsonResponse({"status": "ok", "checks": checks})


@require_GET
def prometheus_metrics(request):
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.zcard(keys.tenant_index())
    pipe.zcard(keys.user_index())
    tenants, users = pipe.execute()
    lines = [
        "# HELP veloflux_tenants Tenants on the platform.",
        "# TYPE veloflux_tenants gauge",
        f"veloflux_tenants {tenants}",
        "# HELP veloflux_users Users on the platform.",
        "# TYPE veloflux_users gauge",
        f"veloflux_users {users}",
        "# HELP veloflux_up Whether the control plane reaches its store.",
        "# TYPE veloflux_up gauge",
        "veloflux_up 1",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4; charset=utf-8")
