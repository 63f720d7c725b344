"""The client's address, trusting X-Forwarded-For only from configured proxies.

The one client-address function of the app (login rate limit, audit entries, web login).
``settings.TRUSTED_PROXIES`` (VF_TRUSTED_PROXIES, empty: none) is also what the Procfile gives
uvicorn (``--forwarded-allow-ips``), whose default would trust 127.0.0.1. uvicorn applies the
same rule first, so REMOTE_ADDR is already the client behind a trusted proxy and walking the
header again changes nothing; under another server (or the test client) this does the work.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=1)
def _trusted_networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def _is_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded or not _is_trusted(remote):
        return remote
    # Walk from the nearest hop back; the first untrusted address is the client.
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop):
            return hop
    return hops[0] if hops else remote
