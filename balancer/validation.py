"""Validation of pools, backends, routes and health checks, with messages a person can act on.

Every ``clean_*`` function takes what a client sent and returns ``(clean, errors)``:
``clean`` holds the normalised values of the fields that were given, ``errors`` maps a
field path to a list of messages. Nothing here touches Redis; a backend address's host name is resolved
(with a short timeout) to check every answer against the address policy.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any

from django.conf import settings

from balancer import netpolicy
from balancer.models import (
    ALGORITHMS,
    BACKEND_FIELDS,
    BACKEND_STATES,
    HEALTH_CHECK_METHODS,
    HEALTH_CHECK_TYPES,
    POOL_FIELDS,
    ROUTE_FIELDS,
    UNBUILT_ALGORITHMS,
)

Errors = dict[str, list[str]]

# Managed by us: accepted in a body (a client often sends back what it read) and ignored.
READ_ONLY_FIELDS = frozenset({"id", "version", "created_at", "updated_at", "healthy", "health", "backends"})
HEALTH_CHECK_FIELDS = ("type", "method", "path", "interval", "timeout", "expected_status", "rise", "fall")

_POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_BACKEND_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_PATH_FORBIDDEN = re.compile(r"[\s{}?#]")
MAX_INTERVAL_SECONDS = 3600.0
MAX_BODY_BYTES = 10 * 1024**3


def _add(errors: Errors, name: str, message: str) -> None:
    errors.setdefault(name, []).append(message)


# --- scalars -------------------------------------------------------------------
def parse_duration(value: Any) -> float:
    """'5s', '500ms', '1m', 5 or 2.5 (seconds) -> seconds as a float. Raises ValueError with a message."""
    if isinstance(value, bool) or value is None:
        raise ValueError('must be a duration such as "5s", "500ms" or a number of seconds')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f'{value!r} is not a duration; write e.g. "5s", "500ms", "1m" or a number of seconds')
        number, unit = float(match.group(1)), match.group(2) or "s"
        seconds = number / 1000 if unit == "ms" else number * 60 if unit == "m" else number
    else:
        raise ValueError('must be a duration such as "5s", "500ms" or a number of seconds')
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("must be greater than zero")
    if seconds > MAX_INTERVAL_SECONDS:
        raise ValueError(f"must be at most {int(MAX_INTERVAL_SECONDS)}s")
    return round(seconds, 3)


def _int_in(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise ValueError(f"must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise ValueError(f"must be from {low} to {high}, got {value}")
    return value


_BOOL_WORDS = {"true": True, "false": False, "on": True, "off": False, "1": True, "0": False}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:  # HTML forms send words
        return _BOOL_WORDS[value.strip().lower()]
    raise ValueError("must be true or false")


def is_hostname(host: str, allow_underscore: bool = False) -> bool:
    """RFC 1123 names; backends may also use '_' (Docker Compose service names do)."""
    if not host or len(host) > 253:
        return False
    labels = host.rstrip(".").split(".")
    pattern = _BACKEND_LABEL if allow_underscore else _LABEL
    return all(pattern.match(label) for label in labels)


def clean_address(value: Any) -> str:
    """'host:port' with a DNS name, an IPv4 literal or a bracketed IPv6 literal; port 1..65535.

    The address must also pass the platform's address policy (balancer.netpolicy): no platform service,
    loopback, link-local/metadata or (unless allowed) private address, and a name must not resolve to one."""
    host, port = _parse_address(value)
    ip = netpolicy.parse_ip(host)  # raises for odd IPv4 spellings (0x7f.1, 2130706433, 127.1, 0177.0.0.1)
    if ip is not None and ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:a.b.c.d is a.b.c.d: store (and judge) it as what it reaches
    if ip is None and (re.fullmatch(r"[0-9.]+", host) or not is_hostname(host, allow_underscore=True)):
        raise ValueError(f"{host!r} is neither a valid host name nor an IP address")
    policy = netpolicy.policy_from_settings()
    netpolicy.check_host(policy, host if ip is None else str(ip), port, settings.BACKEND_RESOLVE_TIMEOUT)
    rendered = host if ip is None else f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{rendered}:{port}"


def _parse_address(value: Any) -> tuple[str, int]:
    """The syntax of 'host:port' / '[v6]:port' -> (host without brackets, lower-cased; port)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError('must be "host:port", e.g. "10.0.0.1:8080" or "app.internal:80"')
    text = value.strip()
    if "://" in text:
        raise ValueError(f'{text!r} has a scheme; write just "host:port", e.g. "10.0.0.1:8080"')
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f'{text!r}: an IPv6 address is written "[2001:db8::1]:8080"')
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not a valid IPv6 address")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f'{text!r} has no port; write "host:port", e.g. "{text}:80"')
        if ":" in host:
            raise ValueError(f'{text!r}: put an IPv6 address in brackets, e.g. "[{host}]:{port_text}"')
    if not port_text.isdigit():
        raise ValueError(f"port {port_text!r} must be a number from 1 to 65535")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range; it must be from 1 to 65535")
    return host.lower(), port


