"""Create (or refresh) the demo tenant and a platform admin, and print their credentials.

Idempotent: run it any number of times. Each run sets fresh passwords, since a
stored password cannot be shown again.
"""

from __future__ import annotations

import secrets

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand

from balancer.hosts import platform_name
from balancer.services import ensure_demo_setup
from tenants import services
from tenants.models import User
from tenants.store import TenantStore, UserStore
from veloflux_site.storage.connection import get_redis, warn_if_not_durable
from veloflux_site.storage.repository import retry_on_stale

DEMO_TENANT = "Demo"
DEMO_EMAIL = "demo@veloflux.local"
ADMIN_EMAIL = "admin@veloflux.local"


@retry_on_stale()
def set_password(user: User, password: str, **changes) -> User:
    store = UserStore()
    current = store.get(user.id)
    updated = User.from_dict({**current.to_dict(), **changes, "password_hash": make_password(password),
                              "must_change_password": False})
    return store.update(current, updated)


def ensure_platform_admin(password: str) -> User:
    store = UserStore()
    user = store.find_by_email(ADMIN_EMAIL)
    if user is None:
        return store.create(User(email=ADMIN_EMAIL, first_name="Platform", last_name="Admin",
                                 is_platform_admin=True, password_hash=make_password(password)))
    return set_password(user, password, is_platform_admin=True, active=True)


def ensure_demo_tenant(password: str) -> str:
    """The demo tenant's id; its owner's password is (re)set to ``password``."""
    user = UserStore().find_by_email(DEMO_EMAIL)
    if user is not None and user.memberships:
        set_password(user, password, active=True)
        return min(user.memberships)
    tenant, _, _ = services.create_tenant_with_owner(
        name=DEMO_TENANT, plan="pro", owner_email=DEMO_EMAIL, owner_first_name="Demo", owner_last_name="Owner",
        owner_password=password)
    return tenant.id


class Command(BaseCommand):
    help = "Create or refresh the demo tenant (with a working route) and the platform admin; print credentials."

    def add_arguments(self, parser):
        parser.add_argument("--backend-ports", default="9101,9102", help="ports of the demo backends")
        parser.add_argument("--host", default=None, help="host name of the demo route (default: the demo tenant's "
                                                         "platform name, demo.<VF_PLATFORM_DOMAIN>, served at once)")

    def handle(self, *args, **options):
        get_redis().ping()
        warn_if_not_durable()
        demo_password = secrets.token_urlsafe(12)
        admin_password = secrets.token_urlsafe(12)
        tenant_id = ensure_demo_tenant(demo_password)
        ensure_platform_admin(admin_password)
        ports = [int(p) for p in options["backend_ports"].split(",") if p.strip()]
        tenant = TenantStore().get(tenant_id)
        host = options["host"] or platform_name(tenant.slug) or "demo.localhost"
        route_note = self.ensure_demo_route(tenant_id, host, ports)
        if host != platform_name(tenant.slug):
            route_note += (f"\n  note           {host} is not the tenant's platform name: the route is served once the "
                           "domain is verified (POST /api/domains)")
        self.stdout.write(self.style.SUCCESS("VeloFlux demo is ready."))
        self.stdout.write(f"  demo tenant    {tenant_id}\n"
                          f"  tenant owner   {DEMO_EMAIL} / {demo_password}\n"
                          f"  platform admin {ADMIN_EMAIL} / {admin_password}\n"
                          f"  {route_note}")

    def ensure_demo_route(self, tenant_id: str, host: str, ports: list[int]) -> str:
        addresses = [f"127.0.0.1:{port}" for port in ports]
        ensure_demo_setup(tenant_id, host=host, backend_addresses=addresses, pool_name="demo")
        return f"demo route     http://{host} -> pool 'demo' ({', '.join(addresses)})"
