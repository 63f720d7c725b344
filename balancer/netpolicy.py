"""The one address policy: which addresses the platform may open a connection to on a tenant's behalf.

Used by backend validation (``balancer.validation.clean_address``: the API, bulk and config import), by the
health checker before each probe and by the proxy before each new upstream connection (so a name that
resolved to a public address at validation and to 127.0.0.1 now, DNS rebinding, is still refused).

Rules:

- the platform's own listeners: Redis (``REDIS_URL``, ``CELERY_BROKER_URL``), the web port, the proxy's
  listeners and admin ports, anything in ``VF_PLATFORM_LISTENERS``; a listener bound to 0.0.0.0 or ``::``
  matches every address of this machine, one bound to a loopback address every loopback address. Never allowed.
- unspecified, link-local (169.254/16 with the cloud metadata service, fe80::/10), multicast, broadcast and
  reserved addresses. Never allowed.
- loopback (127/8, ::1): refused unless ``VF_BACKEND_ALLOWED_NETWORKS`` lists a network *inside* a loopback
  range (``127.0.0.1/32``; bin/up's demo backends and the test suite's listen there). A broad entry such as
  ``0.0.0.0/0`` never opens loopback by accident.
- private ranges (RFC 1918, CGNAT 100.64/10, ULA fc00::/7): refused unless inside a network of
  ``VF_BACKEND_ALLOWED_NETWORKS``.

IPv4 addresses embedded in IPv6 (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``,
6to4 ``2002::/16``) are judged as the IPv4 address they reach. Host names are resolved and every answer is
judged; a name that does not resolve yet is accepted by validation (the connect-time check still applies).
Well-known cloud metadata names are refused by name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from veloflux_site.env import split_host_port

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_net = ipaddress.ip_network
LOOPBACK = (_net("127.0.0.0/8"), _net("::1/128"))
LINK_LOCAL = (_net("169.254.0.0/16"), _net("fe80::/10"))
PRIVATE = (_net("10.0.0.0/8"), _net("172.16.0.0/12"), _net("192.168.0.0/16"), _net("100.64.0.0/10"),
           _net("fc00::/7"))
_NAT64 = (_net("64:ff9b::/96"), _net("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = _net("::/96")
BROADCAST = ipaddress.IPv4Address("255.255.255.255")
THIS_NETWORK = _net("0.0.0.0/8")  # connecting to 0.0.0.0 reaches this machine
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.internal", "metadata.tencentyun.com", "metadata.platformequinix.com",
})
YOUR_OWN = "backends must be your own servers"


class AddressRefused(ValueError):
    """An address (or a name resolving to one) the platform will not connect to; the message says why.
    ``loop``: it is one of the proxy's own traffic listeners (the proxy answers 508 Loop Detected)."""

    def __init__(self, message: str, loop: bool = False):
        super().__init__(message)
        self.loop = loop


@dataclass(frozen=True)
class Listener:
    host: IPAddress | None  # None: bound to every address of this machine (0.0.0.0 / ::)
    port: int
    name: str
    loop: bool = False  # the proxy's own traffic listener: forwarding there is a loop

    def matches(self, ip: IPAddress, port: int) -> bool:
        if port != self.port:
            return False
        if self.host is None:
            return is_local(ip)
        if self.host.is_loopback:  # a loopback listener is reachable as 127.x and, often, ::1 (Redis binds both)
            return ip.is_loopback
        return ip == self.host


@dataclass(frozen=True)
class Policy:
    allowed: tuple[IPNetwork, ...] = ()
    listeners: tuple[Listener, ...] = ()

    def with_listeners(self, listeners: Iterable[Listener]) -> Policy:
        return Policy(self.allowed, (*self.listeners, *listeners))