def clean_host(value: Any) -> str:
    """An exact host (api.example.com) or a wildcard (*.example.com), lower-cased."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError('must be a host name such as "api.example.com" or a wildcard such as "*.example.com"')
    host = value.strip().lower().rstrip(".")
    if ":" in host or "/" in host:
        raise ValueError(f"{value!r} must be a bare host name, without scheme, port or path")
    name = host[2:] if host.startswith("*.") else host
    if "*" in name:
        raise ValueError(f'{value!r}: a wildcard may only be the first label, as in "*.example.com"')
    if not is_hostname(name):
        raise ValueError(f"{value!r} is not a valid host name")
    return host


def clean_path_prefix(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError('must start with "/", e.g. "/" or "/api"')
    if len(value) > 1024:
        raise ValueError("must be at most 1024 characters")
    if _PATH_FORBIDDEN.search(value):
        raise ValueError("must not contain spaces, braces, '?' or '#'")
    return value


def clean_pool_name(value: Any) -> str:
    if not isinstance(value, str) or not _POOL_NAME.match(value):
        raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


def clean_expected_status(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("must list at least one HTTP status, e.g. [200]")
    statuses = []
    for item in items:
        try:
            statuses.append(_int_in(item, 100, 599))
        except ValueError:
            raise ValueError(f"{item!r} is not an HTTP status (100-599)")
    return sorted(set(statuses))


# --- health checks -----------------------------------------------------------
def clean_health_check(raw: Any, prefix: str = "health_check") -> tuple[dict[str, Any] | None, Errors]:
    """A (possibly partial) health check; ``None`` means "inherit everything"."""
    errors: Errors = {}
    if raw is None:
        return None, errors
    if not isinstance(raw, dict):
        return None, {prefix: ["must be an object such as {\"path\": \"/health\", \"interval\": \"5s\"}"]}
    clean: dict[str, Any] = {}
    for name, value in raw.items():
        where = f"{prefix}.{name}"
        try:
            if name == "type":
                if value not in HEALTH_CHECK_TYPES:
                    raise ValueError(f"must be one of {', '.join(HEALTH_CHECK_TYPES)}")
                clean[name] = value
            elif name == "method":
                method = str(value).upper()
                if method not in HEALTH_CHECK_METHODS:
                    raise ValueError(f"must be one of {', '.join(HEALTH_CHECK_METHODS)}")
                clean[name] = method
            elif name == "path":
                clean[name] = clean_path_prefix(value)
            elif name in ("interval", "timeout"):
                clean[name] = parse_duration(value)
            elif name == "expected_status":
                clean[name] = clean_expected_status(value)
            elif name in ("rise", "fall"):
                clean[name] = _int_in(value, 1, 100)
            elif name == "retries":  # the VeloFlux file's name for ``fall``
                clean["fall"] = _int_in(value, 1, 100)
            else:
                raise ValueError(f"unknown field; allowed: {', '.join(HEALTH_CHECK_FIELDS)}")
        except ValueError as exc:
            _add(errors, where, str(exc))
    if not clean and not errors:
        return None, errors  # {} inherits everything, like null
    if "interval" in clean and "timeout" in clean and clean["timeout"] >= clean["interval"]:
        _add(errors, f"{prefix}.timeout", f"must be shorter than the interval ({clean['timeout']}s is not less "
                                         f"than {clean['interval']}s)")
    return clean, errors


# --- objects -------------------------------------------------------------------
def _unknown(data: dict, allowed: tuple[str, ...], errors: Errors, extra: tuple[str, ...] = ()) -> None:
    for name in data:
        if name not in allowed and name not in READ_ONLY_FIELDS and name not in extra:
            _add(errors, name, f"unknown field; allowed: {', '.join(allowed)}")


def _required(data: dict, names: tuple[str, ...], errors: Errors) -> None:
    for name in names:
        if data.get(name) in (None, ""):
            _add(errors, name, "this field is required")


def _check_fields(data: dict, checks: tuple, clean: dict, errors: Errors) -> None:
    """Run each (field, checker) on the fields present: the cleaned value, or the checker's message."""
    for name, check in checks:
        if name in data and name not in errors:
            try:
                clean[name] = check(data[name])
            except ValueError as exc:
                _add(errors, name, str(exc))


def _as_object(data: Any) -> tuple[dict, Errors]:
    if not isinstance(data, dict):
        return {}, {"non_field_errors": ["expected a JSON object"]}
    return data, {}


