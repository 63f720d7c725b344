"""``python manage.py demo_backends 9101 9102``: tiny HTTP backends that say which one answered.

With ``--register-route demo.localhost`` it also writes a demo tenant's routing fragment
(a round-robin pool of these backends) into the routing table, in the data-plane contract's format.
"""

from __future__ import annotations

import asyncio
import json
import logging

from django.core.management.base import BaseCommand

from balancer.proxy.tiny_http import TinyHttpProtocol
from veloflux_site.storage import keys

log = logging.getLogger("veloflux.demo")
DEMO_TENANT = "tn_demo"


class DemoBackend(TinyHttpProtocol):
    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def answer(self, url: bytes) -> tuple[bytes, bytes, bytes]:
        body = json.dumps({"backend": self.name, "path": url.decode("latin-1")}).encode() + b"\n"
        return b"200 OK", b"Content-Type: application/json\r\nX-Backend: %s\r\n" % self.name.encode(), body


def register_route(host: str, ports: list[int], bind: str) -> int:
    from veloflux_site.storage.connection import get_redis

    address_host = "127.0.0.1" if bind in ("0.0.0.0", "") else bind
    fragment = {
        "tenant_id": DEMO_TENANT, "active": True, "config_version": 1,
        "routes": [{"id": "rt_demo", "host": host, "path_prefix": "/", "pool": "demo", "max_body_bytes": None}],
        "pools": {"demo": {"name": "demo", "algorithm": "round_robin", "sticky_sessions": False, "backends": [
            {"id": f"be_demo_{port}", "address": f"{address_host}:{port}", "weight": 100, "enabled": True,
             "state": "active", "region": None,
             "health_check": {"type": "http", "method": "GET", "path": "/", "interval": 5.0, "timeout": 2.0,
                              "expected_status": [200], "rise": 2, "fall": 3}} for port in ports]}},
    }
    client = get_redis()
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.routing_table(), DEMO_TENANT, json.dumps(fragment))
    pipe.incr(keys.routing_version())
    version = pipe.execute()[1]
    client.publish(keys.events_channel("routing"),
                   json.dumps({"type": "routing.changed", "version": version, "tenant_id": DEMO_TENANT}))
    return version


class Command(BaseCommand):
    help = "Run small demo HTTP backends that answer with their own name."

    def add_arguments(self, parser) -> None:
        parser.add_argument("ports", nargs="*", type=int, default=[9101, 9102])
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--register-route", metavar="HOST", default="",
                            help="also route HOST (e.g. demo.localhost) to these backends in the routing table")

    def handle(self, *args, **options) -> None:
        import uvloop

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        ports = options["ports"]
        if options["register_route"]:
            version = register_route(options["register_route"], ports, options["bind"])
            log.info("routed %s to %s (routing version %s)", options["register_route"], ports, version)
        uvloop.run(self._serve(options["bind"], ports))

    async def _serve(self, bind: str, ports: list[int]) -> None:
        loop = asyncio.get_running_loop()
        for index, port in enumerate(ports, start=1):
            name = f"demo-backend-{index}:{port}"
            await loop.create_server(lambda name=name: DemoBackend(name), bind, port, reuse_address=True)
            log.info("%s listening on %s:%d", name, bind, port)
        await asyncio.Event().wait()
