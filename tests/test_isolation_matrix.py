"""The isolation matrix: every URL pattern x every method x every actor, against one declaration per endpoint.

The endpoints come from Django's resolver, so a new one is covered the day it is added. What each may do
comes from the view itself (see ``declared_access``):

- a DRF view's permission classes: a class declaring ``platform_key`` (the platform's hub key,
  veloflux_site/realtime/hub_key.py) is for holders of that key, which no actor here is: a 401 for all of
  them (``test_it_lets_the_platform_key_through`` shows the key passes); ``AllowAny`` (or no
  authentication classes) is public,
  ``IsPlatformAdmin`` is platform admins only, a class with ``read_role``/``write_role`` (every
  ``tenants.permissions.role_required`` class, ``CanControlStreams``) needs that role in the tenant
  (``needs_tenant``: a platform admin must pick one with X-Tenant-ID unless the URL names it), and the
  default ``IsAuthenticatedPrincipal`` is any signed-in caller; ``get_permissions`` is asked per method,
  so a view that varies by method declares it there;
- a plain Django view (HTML pages, health): ``PAGES`` below.

Path parameters are filled with tenant A's real objects by ``PATH_VALUES`` (keyed by the URL kwarg name);
on a route that names the caller's own object (a person's invitation: ``OWN_VALUES``) each signed-in actor
is sent its own, and B's owner A's owner's.
An unknown kwarg, or a plain view missing from ``PAGES``, fails the test and says what to declare.

Each answer is checked against that declaration: anonymous is 401 on every non-public endpoint, tenant B's
owner is 404 on anything naming A's objects (the same answer as for objects that do not exist, public
endpoints included: A's invitation token) and changes
nothing of A's, A's roles below the declared one are 403, the roles at or above it (and platform admins,
where the declaration lets them) pass, and nothing is ever a 500. A call that may change state is followed
by a restore of the world, so one world (built once, restored per test) serves the whole module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from tenants.models import ROLE_RANK
from tenants.permissions import IsAuthenticatedPrincipal, IsPlatformAdmin
from tests.support.actors import Actor, Api, add_actor, make_tenant, platform_admin_actor
from tests.support.assertions import assert_ok, redis_dump
from tests.support.invites import token_mailed_to
from veloflux_site.storage.connection import get_redis

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
A_ROLES = ("owner", "admin", "member", "viewer")

PUBLIC, AUTHENTICATED, PLATFORM, PAGE = "public", "authenticated", "platform", "page"
PLATFORM_KEY = "platform_key"

# Plain Django views (no DRF permission classes to read): what each is. PAGE: an HTML page that sends a
# caller without a session to /login (bearer tokens are not sessions). Key: the URL pattern's name.
PAGES = {
    "root": PUBLIC, "liveness": PUBLIC, "prometheus": PUBLIC, "readiness": PUBLIC,
    "dashboard": PAGE, "login": PUBLIC, "logout": PUBLIC,
}

# URL kwarg name -> how to make tenant A's real object of that kind and give its URL value, called in this
# order with A's owner (an Api) and A's ids so far ({"tenant_id", "member_id", and every kwarg made before).
# An outsider's answer for these must be the one for an object that does not exist (bogus values).
PATH_VALUES: dict[str, Callable[[Api, dict], object]] = {
    "tenant_id": lambda owner, ids: ids["tenant_id"],
    "user_id": lambda owner, ids: ids["member_id"],
    "key_id": lambda owner, ids: _made(owner.post("/api/auth/api-keys", {"name": "ci", "role": "viewer"}))["id"],
    "name": lambda owner, ids: _made(owner.post("/api/pools", {"name": "web"}))["name"],
    "backend_id": lambda owner, ids: _made(owner.post("/api/backends", {"address": "203.0.113.10:8080",
                                                                          "pool": ids["name"]}))["id"],
    "route_id": lambda owner, ids: _made(owner.post("/api/routes", {"host": "app.acme.test",
                                                                      "pool": ids["name"]}))["id"],
    "version": lambda owner, ids: assert_ok(owner.get("/api/config/versions"))["items"][0]["version"],
    "host": lambda owner, ids: _made(owner.post("/api/domains", {"host": "shop.acme.test"}))["host"],
    # A's invitation of someone who has no account yet: its id, and the token mailed to that person.
    "invitation_id": lambda owner, ids: _made(owner.post(f"/api/tenants/{ids['tenant_id']}/invitations",
                                                         {"email": NEWCOMER}))["id"],
    "token": lambda owner, ids: token_mailed_to(NEWCOMER),
}
NEWCOMER = "newcomer@elsewhere.test"

# URLs whose object is the caller's own, not a tenant's (a person's invitations): route -> kwarg -> how to
# make one for a person (called with the inviter, an Api of a third tenant's owner, and the person's
# e-mail). Every signed-in actor gets its own; B's owner is sent A's owner's (someone else's: a 404).
OWN_VALUES: dict[str, dict[str, Callable[[Api, str, str], object]]] = {
    "api/profile/invitations/<str:invitation_id>": {
        "invitation_id": lambda inviter, tenant_id, email: _made(inviter.post(
            f"/api/tenants/{tenant_id}/invitations", {"email": email}))["id"],
    },
}


def _made(response) -> dict:
    assert response.status_code in (200, 201, 202), (response.status_code, response.content[:300])
    return response.json()


@dataclass(frozen=True)
class Access:
    kind: str  # PUBLIC | AUTHENTICATED | PLATFORM | PAGE | "role"
    role: str | None = None
    needs_tenant: bool = False


@dataclass(frozen=True)
class Endpoint:
    route: str  # "api/pools/<str:name>"
    name: str | None
    view: object
    kwargs: tuple[str, ...]

    @property
    def drf_view(self) -> type[APIView] | None:
        cls = getattr(self.view, "cls", None)
        return cls if isinstance(cls, type) and issubclass(cls, APIView) else None

    def path(self, values: dict[str, object]) -> str:
        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), self.route)

    def supports(self, method: str) -> bool:
        """Whether the view has a handler for the method (only asked of DRF views: pages are not checked)."""
        cls = self.drf_view
        method = "GET" if method == "HEAD" else method
        return cls is None or method == "OPTIONS" or hasattr(cls, method.lower())


def walk(patterns=None, prefix: str = "") -> list[Endpoint]:
    """Every URL pattern the project serves, with its full route (from the resolver, never a list by hand)."""
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(walk(entry.url_patterns, route))
        elif isinstance(entry, URLPattern):
            found.append(Endpoint(route, entry.name, entry.callback, tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))))
    return found


ENDPOINTS = walk()
_factory = APIRequestFactory()


def declared_access(endpoint: Endpoint, method: str) -> Access:
    """The endpoint's declaration for this method, read from the view (see the module docstring)."""
    cls = endpoint.drf_view
    if cls is None:
        kind = PAGES.get(endpoint.name or "")
        assert kind, (f"/{endpoint.route} ({endpoint.name}) is a plain Django view: declare what it is in PAGES "
                      "in tests/test_isolation_matrix.py, or make it a DRF view with permission classes.")
        return Access(kind)
    if any(getattr(p, "platform_key", False) for p in _permissions(cls, method)):
        return Access(PLATFORM_KEY)
    if cls.authentication_classes == () and not _permissions(cls, method):
        return Access(PUBLIC)
    permissions = _permissions(cls, method)
    if not permissions or any(isinstance(p, AllowAny) for p in permissions):
        return Access(PUBLIC)
    if any(isinstance(p, IsPlatformAdmin) for p in permissions):
        return Access(PLATFORM)
    for permission in permissions:
        if hasattr(permission, "read_role"):
            safe = method in ("GET", "HEAD", "OPTIONS")
            return Access("role", permission.read_role if safe else permission.write_role, permission.needs_tenant)
    assert all(isinstance(p, IsAuthenticatedPrincipal) for p in permissions), (
        f"{cls.__name__}: permission classes {permissions} declare nothing the isolation matrix can read; "
        "give the class read_role/write_role/needs_tenant (see tenants.permissions.role_required).")
    return Access(AUTHENTICATED)


