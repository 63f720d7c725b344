"""Proof of control of a domain: a DNS TXT record or an HTTP token (the network side of ``balancer.domains``).

- DNS: ``_veloflux-challenge.<base name>`` holds a TXT string equal to the claim's token, looked up
  with dnspython against ``VF_DNS_NAMESERVERS`` ("ip:port,..."; empty: the system resolver).
- HTTP: ``GET http://<base name>:<VF_DOMAIN_HTTP_PORT>/.well-known/veloflux-challenge/<token>``
  answers 200 with the token as its body. Redirects are not followed; at most a few KiB are read.

Each check returns ``(ok, message)``; the message says what was found, so a person can fix it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time

import dns.exception
import dns.nameserver
import dns.resolver
from django.conf import settings

from balancer import netpolicy
from balancer.hosts import base_name, challenge_dns_name, challenge_http_path
from veloflux_site.env import split_host_port

MAX_HTTP_BODY = 4096


def _resolver() -> dns.resolver.Resolver:
    configured = [entry.strip() for entry in settings.DNS_NAMESERVERS if entry.strip()]
    if not configured:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*split_host_port(entry, 53)) for entry in configured]
    resolver.lifetime = float(settings.DOMAIN_CHECK_TIMEOUT)
    resolver.cache = None
    return resolver


def _txt_strings(answer: dns.resolver.Answer) -> list[str]:
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def check_dns_txt(host: str, token: str) -> tuple[bool, str]:
    name = challenge_dns_name(host)
    try:
        answer = _resolver().resolve(name, "TXT")
    except dns.resolver.NXDOMAIN:
        return False, f"{name} does not exist in DNS; add a TXT record there holding the token"
    except dns.resolver.NoAnswer:
        return False, f"{name} has no TXT record; add one holding the token"
    except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout):
        return False, f"no nameserver answered for {name}; try again in a few minutes"
    except dns.exception.DNSException as exc:
        return False, f"the DNS lookup of {name} failed: {exc}"
    found = _txt_strings(answer)
    if token in found:
        return True, f"the TXT record {name} holds the token"
    return False, f"the TXT record {name} does not hold the token (found {len(found)} other value(s))"


def resolve_addresses(host: str) -> list[str]:
    """The host's IPv4/IPv6 addresses, through the same nameservers as the TXT check when configured.
    Either way bounded by the check's timeout (the system resolver has none of its own)."""
    if not settings.DNS_NAMESERVERS:
        return [str(ip) for ip in netpolicy.resolve(host, 0, float(settings.DOMAIN_CHECK_TIMEOUT))]
    resolver = _resolver()
    addresses: list[str] = []
    for kind in ("A", "AAAA"):
        try:
            addresses.extend(record.to_text() for record in resolver.resolve(host, kind))
        except dns.exception.DNSException:
            continue
    return addresses


def connect_to_claimed_host(host: str, port: int, timeout: float) -> socket.socket:
    """Resolve ``host`` (a name a tenant claims) and connect to one of its addresses.

    This is the only place domain verification opens a connection to a tenant-supplied name, so every
    resolved address goes through the platform's address policy first (the same one as backends, health
    checks and the proxy): a claimed name pointed at Redis, metadata or a private range is never fetched.
    """
    addresses = resolve_addresses(host)
    if not addresses:
        raise OSError(f"{host} has no address in DNS")
    policy = netpolicy.policy_from_settings()
    netpolicy.check_name(host)
    for address in addresses:
        netpolicy.check_ip(policy, ipaddress.ip_address(address.split("%", 1)[0]), port, host)
    # One deadline for all the addresses: a name with many unanswering addresses must not hold the
    # verify request for (addresses x timeout).
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            return socket.create_connection((address, port), timeout=remaining)
        except OSError as exc:
            last = exc
    raise last or TimeoutError(f"could not connect to {host} within {timeout:g}s")


class _PreconnectedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, sock: socket.socket, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.sock = sock


def check_http_token(host: str, token: str) -> tuple[bool, str]:
    name, port = base_name(host), settings.DOMAIN_HTTP_PORT
    path = challenge_http_path(token)
    url = f"http://{name}{'' if port == 80 else f':{port}'}{path}"
    timeout = float(settings.DOMAIN_CHECK_TIMEOUT)
    try:
        sock = connect_to_claimed_host(name, port, timeout)
    except netpolicy.AddressRefused as exc:
        return False, f"will not fetch {url}: {exc}"
    except (OSError, dns.exception.DNSException) as exc:
        return False, f"could not connect to {url}: {exc}"
    connection = _PreconnectedHTTP(name, port, sock, timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "VeloFlux-domain-check", "Accept": "text/plain"})
        response = connection.getresponse()
        body = response.read(MAX_HTTP_BODY).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{url} did not answer properly: {exc}"
    finally:
        connection.close()
    if response.status != 200:
        return False, f"{url} answered {response.status}; it must answer 200 with the token as its body"
    if body != token:
        return False, f"{url} answered 200 but its body is not the token"
    return True, f"{url} serves the token"


def prove(host: str, token: str) -> tuple[str | None, dict[str, str]]:
    """Try DNS, then HTTP: (the method that proved control or None, what each check found)."""
    found: dict[str, str] = {}
    ok, found["dns_txt"] = check_dns_txt(host, token)
    if ok:
        return "dns_txt", found
    ok, found["http"] = check_http_token(host, token)
    return ("http" if ok else None), found
