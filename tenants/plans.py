"""The plan catalogue: prices (integer minor units) and the limits a tenant gets. It lives in tenants
(the lowest app: tenants enforce the limits, billing sells the plans and may import it, not the reverse)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    currency: str
    monthly_price: int
    yearly_price: int
    max_pools: int
    max_backends: int
    max_routes: int
    max_users: int
    max_api_keys: int
    requests_per_month: int

    def limits(self) -> dict[str, int]:
        return {
            "max_pools": self.max_pools,
            "max_backends": self.max_backends,
            "max_routes": self.max_routes,
            "max_users": self.max_users,
            "max_api_keys": self.max_api_keys,
            "requests_per_month": self.requests_per_month,
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "limits": self.limits()}


PLANS: dict[str, Plan] = {
    plan.id: plan
    for plan in (
        Plan("free", "Free", "USD", 0, 0, 2, 6, 4, 3, 2, 1_000_000),
        Plan("starter", "Starter", "USD", 2900, 29000, 10, 50, 25, 10, 10, 25_000_000),
        Plan("pro", "Pro", "USD", 9900, 99000, 50, 500, 200, 50, 50, 250_000_000),
        Plan("enterprise", "Enterprise", "USD", 49900, 499000, 1000, 10000, 5000, 1000, 500, 5_000_000_000),
    )
}