def _permissions(cls: type[APIView], method: str) -> list:
    view = cls()
    view.request = Request(_factory.generic(method, "/"))
    view.args, view.kwargs, view.format_kwarg = (), {}, None
    return view.get_permissions()


# --- the world: tenant A with one of each object, tenant B's owner, a platform admin -------------------
@dataclass
class World:
    tenant_id: str
    ids: dict[str, object]  # URL kwarg -> tenant A's real object (PATH_VALUES)
    b_marks: tuple[str, ...]  # what B's own keys contain: B's tenant id, its owner's id, its token ids
    clients: dict[str, Api]
    snapshot: list[tuple[str, int, bytes]]
    own: dict[tuple[str, str], dict[str, object]]  # (route, actor) -> that actor's own objects (OWN_VALUES)

    def values(self, bogus: bool = False) -> dict[str, object]:
        if bogus:
            return {kwarg: 987654 if isinstance(value, int) else "no-such-thing" for kwarg, value in self.ids.items()}
        return self.ids

    def values_for(self, endpoint: Endpoint, actor: str) -> dict[str, object]:
        """The URL values ``actor`` is sent: A's objects, or on OWN_VALUES routes the actor's own ones."""
        if endpoint.route not in OWN_VALUES:
            return self.ids
        own = self.own.get((endpoint.route, "a_owner" if actor.startswith("b_") else actor), {})
        return {**self.ids, **own}


