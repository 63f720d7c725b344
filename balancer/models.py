"""Record types of the load balancer: pools, backends, routes (plain dataclasses stored as JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from veloflux_site.storage.records import Record, new_id

ALGORITHMS: tuple[str, ...] = (
    "round_robin",
    "weighted_round_robin",
    "least_conn",
    "ip_hash",
    "random",
    "least_latency",
    "adaptive",
)
# Names the API once accepted but the proxy never built: it ran them as round robin. New input refuses them
# (balancer.validation); a pool stored before keeps its name, runs round robin and carries this warning.
UNBUILT_ALGORITHMS: dict[str, str] = {
    "geo_proximity": "geo_proximity is not implemented yet (the proxy knows no client region): "
                     "a pool with it runs as round_robin",
}
BACKEND_STATES: tuple[str, ...] = ("active", "draining", "disabled")
HEALTH_CHECK_TYPES: tuple[str, ...] = ("http", "tcp")
HEALTH_CHECK_METHODS: tuple[str, ...] = ("GET", "HEAD", "OPTIONS", "POST")

# The platform's health-check defaults; a pool's and a backend's own values override them.
PLATFORM_HEALTH_CHECK: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "path": "/health",
    "interval": 5.0,
    "timeout": 2.0,
    "expected_status": [200],
    "rise": 2,
    "fall": 3,
}
DEFAULT_WEIGHT = 100


class _FastLoad:
    """``from_dict`` with the field names computed once per class (a big tenant loads thousands)."""

    _field_names: ClassVar[dict[type, frozenset[str]]] = {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        names = _FastLoad._field_names.get(cls)
        if names is None:
            names = _FastLoad._field_names[cls] = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(kw_only=True)
class Pool(_FastLoad, Record):
    """A named group of backends; the name is the pool's id (unique in its tenant)."""

    name: str
    algorithm: str = "round_robin"
    sticky_sessions: bool = False
    health_check: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.id = self.name

    def warnings(self) -> list[str]:
        """Why the pool does not run as stored (empty when it does)."""
        unbuilt = UNBUILT_ALGORITHMS.get(self.algorithm)
        return [f"{unbuilt}; choose another algorithm"] if unbuilt else []


@dataclass(kw_only=True)
class Backend(_FastLoad, Record):
    id: str = field(default_factory=lambda: new_id("be_"))
    pool: str
    address: str
    weight: int = DEFAULT_WEIGHT
    region: str | None = None
    enabled: bool = True
    state: str = "active"
    health_check: dict[str, Any] | None = None


@dataclass(kw_only=True)
class Route(_FastLoad, Record):
    id: str = field(default_factory=lambda: new_id("rt_"))
    host: str
    path_prefix: str = "/"
    pool: str
    max_body_bytes: int | None = None


@dataclass(kw_only=True)
class Domain(_FastLoad, Record):
    """A tenant's claim on a host name (``api.example.com`` or ``*.example.com``); the host is its id.

    ``pending`` until the tenant proves control (DNS TXT or HTTP token, ``balancer.domains``); a pending
    claim expires at ``expires_at`` (epoch seconds) and never blocks another tenant that proves first."""

    host: str
    status: str = "pending"  # pending | verified
    token: str = ""
    method: str | None = None  # how it was verified: dns_txt | http | migrated
    verified_at: str | None = None
    expires_at: float | None = None

    def __post_init__(self) -> None:
        self.id = self.host


DOMAIN_STATUSES: tuple[str, ...] = ("pending", "verified")

# The fields a client may set on each kind (everything else is managed by us).
POOL_FIELDS = ("name", "algorithm", "sticky_sessions", "health_check")
BACKEND_FIELDS = ("pool", "address", "weight", "region", "enabled", "state", "health_check")
ROUTE_FIELDS = ("host", "path_prefix", "pool", "max_body_bytes")
