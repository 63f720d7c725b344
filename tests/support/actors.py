"""Fixed actors: tenant A (owner, admin, member, viewer), an outsider tenant B, a platform admin.

``api`` is a small client over DRF's APIClient that speaks JSON and knows how to
act as any actor, so tests read as: ``api.as_(owner).post("/api/...", {...})``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient

from tenants import services, tokens
from tenants.models import User
from tenants.store import UserStore

PASSWORD = "correct-horse-battery"


@dataclass
class Actor:
    user: User
    tenant_id: str | None
    token: str
    refresh_token: str
    role: str | None

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def email(self) -> str:
        return self.user.email


class Api:
    def __init__(self) -> None:
        self.client = APIClient()
        self._headers: dict[str, str] = {}

    def as_(self, actor: Actor | None, tenant_header: str | None = None) -> Api:
        other = Api()
        if actor is not None:
            other._headers["HTTP_AUTHORIZATION"] = f"Bearer {actor.token}"
        if tenant_header:
            other._headers["HTTP_X_TENANT_ID"] = tenant_header
        return other

    def with_headers(self, **headers: str) -> Api:
        other = Api()
        other._headers = {**self._headers, **headers}
        return other

    def request(self, method: str, path: str, data=None, **extra):
        kwargs = {**self._headers, **extra}
        call = getattr(self.client, method.lower())
        if method.upper() in ("GET", "HEAD"):
            return call(path, data=data, **kwargs)
        return call(path, data=data, format=kwargs.pop("format", "json"), **kwargs)

    def get(self, path: str, data=None, **extra):
        return self.request("GET", path, data, **extra)

    def post(self, path: str, data=None, **extra):
        return self.request("POST", path, data, **extra)

    def put(self, path: str, data=None, **extra):
        return self.request("PUT", path, data, **extra)

    def patch(self, path: str, data=None, **extra):
        return self.request("PATCH", path, data, **extra)

    def delete(self, path: str, data=None, **extra):
        return self.request("DELETE", path, data, **extra)


def make_tenant(name: str, owner_email: str, plan: str = "pro") -> tuple[str, Actor]:
    tenant, owner, _ = services.create_tenant_with_owner(
        name=name, plan=plan, owner_email=owner_email, owner_first_name="Olivia", owner_last_name="Owner",
        owner_password=PASSWORD)
    return tenant.id, actor_for(owner.id, tenant.id)


def actor_for(user_id: str, tenant_id: str | None) -> Actor:
    user = UserStore().get(user_id)
    pair = tokens.issue_pair(user.id, tenant_id)
    return Actor(user, tenant_id, pair.access, pair.refresh, user.role_in(tenant_id))


def add_actor(tenant_id: str, email: str, role: str) -> Actor:
    tenant_store_tenant = services.TenantStore().get(tenant_id)
    user, _ = services.add_member(tenant_store_tenant, email=email, role=role, first_name=role.title(),
                                  last_name="Person", password=PASSWORD,
                                  actor=services.Actor("test", "test"), actor_role="owner", actor_is_admin=True)
    return actor_for(user.id, tenant_id)


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def tenant_a() -> dict:
    tenant_id, owner = make_tenant("Acme Corp", "owner@acme.test")
    return {
        "id": tenant_id,
        "owner": owner,
        "admin": add_actor(tenant_id, "admin@acme.test", "admin"),
        "member": add_actor(tenant_id, "member@acme.test", "member"),
        "viewer": add_actor(tenant_id, "viewer@acme.test", "viewer"),
    }


@pytest.fixture
def owner(tenant_a) -> Actor:
    return tenant_a["owner"]


@pytest.fixture
def member(tenant_a) -> Actor:
    return tenant_a["member"]


@pytest.fixture
def viewer(tenant_a) -> Actor:
    return tenant_a["viewer"]


@pytest.fixture
def admin(tenant_a) -> Actor:
    return tenant_a["admin"]


@pytest.fixture
def outsider() -> Actor:
    """The owner of another tenant: must never see or touch tenant A."""
    _, outsider_owner = make_tenant("Outsider Inc", "owner@outsider.test")
    return outsider_owner


@pytest.fixture
def platform_admin() -> Actor:
    return platform_admin_actor()


def platform_admin_actor(email: str = "root@veloflux.test") -> Actor:
    """A platform administrator (no tenant), for tests that build their actors outside fixtures."""
    user = User(email=email, is_platform_admin=True, password_hash=make_password(PASSWORD))
    UserStore().create(user)
    return actor_for(user.id, None)