def _build_world() -> World:
    tenant_id, owner = make_tenant("Acme Corp", "owner@acme.test")
    actors = {"owner": owner, **{role: add_actor(tenant_id, f"{role}@acme.test", role) for role in A_ROLES[1:]}}
    as_owner = Api().as_(owner)
    ids: dict[str, object] = {"tenant_id": tenant_id, "member_id": actors["member"].id}
    for kwarg, make in PATH_VALUES.items():
        ids[kwarg] = make(as_owner, ids)
    ids.pop("member_id")
    b_tenant_id, b_owner = make_tenant("Outsider Inc", "owner@outsider.test")
    root = platform_admin_actor()
    own = _own_values({**{f"a_{role}": actor for role, actor in actors.items()},
                       "platform_admin": root, "platform_admin_in_a": root})
    clients = {
        "anonymous": Api(),
        **{f"a_{role}": Api().as_(actor) for role, actor in actors.items()},
        "b_owner": Api().as_(b_owner),
        "b_owner_as_a": Api().as_(b_owner, tenant_header=tenant_id),
        "platform_admin": Api().as_(root),
        "platform_admin_in_a": Api().as_(root, tenant_header=tenant_id),
    }
    client = get_redis()
    names = list(client.scan_iter(count=1000))
    snapshot = [(name, max(client.pttl(name), 0), client.dump(name)) for name in names]
    b_claims = jwt.decode(b_owner.token, options={"verify_signature": False})
    b_marks = (b_tenant_id, b_owner.id, b_claims["fam"], b_claims["jti"])
    return World(tenant_id, ids, b_marks, clients, snapshot, own)


def _own_values(people: dict[str, Actor]) -> dict[tuple[str, str], dict[str, object]]:
    """OWN_VALUES made for each signed-in actor (``people``: actor name -> person) by a third tenant."""
    inviter_tenant, inviter = make_tenant("Inviter Ltd", "owner@inviter.test")
    as_inviter = Api().as_(inviter)
    made: dict[str, dict[str, object]] = {}  # per person: both platform-admin clients are one person
    own = {}
    for route, makers in OWN_VALUES.items():
        for actor, person in people.items():
            if person.email not in made:
                made[person.email] = {kwarg: make(as_inviter, inviter_tenant, person.email)
                                      for kwarg, make in makers.items()}
            own[(route, actor)] = made[person.email]
    return own


