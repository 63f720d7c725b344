"""One process-wide Redis client built from settings.REDIS_URL.

Standalone (redis://, rediss://, unix://), Sentinel
(redis+sentinel://host:port[,host:port]/service[/db]) and Cluster
(redis+cluster://host:port) URLs are accepted. The client is created lazily,
so importing settings never opens a socket, and redis-py's pool reconnects by
itself once a lost server is back.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

log = logging.getLogger("veloflux.storage")

_lock = threading.Lock()
_client: redis.Redis | RedisCluster | None = None


def _common_options() -> dict:
    return {
        "decode_responses": True,
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_CONNECT_TIMEOUT,
        "health_check_interval": 30,
        # One quick retry covers a connection the server closed while idle;
        # more would only delay the 503 when Redis is really gone.
        "retry": Retry(NoBackoff(), 1),
    }


def _sentinel_client(url: str) -> redis.Redis:
    parts = urlsplit(url)
    hosts = []
    for hostport in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = hostport.partition(":")
        hosts.append((host, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a redis+sentinel:// URL must name the service: redis+sentinel://host:26379/mymaster/0")
    service, db = path[0], int(path[1]) if len(path) > 1 else 0
    options = _common_options()
    sentinel = Sentinel(hosts, sentinel_kwargs={"socket_timeout": options["socket_timeout"]}, **options)
    return sentinel.master_for(service, db=db, password=parts.password)


def build_client(url: str) -> redis.Redis | RedisCluster:
    scheme = urlsplit(url).scheme
    if scheme == "redis+sentinel":
        return _sentinel_client(url)
    if scheme == "redis+cluster":
        options = _common_options()
        options.pop("health_check_interval")
        return RedisCluster.from_url("redis://" + url.split("://", 1)[1], **options)
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=settings.REDIS_MAX_CONNECTIONS, timeout=settings.REDIS_CONNECT_TIMEOUT,
        **_common_options(),
    )
    return redis.Redis(connection_pool=pool)


def build_async_client(url: str):
    """An asyncio client for long-lived subscriptions (hub broker, proxy watchers).

    Standalone URLs only for now; Sentinel/Cluster pub/sub would use their asyncio classes.
    """
    import redis.asyncio as aioredis

    options = _common_options()
    options.pop("retry")
    options["socket_timeout"] = None  # pub/sub reads block until a message arrives
    return aioredis.from_url(url, **options)


def get_redis() -> redis.Redis:
    """The shared client. Thread-safe; cheap after the first call."""
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = build_client(settings.REDIS_URL)
            client = _client
    return client  # type: ignore[return-value]


def reset_redis() -> None:
    """Forget the client (tests and settings changes); the next call builds a new one."""
    global _client
    with _lock:
        old, _client = _client, None
    if old is not None:
        old.close()


def persistence_status(client: redis.Redis | None = None) -> dict:
    """Whether the server keeps data on disk: AOF on, or RDB snapshots configured.

    Managed Redis services often disable CONFIG; the snapshot schedule is then unknown
    (``rdb`` None), and so is durability unless AOF is on.
    """
    client = client or get_redis()
    info = client.info("persistence")
    aof = bool(int(info.get("aof_enabled", 0)))
    try:
        rdb: bool | None = bool(client.config_get("save").get("save", "").strip())
    except redis.ResponseError:
        rdb = None
    durable = True if aof or rdb else (None if rdb is None else False)
    return {"aof": aof, "rdb": rdb, "durable": durable}


def warn_if_not_durable() -> dict | None:
    """Log a warning at start when Redis would lose data on restart. Never raises."""
    try:
        status = persistence_status()
    except redis.RedisError as exc:
        log.warning("Redis at %s is not reachable at start (%s); the API answers 503 until it is.",
                    settings.REDIS_URL, exc)
        return None
    if status["durable"] is None:
        log.warning("Cannot tell whether Redis persists data (CONFIG is disabled and AOF is off): make sure "
                    "snapshots or appendonly are on, or a Redis restart loses all VeloFlux data.")
    elif not status["durable"]:
        log.warning("Redis persistence is OFF (no AOF, no RDB snapshots): a Redis restart loses all "
                    "VeloFlux data. Enable appendonly yes.")
    return status
