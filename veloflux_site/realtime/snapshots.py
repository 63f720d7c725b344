"""The platform's own stream data (the status stream): the process, Redis and the heartbeats of the
proxies and workers. App data (backends, metrics, health, billing) is read by the app that owns
it (balancer/streams.py, billing/streams.py): the hub imports no app."""

from __future__ import annotations

import os
import resource
import time

from veloflux_site.health import HEARTBEAT_STALE_AFTER
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

_STARTED = time.time()


def _process_stats() -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return {"pid": os.getpid(), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "rss_bytes": rss_pages * os.sysconf("SC_PAGE_SIZE"), "uptime_seconds": round(time.time() - _STARTED, 1)}


def alive(kind: str) -> int:
    return int(get_redis().zcount(keys.heartbeat(kind), time.time() - HEARTBEAT_STALE_AFTER, "+inf"))


def status(tenant_ids: list[str]) -> dict:
    info = get_redis().info()
    return {
        "process": _process_stats(),
        "redis": {"used_memory": info.get("used_memory"), "connected_clients": info.get("connected_clients"),
                  "ops_per_second": info.get("instantaneous_ops_per_sec"), "aof_enabled": info.get("aof_enabled")},
        "proxy_nodes_alive": alive("proxy"),
        "workers_alive": alive("worker"),
        "tenants": len(tenant_ids),
    }