_WORLD: list[World] = []


def restore(world: World) -> None:
    client = get_redis()
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for name, ttl, blob in world.snapshot:
        pipe.restore(name, ttl, blob, replace=True)
    pipe.execute()


@pytest.fixture
def world() -> World:
    """Built once per module (Redis is flushed before every test), then restored from a DUMP of every key."""
    if not _WORLD:
        _WORLD.append(_build_world())
    else:
        restore(_WORLD[0])
    return _WORLD[0]


# --- the checks ---------------------------------------------------------------------------------------
def _writes() -> int:
    return int(get_redis().info("persistence")["rdb_changes_since_last_save"])


# Platform-wide counters every tenant's change moves (the routing table's version): not A's state.
SHARED_COUNTERS = ("vf:routing:version",)


def _without(dump: dict, marks: tuple[str, ...]) -> dict:
    """The dump without B's own keys, and without B's fields of platform hashes (the routing table)."""
    def mine(name: str) -> bool:
        return any(mark in name for mark in marks)

    kept = {}
    for key, (kind, value) in dump.items():
        if mine(key) or key in SHARED_COUNTERS:
            continue
        kept[key] = (kind, {f: v for f, v in value.items() if not mine(f)} if kind == "hash" else value)
    return kept


def _allowed(access: Access, actor: str, endpoint: Endpoint) -> bool:
    if access.kind == PLATFORM_KEY:  # no actor of the matrix holds the platform's hub key
        return False
    if access.kind in (PUBLIC, PAGE):
        return True
    if actor == "anonymous":
        return False
    if actor.startswith("platform_admin"):
        names_tenant = "tenant_id" in endpoint.kwargs or actor == "platform_admin_in_a"
        return access.kind != "role" or not access.needs_tenant or names_tenant
    if access.kind == PLATFORM:
        return False
    return access.kind == AUTHENTICATED or ROLE_RANK[actor.removeprefix("a_")] >= ROLE_RANK[access.role]


def _expect(endpoint: Endpoint, method: str, actor: str, response, world: World) -> None:
    """One answer against the declaration; raises AssertionError with what was expected and why."""
    access = declared_access(endpoint, method)
    status = response.status_code
    where = (f"{method} {endpoint.path(world.values_for(endpoint, actor))} as {actor} ({access}): {status} "
             f"{response.content[:200]!r}")
    assert status < 500, where
    if access.kind == PAGE:  # a bearer token is not a session: every actor is sent to /login
        if method == "GET":  # (require_GET: HEAD is a 405 too)
            assert status == 302 and response["Location"].startswith("/login"), where
        else:
            assert status == 405, where
        return
    if access.kind == PLATFORM_KEY:  # a user's or a tenant's credential is not the platform's hub key
        assert status == 401, where
        return
    if access.kind == PUBLIC:
        assert status not in (401, 403), where
        if actor == "b_owner":  # A's objects (an invitation's token) hidden as on the other endpoints
            _expect_hidden(endpoint, method, status, world, where)
        return
    if actor == "anonymous":
        assert status == 401, where
        return
    if actor == "b_owner_as_a":
        assert status == 404, where  # X-Tenant-ID naming another tenant: hidden, whatever the endpoint
        return
    if actor == "b_owner":
        _expect_hidden(endpoint, method, status, world, where)
        return
    if not _allowed(access, actor, endpoint):
        assert status == 403, where
        return
    assert status not in (401, 403), where
    if not endpoint.supports(method):
        assert status == 405, where
    elif endpoint.kwargs:
        assert status != 404, where  # A's own objects exist


