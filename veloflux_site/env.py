"""Strict environment parsing for settings.

Every helper raises ``ImproperlyConfigured`` naming the variable and what it
expected, so a bad deployment fails at start instead of at the first request.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_REQUIRED = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def load_dotenv(path: Path) -> None:
    """Load KEY=VALUE lines from ``path`` without overriding the real environment."""
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ImproperlyConfigured(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def _raw(name: str, default: object) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _REQUIRED:
            raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
        return None
    return value


def env_str(name: str, default: object = _REQUIRED, choices: tuple[str, ...] | None = None) -> str:
    value = _raw(name, default)
    if value is None:
        return default  # type: ignore[return-value]
    if choices and value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is invalid: expected one of {', '.join(choices)}.")
    return value


def env_bool(name: str, default: object = _REQUIRED) -> bool:
    value = _raw(name, default)
    if value is None:
        return bool(default)
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is invalid: expected true/false (or 1/0, yes/no, on/off).")


def env_int(name: str, default: object = _REQUIRED, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name, default)
    if value is None:
        return default  # type: ignore[return-value]
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is invalid: expected a whole number.")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is invalid: must be at least {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is invalid: must be at most {maximum}.")
    return number


def env_float(name: str, default: object = _REQUIRED, minimum: float | None = None,
              maximum: float | None = None) -> float:
    value = _raw(name, default)
    if value is None:
        return float(default)  # type: ignore[arg-type]
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is invalid: expected a number.")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(f"{name}={number} is invalid: must be between {minimum} and {maximum}.")
    return number


def parse_duration(text: str | int | float) -> float:
    """Seconds from ``"500ms"``, ``"5s"``, ``"15m"``, ``"2h"``, ``"14d"`` or a plain number of seconds."""
    if isinstance(text, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 500ms, 5s, 15m, 2h or 14d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def env_duration(name: str, default: object = _REQUIRED) -> float:
    value = _raw(name, default)
    if value is None:
        return parse_duration(default)  # type: ignore[arg-type]
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is invalid: {exc}.")


def env_list(name: str, default: object = _REQUIRED) -> list[str]:
    value = _raw(name, default)
    if value is None:
        return list(default)  # type: ignore[call-overload]
    return [item.strip() for item in value.split(",") if item.strip()]


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (a host name other than localhost is not known to be local)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """"host", "host:port", "[v6]:port", "[v6]" or a bare IPv6 address -> (host, port); no port: ``default_port``.
    Raises ValueError for a port that is not a number (the caller checks the host and the port's range)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    return host, int(port) if port else default_port


def env_networks(name: str, default: object = _REQUIRED, strict: bool = True) -> list[str]:
    """Comma-separated IP addresses or CIDR networks (``10.0.0.0/8``), normalized; "*" is refused.
    ``strict=False`` also takes an address with a prefix (``10.0.0.1/8`` is ``10.0.0.0/8``)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=strict)))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}={item!r} is invalid: expected IP addresses or networks such as "
                                       f"10.0.0.1 or 10.0.0.0/8, comma-separated ({exc}).")
    return networks


REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


def env_redis_url(name: str, default: object = _REQUIRED) -> str:
    value = _raw(name, default)
    url = default if value is None else value
    scheme = urlsplit(str(url)).scheme
    if scheme not in REDIS_SCHEMES:
        raise ImproperlyConfigured(
            f"{name}={url!r} is invalid: the scheme must be one of {', '.join(REDIS_SCHEMES)} "
            "(e.g. redis://127.0.0.1:6379/0)."
        )
    return str(url)
