"""Who may claim which host name: the platform's own names, public suffixes, wildcards.

Pure rules (no Redis): ``balancer.domains`` and the route checks of ``balancer.workspace`` call them.

- ``<tenant-slug>.<VF_PLATFORM_DOMAIN>`` is the tenant's platform name, verified from the start
  (slugs are unique, so the name is too); every other name at or under the platform domain is
  reserved: nobody can claim it.
- A wildcard ``*.example.com`` is proved on its base name ``example.com`` and is refused at a public
  suffix level (``*.com``, ``*.co.uk``): such a wildcard would take names other tenants could hold.
  The public suffix list is the one bundled with ``publicsuffixlist`` (never fetched at run time).
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from publicsuffixlist import PublicSuffixList

CHALLENGE_LABEL = "_veloflux-challenge"
HTTP_CHALLENGE_DIR = "/.well-known/veloflux-challenge/"


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    # The bundled list; no network. Unknown top-level names (intranet, test) are not taken as public
    # suffixes, so a self-hosted platform may route single-label names; wildcards over them are refused below.
    return PublicSuffixList(accept_unknown=False)


def platform_domain() -> str:
    return (settings.PLATFORM_DOMAIN or "").strip().lower().strip(".")


def platform_name(slug: str | None) -> str | None:
    """The tenant's platform-provided host, or None when the platform has no domain (or no slug)."""
    domain = platform_domain()
    return f"{slug}.{domain}" if domain and slug else None


def is_wildcard(host: str) -> bool:
    return host.startswith("*.")


def base_name(host: str) -> str:
    """The name whose control proves a claim: the host itself, or a wildcard's base."""
    return host[2:] if is_wildcard(host) else host


def under_platform_domain(host: str) -> bool:
    domain = platform_domain()
    name = base_name(host)
    return bool(domain) and (name == domain or name.endswith(f".{domain}"))


def is_public_suffix(name: str) -> bool:
    return bool(_suffixes().is_public(name))


def reserved_reason(host: str, own_platform_name: str | None) -> str | None:
    """Why no tenant (but the platform name's own tenant) may use ``host``; None when it may be claimed."""
    if host == own_platform_name:
        return None
    if under_platform_domain(host):
        return (f"{host} is under the platform domain {platform_domain()}, whose names belong to the platform "
                f"(your own platform name is {own_platform_name or 'not set'}); use a domain you control")
    if is_wildcard(host) and "." not in base_name(host):
        return (f"{host} would take every name of the top-level domain {base_name(host)}; claim your own "
                "domain instead, e.g. *.example.com")
    if is_public_suffix(base_name(host)):
        if is_wildcard(host):
            return (f"{host} would take every name under the public suffix {base_name(host)}, which belongs to "
                    "many owners; claim your own domain instead, e.g. *.example.com")
        return f"{host} is a public suffix, not a domain anyone can own; claim a name under it"
    return None


def challenge_dns_name(host: str) -> str:
    return f"{CHALLENGE_LABEL}.{base_name(host)}"


def challenge_http_path(token: str) -> str:
    return f"{HTTP_CHALLENGE_DIR}{token}"