def _expect_hidden(endpoint: Endpoint, method: str, status: int, world: World, where: str) -> None:
    """B's owner on A's objects: the answer for objects that do not exist, a 404 where the method exists."""
    if endpoint.kwargs:
        bogus = world.clients["b_owner"].request(method, endpoint.path(world.values(bogus=True)))
        assert status == bogus.status_code, f"{where}; for objects that do not exist: {bogus.status_code}"
        if endpoint.supports(method) and method != "OPTIONS":
            assert status == 404, where


def _endpoint_id(endpoint: Endpoint) -> str:
    return "/" + endpoint.route


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[_endpoint_id(e) for e in ENDPOINTS])
def test_it_answers_every_actor_as_the_endpoint_declares(world, endpoint, dns_zone):
    for kwarg in endpoint.kwargs:
        assert kwarg in PATH_VALUES, (f"/{endpoint.route}: unknown URL kwarg {kwarg!r}; map it to one of tenant "
                                      "A's real objects in PATH_VALUES in tests/test_isolation_matrix.py")
    baseline = redis_dump()
    for method in METHODS:
        for actor, client in world.clients.items():
            path = endpoint.path(world.values_for(endpoint, actor))
            before = _writes()
            response = client.request(method, path)
            _expect(endpoint, method, actor, response, world)
            if _writes() == before:
                continue
            after = redis_dump()
            if after != baseline:
                if actor == "b_owner":  # B may change B's own things (its reload, its token), never A's
                    assert _without(after, world.b_marks) == _without(baseline, world.b_marks), (
                        f"{method} {path} as {actor} changed tenant A's state or the platform's")
                elif not (_allowed(declared_access(endpoint, method), actor, endpoint)
                          and actor != "b_owner_as_a" and method not in ("GET", "HEAD", "OPTIONS")):
                    changed = sorted(set(after.items()) ^ set(baseline.items()), key=str)[:5]
                    raise AssertionError(f"{method} {path} as {actor} was not allowed to change anything: {changed}")
                restore(world)


def test_it_fails_an_endpoint_that_declares_nothing():
    """The matrix refuses a view whose permissions it cannot read, rather than passing it silently."""
    from rest_framework.permissions import BasePermission

    class Opaque(BasePermission):
        pass

    class Undeclared(APIView):
        permission_classes = (Opaque,)

    endpoint = Endpoint("api/undeclared", "undeclared", Undeclared.as_view(), ())
    with pytest.raises(AssertionError, match="declare nothing"):
        declared_access(endpoint, "GET")
    with pytest.raises(AssertionError, match="declare what it is in PAGES"):
        declared_access(Endpoint("page", "new-page", lambda request: None, ()), "GET")


def test_it_walks_every_api_endpoint():
    routes = {e.route for e in ENDPOINTS}
    assert {"api/pools/<str:name>", "api/tenants/<str:tenant_id>/users/<str:user_id>", "api/ws/control"} <= routes


HUB_KEY = "matrix-hub-key-0123456789"
KEY_ENDPOINTS = [e for e in ENDPOINTS if e.drf_view and declared_access(e, "POST").kind == PLATFORM_KEY]


@pytest.mark.parametrize("endpoint", KEY_ENDPOINTS, ids=[_endpoint_id(e) for e in KEY_ENDPOINTS])
def test_it_lets_the_platform_key_through(settings, endpoint):
    """The other side of PLATFORM_KEY: with the hub key (either header) the view answers, without it a 401."""
    settings.REALTIME_API_KEY = HUB_KEY
    for headers in ({"HTTP_X_API_KEY": HUB_KEY}, {"HTTP_AUTHORIZATION": f"apikey {HUB_KEY}"}):
        api = Api().with_headers(**headers)
        for method in METHODS:
            response = api.request(method, endpoint.path({}), {})
            where = (method, endpoint.route, headers, response.status_code, response.content[:200])
            assert response.status_code < 500 and response.status_code not in (401, 403), where
            if not endpoint.supports(method):
                assert response.status_code == 405, where
    assert Api().with_headers(HTTP_X_API_KEY=HUB_KEY + "x").post(endpoint.path({}), {}).status_code == 401
