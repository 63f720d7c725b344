"""Runtime settings of one proxy process (filled by ``manage.py runproxy``; never read per request)."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field

from balancer.netpolicy import Policy


@dataclass
class ProxySettings:
    host: str = "0.0.0.0"
    port: int = 8080
    https_port: int = 0  # 0 = no HTTPS listener
    admin_port: int = 9180  # worker i listens on admin_port + i; 0 = no admin endpoint
    admin_host: str = "127.0.0.1"
    workers: int = 1
    redis_url: str = "redis://127.0.0.1:6390/0"
    secret: bytes = b"dev"  # signs sticky cookies
    header_timeout: float = 10.0  # whole request head must arrive within this (slowloris -> 408)
    idle_timeout: float = 60.0  # keep-alive client connection without a request
    connect_timeout: float = 3.0
    upstream_timeout: float = 60.0  # upstream silent for this long while a response is awaited -> 504
    upstream_idle_timeout: float = 30.0  # pooled upstream connection unused for this long is closed
    max_header_bytes: int = 16384  # request line + headers (-> 431)
    max_idle_upstream: int = 256  # idle pooled connections kept per backend per worker
    trusted_proxies: tuple = ()  # networks whose X-Forwarded-For / -Proto are kept
    eject_after: int = 5  # consecutive connect errors / 5xx before a passive ejection
    eject_base: float = 5.0  # first ejection lasts this long, doubling each time (max 300 s)
    access_log: bool = False
    policy: Policy = field(default_factory=Policy)  # backend addresses the proxy may connect to (balancer/netpolicy)
    max_hops: int = 5  # a request that already went through this many VeloFlux proxies gets 508
    max_upstream_per_tenant: int = 256  # concurrent upstream connections (open or opening) per tenant per worker
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def trusts(self, ip: str) -> bool:
        if not self.trusted_proxies:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.trusted_proxies)


def parse_networks(text: str) -> tuple:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())
