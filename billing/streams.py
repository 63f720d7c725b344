"""The billing stream (/api/ws/billing): each visible tenant's usage this period against its plan.
Registered in settings.REALTIME_STREAMS."""

from __future__ import annotations

from tenants import monitoring
from tenants.plans import PLANS
from tenants.store import TenantStore
from veloflux_site.realtime.streams import StreamConsumer


def billing(tenant_ids: list[str]) -> dict:
    tenants = TenantStore().get_many(tenant_ids)
    rows = []
    for tenant in tenants:
        usage = monitoring.usage(tenant)
        plan = PLANS[tenant.plan]
        rows.append({"tenant_id": tenant.id, "plan": plan.id, "period": usage["period"],
                     "requests": usage["requests"], "bytes_in": usage["bytes_in"], "bytes_out": usage["bytes_out"],
                     "request_quota_used_percent": usage["request_quota_used_percent"],
                     "amount_due": plan.monthly_price, "currency": plan.currency})
    return {"tenants": rows}


class BillingStream(StreamConsumer):
    name, interval, event_topics = "billing", 30.0, ("billing",)

    def build(self) -> dict:
        return billing(self.tenant_ids)
