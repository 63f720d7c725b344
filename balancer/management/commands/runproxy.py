"""``python manage.py runproxy``: the VeloFlux data plane (uvloop + a compiled head codec, SO_REUSEPORT workers)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from balancer import netpolicy
from balancer.proxy.settings import ProxySettings, parse_networks


class Command(BaseCommand):
    help = "Run the VeloFlux proxy (data plane) reading its routing table from Redis."

    def add_arguments(self, parser) -> None:
        # Defaults come from settings (VF_PROXY_* in the environment, parsed strictly at start).
        parser.add_argument("--host", default=settings.PROXY_HOST)
        parser.add_argument("--port", type=int, default=settings.PROXY_PORT)
        parser.add_argument("--https-port", type=int, default=settings.PROXY_HTTPS_PORT,
                            help="HTTPS listener with per-host certificates chosen by SNI (0 = off)")
        parser.add_argument("--admin-port", type=int, default=settings.PROXY_ADMIN_PORT,
                            help="admin endpoint (/status, /metrics); worker i listens on admin-port + i (0 = off)")
        parser.add_argument("--workers", type=int, default=settings.PROXY_WORKERS)
        parser.add_argument("--header-timeout", type=float, default=settings.PROXY_HEADER_TIMEOUT)
        parser.add_argument("--idle-timeout", type=float, default=settings.PROXY_IDLE_TIMEOUT)
        parser.add_argument("--connect-timeout", type=float, default=settings.PROXY_CONNECT_TIMEOUT)
        parser.add_argument("--upstream-timeout", type=float, default=settings.PROXY_UPSTREAM_TIMEOUT)
        parser.add_argument("--max-header-bytes", type=int, default=settings.PROXY_MAX_HEADER_BYTES)
        parser.add_argument("--trusted-proxies", default=settings.PROXY_TRUSTED_PROXIES,
                            help="comma-separated networks whose X-Forwarded-For/-Proto are kept")
        parser.add_argument("--eject-after", type=int, default=settings.PROXY_EJECT_AFTER)
        parser.add_argument("--eject-base", type=float, default=settings.PROXY_EJECT_BASE)
        parser.add_argument("--access-log", action="store_true", default=settings.PROXY_ACCESS_LOG)
        parser.add_argument("--max-hops", type=int, default=settings.PROXY_MAX_HOPS,
                            help="requests that already went through this many VeloFlux proxies get 508")
        parser.add_argument("--max-upstream-per-tenant", type=int,
                            default=settings.PROXY_MAX_UPSTREAM_CONNECTIONS_PER_TENANT,
                            help="concurrent upstream connections per tenant per worker (past it: 503)")

    def handle(self, *args, **options) -> None:
        import faulthandler
        import signal

        try:
            from balancer.proxy import server
        except ImportError as exc:
            if exc.name == "balancer.proxy._codec":  # not built: say how, rather than a traceback
                raise CommandError(str(exc))
            raise

        faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>` prints every stack

        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        if settings.REDIS_URL.startswith("redis+cluster://"):
            raise CommandError("the proxy needs a standalone or Sentinel Redis: it reads the routing snapshot in one "
                               "MULTI over vf:routing:* keys, which Redis Cluster spreads over several slots")
        if options["max_hops"] < 1 or options["max_upstream_per_tenant"] < 1:
            raise CommandError("--max-hops and --max-upstream-per-tenant must be at least 1")
        # the platform's listeners, plus this proxy's own (its command line may differ from the settings)
        policy = netpolicy.policy_from_settings().with_listeners(netpolicy.proxy_listeners(
            options["host"], options["port"], options["https_port"], "127.0.0.1", options["admin_port"],
            options["workers"]))
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        proxy_settings = ProxySettings(
            host=options["host"], port=options["port"], https_port=options["https_port"],
            admin_port=options["admin_port"], workers=options["workers"], redis_url=settings.REDIS_URL,
            secret=settings.SECRET_KEY.encode(), header_timeout=options["header_timeout"],
            idle_timeout=options["idle_timeout"], connect_timeout=options["connect_timeout"],
            upstream_timeout=options["upstream_timeout"], max_header_bytes=options["max_header_bytes"],
            trusted_proxies=parse_networks(options["trusted_proxies"]), eject_after=options["eject_after"],
            eject_base=options["eject_base"], access_log=options["access_log"], policy=policy,
            max_hops=options["max_hops"], max_upstream_per_tenant=options["max_upstream_per_tenant"])
        try:
            server.run(proxy_settings)
        except OSError as exc:
            raise CommandError(f"cannot listen: {exc}")