def clean_pool(data: Any, partial: bool = False, extra: tuple[str, ...] = ()) -> tuple[dict, Errors]:
    data, errors = _as_object(data)
    if errors:
        return {}, errors
    _unknown(data, POOL_FIELDS, errors, extra)
    if not partial:
        _required(data, ("name",), errors)
    clean: dict[str, Any] = {}
    _check_fields(data, (("name", clean_pool_name), ("sticky_sessions", _bool)), clean, errors)
    if "algorithm" in data:
        if data["algorithm"] in ALGORITHMS:
            clean["algorithm"] = data["algorithm"]
        elif isinstance(data["algorithm"], str) and data["algorithm"] in UNBUILT_ALGORITHMS:
            _add(errors, "algorithm", f"{UNBUILT_ALGORITHMS[data['algorithm']]}, so it is refused until it exists; "
                                      f"use one of {', '.join(ALGORITHMS)}")
        else:
            _add(errors, "algorithm", f"{data['algorithm']!r} is not an algorithm; use one of {', '.join(ALGORITHMS)}")
    if "health_check" in data:
        clean["health_check"], hc_errors = clean_health_check(data["health_check"])
        errors.update(hc_errors)
    return clean, errors


def clean_backend(data: Any, partial: bool = False, extra: tuple[str, ...] = ()) -> tuple[dict, Errors]:
    data, errors = _as_object(data)
    if errors:
        return {}, errors
    _unknown(data, BACKEND_FIELDS, errors, extra)
    if not partial:
        _required(data, ("address", "pool"), errors)
    clean: dict[str, Any] = {}
    _check_fields(data, (("address", clean_address), ("weight", lambda v: _int_in(v, 1, 1000)), ("enabled", _bool)),
                  clean, errors)
    if data.get("pool") not in (None, ""):
        if isinstance(data["pool"], str):
            clean["pool"] = data["pool"]
        else:
            _add(errors, "pool", "must be the name of a pool")
    if "region" in data:
        region = data["region"]
        if region is None or region == "":
            clean["region"] = None
        elif isinstance(region, str) and _REGION.match(region):
            clean["region"] = region
        else:
            _add(errors, "region", "must be a short name such as 'us-east-1' (letters, digits, '.', '_', '-')")
    if "state" in data:
        if data["state"] in BACKEND_STATES:
            clean["state"] = data["state"]
        else:
            _add(errors, "state", f"{data['state']!r} is not a state; use one of {', '.join(BACKEND_STATES)}")
    if "health_check" in data:
        clean["health_check"], hc_errors = clean_health_check(data["health_check"])
        errors.update(hc_errors)
    return clean, errors


def clean_route(data: Any, partial: bool = False, extra: tuple[str, ...] = ()) -> tuple[dict, Errors]:
    data, errors = _as_object(data)
    if errors:
        return {}, errors
    _unknown(data, ROUTE_FIELDS, errors, extra)
    if not partial:
        _required(data, ("host", "pool"), errors)
    clean: dict[str, Any] = {}
    _check_fields(data, (("host", clean_host), ("path_prefix", clean_path_prefix)), clean, errors)
    if data.get("pool") not in (None, ""):
        if isinstance(data["pool"], str):
            clean["pool"] = data["pool"]
        else:
            _add(errors, "pool", "must be the name of a pool")
    if "max_body_bytes" in data:
        value = data["max_body_bytes"]
        if value is None or value == "":
            clean["max_body_bytes"] = None
        else:
            try:
                clean["max_body_bytes"] = _int_in(value, 0, MAX_BODY_BYTES)
            except ValueError as exc:
                _add(errors, "max_body_bytes", f"{exc} (bytes), or null for no limit")
    return clean, errors


def clean_global(data: Any) -> tuple[dict, Errors, list[str]]:
    """A tenant's ``global`` section: only ``health_check`` (the tenant's defaults) is a tenant setting.

    Platform-level keys of a VeloFlux file (bind_address, tls, ...) are reported as ignored.
    """
    if data is None:
        return {}, {}, []
    if not isinstance(data, dict):
        return {}, {"global": ["must be an object"]}, []
    clean: dict[str, Any] = {}
    errors: Errors = {}
    ignored = []
    for name, value in data.items():
        if name == "health_check":
            check, hc_errors = clean_health_check(value, "global.health_check")
            errors.update(hc_errors)
            if check:
                clean["health_check"] = check
        else:
            ignored.append(f"global.{name}")
    return clean, errors, ignored


__all__ = [
    "Errors",
    "clean_address",
    "clean_backend",
    "clean_global",
    "clean_health_check",
    "clean_host",
    "clean_path_prefix",
    "clean_pool",
    "clean_route",
    "parse_duration",
]