# --- parsing ---------------------------------------------------------------------
def parse_networks(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def parse_ip(host: str) -> IPAddress | None:
    """A canonical IP literal (brackets allowed) -> the address; a host name -> None.

    Spellings that ``inet_aton`` (so the resolver) would turn into an address but that are not a dotted quad
    (``0x7f.1``, ``2130706433``, ``127.1``, ``0177.0.0.1``) raise: they exist to slip past checks."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:
        raise AddressRefused(f"{host!r}: an IPv6 zone (%...) is not allowed in a backend address")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        socket.inet_aton(text)
    except OSError:
        return None
    raise AddressRefused(f"{host!r} is an unusual spelling of an IPv4 address; write it as four decimal numbers, "
                         "e.g. 203.0.113.7")


def effective_ip(ip: IPAddress) -> IPAddress:
    """The address a connection really reaches: the IPv4 address inside mapped, compatible, NAT64 or 6to4 forms."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def listener(text: str, name: str, loop: bool = False) -> Listener | None:
    """'host:port', '[v6]:port', '*:port' or ':port' -> a Listener; a host name is resolved (None if it does not)."""
    host, _, port = text.strip().rpartition(":")
    if not port.isdigit():
        return None
    host = host.strip("[]")
    if host in ("", "*", "0.0.0.0", "::"):
        return Listener(None, int(port), name, loop)
    addresses = _resolve_quietly(host)
    return Listener(addresses[0], int(port), name, loop) if addresses else None


def redis_listeners(url: str, name: str = "Redis") -> list[Listener]:
    """Every host:port in a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL (unix:// has none).
    A host name there is resolved once, so that a Redis named "redis" in a compose file is protected too."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return []
    default = 26379 if parts.scheme == "redis+sentinel" else 6379
    found = []
    for hostport in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, port = split_host_port(hostport, default)
        host = host or "127.0.0.1"  # redis-py's default host
        found.extend(Listener(ip, port, name) for ip in _resolve_quietly(host))
    return found


def _resolve_quietly(host: str) -> list[IPAddress]:
    try:
        ip = parse_ip(host)
    except AddressRefused:
        return []
    if ip is not None:
        return [effective_ip(ip)]
    try:
        return resolve(host, 0, 1.0)
    except OSError:
        return []


# --- local addresses -------------------------------------------------------------
_LOCAL_TTL = 30.0
_local_cache: dict[IPAddress, tuple[bool, float]] = {}


def is_local(ip: IPAddress) -> bool:
    """Whether ``ip`` is an address of this machine: binding a socket to it succeeds only then."""
    now = time.monotonic()
    cached = _local_cache.get(ip)
    if cached is not None and cached[1] > now:
        return cached[0]
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(ip), 0))
        local = True
    except OSError:
        local = ip.is_loopback or ip.is_unspecified
    if len(_local_cache) > 4096:
        _local_cache.clear()
    _local_cache[ip] = (local, now + _LOCAL_TTL)
    return local


# --- the rules -------------------------------------------------------------------
def _allowed(policy: Policy, ip: IPAddress, loopback: bool) -> bool:
    """Inside an allowed network; for a loopback address, one that itself lies inside a loopback range."""
    return any(ip.version == net.version and ip in net
               and (not loopback or any(net.version == lo.version and net.subnet_of(lo) for lo in LOOPBACK))
               for net in policy.allowed)


def refused(policy: Policy, ip: IPAddress, port: int, name: str = "") -> AddressRefused | None:
    """The refusal of ip:port (``name``: the host name that resolved to it), or None when it is allowed.

    A listener is named as a platform service only when nothing else refuses the address: otherwise creating
    backends on 127.0.0.1:1..65535 would tell a tenant which ports the platform's services use."""
    real = effective_ip(ip)
    prefix = f"{name} resolves to {ip}: " if name else ""
    listener_hit = next((item for item in policy.listeners if item.matches(real, port)), None)
    loop = listener_hit is not None and listener_hit.loop
    reason = _reason(policy, ip, real, port)
    if reason is None and listener_hit is not None:
        reason = f"address {_shown(ip, port)} is a platform service; {YOUR_OWN}"
    return None if reason is None else AddressRefused(prefix + reason, loop=loop)


def _shown(ip: IPAddress, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _reason(policy: Policy, ip: IPAddress, real: IPAddress, port: int) -> str | None:
    shown = _shown(ip, port)
    if real.is_unspecified or (real.version == 4 and real in THIS_NETWORK):
        return f"address {shown} is the unspecified address (this machine); {YOUR_OWN}"
    if any(real.version == net.version and real in net for net in LINK_LOCAL):
        return f"address {shown} is link-local (where cloud metadata services live); {YOUR_OWN}"
    if real.is_multicast or real == BROADCAST:
        return f"address {shown} is a multicast or broadcast address; a backend must be one server"
    if real.is_loopback:
        if _allowed(policy, real, loopback=True):
            return None
        return f"address {shown} is a loopback address (the platform's own machine); {YOUR_OWN}"
    if any(real.version == net.version and real in net for net in PRIVATE):
        if _allowed(policy, real, loopback=False):
            return None
        return (f"address {shown} is in a private network this platform does not reach; use a public address "
                "(an operator may allow private networks with VF_BACKEND_ALLOWED_NETWORKS)")
    if real.is_reserved:
        return f"address {shown} is in a reserved range; {YOUR_OWN}"
    return None


def check_ip(policy: Policy, ip: IPAddress, port: int, name: str = "") -> None:
    error = refused(policy, ip, port, name)
    if error is not None:
        raise error


def check_name(host: str) -> None:
    name = host.lower().rstrip(".")
    if name in METADATA_NAMES:
        raise AddressRefused(f"{host!r} is a cloud metadata service; {YOUR_OWN}")


# --- resolution ------------------------------------------------------------------
def _answers(infos: list) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


def resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    """Every address ``host`` resolves to, within ``timeout`` (TimeoutError past it; OSError if it does not)."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, name="netpolicy-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise TimeoutError(f"resolving {host} took longer than {timeout:g}s")
    if isinstance(outcome[0], OSError):
        raise outcome[0]
    return _answers(outcome[0])


def check_host(policy: Policy, host: str, port: int, timeout: float) -> list[IPAddress]:
    """Validation: the checked addresses of host:port ([] for a name that does not resolve yet).
    Raises AddressRefused naming the first refused answer."""
    ip = parse_ip(host)
    if ip is not None:
        check_ip(policy, ip, port)
        return [ip]
    check_name(host)
    try:
        answers = resolve(host, port, timeout)
    except OSError:
        return []  # not in DNS (yet): the health checker and the proxy check it when it resolves
    for answer in answers:
        check_ip(policy, answer, port, host)
    return answers


async def resolve_checked(policy: Policy, host: str, port: int,
                          loop: asyncio.AbstractEventLoop | None = None) -> list[IPAddress]:
    """Connect time: the addresses to connect to, every answer checked (one resolution; connect to these only).
    Raises AddressRefused, or OSError when the name does not resolve."""
    ip = parse_ip(host)
    if ip is not None:
        check_ip(policy, ip, port)
        return [ip]
    check_name(host)
    loop = loop or asyncio.get_running_loop()
    answers = _answers(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    for answer in answers:
        check_ip(policy, answer, port, host)
    if not answers:
        raise OSError(f"{host} has no address")
    return answers


# --- the platform's policy from Django settings ------------------------------------
_cache: dict[tuple, Policy] = {}


def policy_from_settings() -> Policy:
    """The policy of this deployment (cached per value of the settings it reads)."""
    from django.conf import settings

    key = (tuple(getattr(settings, "BACKEND_ALLOWED_NETWORKS", ())), tuple(getattr(settings, "PLATFORM_LISTENERS", ())),
           settings.REDIS_URL, getattr(settings, "CELERY_BROKER_URL", ""), getattr(settings, "WEB_PORT", 8000),
           settings.PROXY_HOST, settings.PROXY_PORT, settings.PROXY_HTTPS_PORT, settings.PROXY_ADMIN_PORT,
           settings.PROXY_WORKERS)
    policy = _cache.get(key)
    if policy is None:
        if len(_cache) > 32:
            _cache.clear()
        policy = _cache[key] = _build(*key)
    return policy


def proxy_listeners(host: str, port: int, https_port: int, admin_host: str, admin_port: int,
                    workers: int) -> list[Listener]:
    found = [listener(f"[{host}]:{port}", "the proxy's listener", loop=True)]
    if https_port:
        found.append(listener(f"[{host}]:{https_port}", "the proxy's HTTPS listener", loop=True))
    if admin_port:
        found.extend(listener(f"[{admin_host}]:{admin_port + i}", "the proxy's admin endpoint")
                     for i in range(workers))
    return [item for item in found if item is not None]


def _build(allowed: tuple, extra: tuple, redis_url: str, broker_url: str, web_port: int, proxy_host: str,
           proxy_port: int, https_port: int, admin_port: int, workers: int) -> Policy:
    listeners = [*redis_listeners(redis_url), *(redis_listeners(broker_url, "the task broker") if broker_url else [])]
    listeners.append(Listener(None, web_port, "the web API"))
    listeners.extend(proxy_listeners(proxy_host, proxy_port, https_port, "127.0.0.1", admin_port, workers))
    listeners.extend(item for item in (listener(text, "a platform listener") for text in extra) if item is not None)
    return Policy(parse_networks(allowed), tuple(dict.fromkeys(listeners)))
