"""Business rules of tenants and users: registration, tenant lifecycle, members."""

from __future__ import annotations

import functools
import re
import secrets

from django.contrib.auth.hashers import make_password

from tenants import invitations, lifecycle
from tenants.audit import Actor, stage_audit
from tenants.models import ROLE_RANK, Invitation, Tenant, User
from tenants.plans import PLANS
from tenants.store import ApiKeyStore, TenantStore, UserStore
from veloflux_site.api.errors import ApiError
from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.errors import Conflict
from veloflux_site.storage.repository import retry_on_stale

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    return _SLUG_STRIP.sub("-", name.lower()).strip("-")[:40] or "tenant"


def unique_slug(name: str) -> str:
    base = slugify(name)
    store = TenantStore()
    if not store.slug_taken(base):
        return base
    return f"{base}-{secrets.token_hex(3)}"


def create_tenant_with_owner(*, name: str, plan: str, owner_email: str, owner_first_name: str = "",
                             owner_last_name: str = "", owner_password: str | None = None,
                             actor: Actor | None = None, new_owner_only: bool = False,
                             actor_ip: str = "") -> tuple[Tenant, User, str | None]:
    """One atomic write: tenant, slug index, owner user (new or existing) and membership.

    Returns (tenant, owner, temporary_password) — the temporary password is set
    only when a new owner was created without one, and is shown once.
    ``new_owner_only`` (registration) refuses an email that already has an account.
    Without ``actor`` the new owner is the actor (registration), from ``actor_ip``.

    The slug and the owner are read before the write; when a parallel request
    took the slug or the email (or changed the existing owner) in between, the
    atomic write refuses and this runs again on fresh state.
    """
    for attempt in range(20):
        try:
            return _create_tenant_with_owner_once(
                name=name, plan=plan, owner_email=owner_email, owner_first_name=owner_first_name,
                owner_last_name=owner_last_name, owner_password=owner_password, actor=actor,
                new_owner_only=new_owner_only, actor_ip=actor_ip)
        except Conflict as exc:
            if exc.field not in ("slug", "email", "version") or attempt == 19:
                raise
    raise AssertionError("unreachable")


def _create_tenant_with_owner_once(*, name: str, plan: str, owner_email: str, owner_first_name: str,
                                   owner_last_name: str, owner_password: str | None, actor: Actor | None,
                                   new_owner_only: bool, actor_ip: str) -> tuple[Tenant, User, str | None]:
    tenant_store, user_store = TenantStore(), UserStore()
    tenant = Tenant(name=name, slug=unique_slug(name), plan=plan, contact_email=owner_email,
                    contact_name=f"{owner_first_name} {owner_last_name}".strip())
    batch = AtomicWrite()
    tenant_store.stage_create(batch, tenant)
    existing = user_store.find_by_email(owner_email)
    if existing is not None and new_owner_only:
        raise ApiError(409, "email_taken", "An account with this email already exists; log in instead.",
                       {"email": ["already registered"]})
    temporary = None
    if existing is None:
        if owner_password is None:
            temporary = owner_password = secrets.token_urlsafe(12)
        owner = User(email=owner_email.strip().lower(), password_hash=make_password(owner_password),
                     first_name=owner_first_name, last_name=owner_last_name,
                     memberships={tenant.id: "owner"}, must_change_password=temporary is not None,
                     last_tenant_id=tenant.id)
        user_store.stage_create(batch, owner)
        UserStore.stage_membership_index(batch, None, owner)
        after_owner = owner.public_dict()
    else:
        owner = User.from_dict(existing.to_dict())
        owner.memberships = {**existing.memberships, tenant.id: "owner"}
        user_store.stage_update(batch, existing, owner)
        UserStore.stage_membership_index(batch, existing, owner)
        after_owner = {"memberships": owner.memberships}
    actor = actor or Actor(owner.id, owner.email, actor_ip)
    stage_audit(batch, tenant.id, actor, "tenant.create", "tenant", tenant.id, None, tenant.public_dict())
    stage_audit(batch, None, actor, "tenant.create", "tenant", tenant.id, None, tenant.public_dict())
    stage_audit(batch, tenant.id, actor, "user.add", "user", owner.id, None, after_owner)
    batch.execute(get_redis())
    return tenant, owner, temporary


def tenant_counts(tenant_id: str) -> dict[str, int]:
    """How many of each limited thing a tenant has, in one round trip."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.zcard(keys.tenant_members(tenant_id))
    pipe.zcard(keys.api_key_index(tenant_id))
    for collection in ("pools", "backends", "routes"):
        pipe.zcard(keys.tenant(tenant_id, collection))
    users, api_keys, pools, backends, routes = pipe.execute()
    return {"users": users, "api_keys": api_keys, "pools": pools, "backends": backends, "routes": routes}


def delete_tenant(tenant: Tenant, actor: Actor) -> None:
    """Remove the tenant, its memberships (users left with none are deleted) and every
    key under its hash tag (found with SCAN, never KEYS). The other apps' parts (balancer: take it
    off the data plane) are staged into the same atomic write (tenants/lifecycle.py)."""
    client = get_redis()
    user_store = UserStore()

    def attempt_once() -> None:
        batch = AtomicWrite()
        TenantStore().stage_delete(batch, tenant)
        for user in user_store.members(tenant.id):
            remaining = {t: r for t, r in user.memberships.items() if t != tenant.id}
            if remaining or user.is_platform_admin:
                user_store.stage_update(batch, user, _without_membership(user, tenant.id))
            else:
                user_store.stage_delete(batch, user)
        batch.delete(keys.tenant_members(tenant.id))
        invitations.drop_tenant_invitations(batch, tenant.id)
        # The tenant's own audit stream goes with it; the platform's keeps the record of the deletion.
        stage_audit(batch, None, actor, "tenant.delete", "tenant", tenant.id, tenant.public_dict(), None)
        # API key hash indexes are platform keys (authentication looks them up without a tenant).
        for api_key in ApiKeyStore(tenant.id).all():
            batch.delete(keys.api_key_hash_index(api_key.key_hash))
        lifecycle.stage(lifecycle.DELETED, batch, tenant, actor, client)
        batch.execute(client)

    lifecycle.run(attempt_once)
    for key in client.scan_iter(match=keys.tenant(tenant.id, "*"), count=1000):
        client.delete(key)
    client.publish(keys.events_channel("tenants"), f'{{"type":"tenant.deleted","tenant_id":"{tenant.id}"}}')


@retry_on_stale()
def update_tenant(tenant_id: str, changes: dict, actor: Actor, expected_version: int | None = None) -> Tenant:
    store = TenantStore()
    store.get(tenant_id)  # an unknown tenant is a 404 before any 400
    if "plan" in changes and changes["plan"] not in PLANS:
        raise ApiError(400, "validation_error", f"Unknown plan {changes['plan']!r}.",
                       {"plan": [f"must be one of {', '.join(PLANS)}"]})
    client = get_redis()

    def attempt_once() -> Tenant:
        old = store.get(tenant_id)
        new = Tenant.from_dict({**old.to_dict(), **changes})
        batch = AtomicWrite()
        store.stage_update(batch, old, new, expected_version)
        stage_audit(batch, tenant_id, actor, "tenant.update", "tenant", tenant_id, old.public_dict(),
                    new.public_dict())
        if old.active != new.active:
            # Suspending (or reactivating) must reach the proxies in the same write: the apps stage
            # their part (balancer: recompile the tenant's routing fragment), tenants/lifecycle.py.
            lifecycle.stage(lifecycle.STATUS_CHANGED, batch, new, actor, client)
        batch.execute(client)
        return new

    return lifecycle.run(attempt_once)


def _check_role_change(actor_role: str | None, actor_is_admin: bool, target_role: str | None,
                       new_role: str | None) -> None:
    """Admins manage users up to admin; only owners (or platform admins) touch owners."""
    if actor_is_admin or actor_role == "owner":
        return
    if "owner" in (target_role, new_role):
        raise ApiError(403, "permission_denied", "Only an owner can grant, change or remove the owner role.")


def _owner_count(tenant_id: str, members: list[User]) -> int:
    """Owners who can still act (a deactivated owner cannot run the tenant)."""
    return sum(1 for user in members if user.memberships.get(tenant_id) == "owner" and user.active_in(tenant_id))


def _without_membership(user: User, tenant_id: str) -> User:
    return User.from_dict({
        **user.to_dict(),
        "memberships": {t: r for t, r in user.memberships.items() if t != tenant_id},
        "inactive_in": [t for t in user.inactive_in if t != tenant_id],
        "last_tenant_id": None if user.last_tenant_id == tenant_id else user.last_tenant_id,
    })


def add_or_invite(tenant: Tenant, *, email: str, role: str, first_name: str, last_name: str,
                  password: str | None, actor: Actor, actor_role: str | None,
                  actor_is_admin: bool) -> tuple[User, str | None] | Invitation:
    """POST /api/tenants/<id>/users: a new address gets an account in the tenant at once; a person who
    already has an account (in any tenant, or none) gets an invitation they may accept or not."""
    invitations.check_role_ceiling(role, actor_role, actor_is_admin)
    invite = functools.partial(invitations.invite, tenant, email=email, role=role, actor=actor,
                               actor_role=actor_role, actor_is_admin=actor_is_admin)
    if UserStore().find_by_email(email) is not None:
        return invite()
    try:
        return add_member(tenant, email=email, role=role, first_name=first_name, last_name=last_name,
                          password=password, actor=actor, actor_role=actor_role, actor_is_admin=actor_is_admin)
    except Conflict as exc:
        if exc.field != "email":
            raise
        return invite()  # the address got an account while we were adding it


def add_member(tenant: Tenant, *, email: str, role: str, first_name: str, last_name: str,
               password: str | None, actor: Actor, actor_role: str | None,
               actor_is_admin: bool) -> tuple[User, str | None]:
    """Create a new person's account in the tenant. An address that has an account is refused
    (``Conflict`` on ``email``): that person is invited instead (see ``add_or_invite``)."""
    _check_role_change(actor_role, actor_is_admin, None, role)
    batch = AtomicWrite()
    batch.require_max_card(keys.tenant_members(tenant.id), 1, tenant.limits["max_users"],
                           f"Your plan allows {tenant.limits['max_users']} users; remove one or upgrade "
                           "the plan.", "max_users")
    temporary = None
    if password is None:
        temporary = password = secrets.token_urlsafe(12)
    user = User(email=email.strip().lower(), password_hash=make_password(password), first_name=first_name,
                last_name=last_name, memberships={tenant.id: role}, must_change_password=temporary is not None,
                last_tenant_id=tenant.id)
    UserStore().stage_create(batch, user)  # refuses an address that has an account (email index)
    UserStore.stage_membership_index(batch, None, user)
    stage_audit(batch, tenant.id, actor, "user.add", "user", user.id, None,
                {"email": user.email, "role": role})
    batch.execute(get_redis())
    return user, temporary


# Fields of the person, not of their membership: only they (/api/profile) or a platform admin change them.
PROFILE_FIELDS = ("name", "first_name", "last_name", "email", "password", "new_password", "current_password")


@retry_on_stale()
def update_member(tenant: Tenant, user_id: str, changes: dict, actor: Actor, actor_role: str | None,
                  actor_is_admin: bool, expected_version: int | None = None) -> User:
    """Membership fields (role, active in this tenant); names only for platform admins."""
    user_store = UserStore()
    changes = dict(changes)  # this may run again after a lost race: never consume the caller's dict
    old = member_of(tenant.id, user_id)
    current_role = old.memberships[tenant.id]
    new_role = changes.pop("role", current_role)
    _check_role_change(actor_role, actor_is_admin, current_role, new_role)
    active = changes.pop("active", None)
    names = {k: changes.pop(k) for k in ("first_name", "last_name") if k in changes}
    if names and not actor_is_admin:
        raise ApiError(403, "permission_denied", "Names belong to the person: they change them in /api/profile.",
                       {name: ["only the person or a platform admin"] for name in names})
    was_active = old.active_in(tenant.id)
    stops_owning = current_role == "owner" and was_active and (new_role != "owner" or active is False)
    if stops_owning and _owner_count(tenant.id, user_store.members(tenant.id)) <= 1:
        raise ApiError(409, "last_owner", "A tenant needs at least one active owner; make someone else owner first.")
    data = {**old.to_dict(), **names, "memberships": {**old.memberships, tenant.id: new_role}}
    if active is not None:
        off = [t for t in old.inactive_in if t != tenant.id]
        data["inactive_in"] = off if active else sorted([*off, tenant.id])
        if active and not old.active and set(old.memberships) == {tenant.id}:
            # Before memberships had their own flag, a tenant switched its users off account-wide:
            # switching such a single-tenant account back on here undoes exactly that.
            data["active"] = True
    new = User.from_dict(data)
    batch = AtomicWrite()
    user_store.stage_update(batch, old, new, expected_version)
    before = {"role": current_role, **({"active": was_active} if active is not None else {}),
              **{k: getattr(old, k) for k in names}}
    after = {"role": new_role, **({"active": new.active_in(tenant.id)} if active is not None else {}),
             **{k: getattr(new, k) for k in names}}
    stage_audit(batch, tenant.id, actor, "user.update", "user", user_id, before, after)
    if names:  # a platform admin changed the person: say so where the platform looks too
        stage_audit(batch, None, actor, "user.update", "user", user_id, before, after)
    batch.execute(get_redis())
    return new


@retry_on_stale()
def remove_member(tenant: Tenant, user_id: str, actor: Actor, actor_role: str | None, actor_is_admin: bool) -> None:
    user_store = UserStore()
    old = member_of(tenant.id, user_id)
    role = old.memberships[tenant.id]
    _check_role_change(actor_role, actor_is_admin, role, None)
    if role == "owner" and old.active_in(tenant.id) and _owner_count(tenant.id, user_store.members(tenant.id)) <= 1:
        raise ApiError(409, "last_owner", "A tenant needs at least one owner; you cannot remove the last one.")
    batch = AtomicWrite()
    remaining = {t: r for t, r in old.memberships.items() if t != tenant.id}
    if remaining or old.is_platform_admin:
        # The person belongs elsewhere: only this membership goes, never their account.
        new = _without_membership(old, tenant.id)
        user_store.stage_update(batch, old, new)
        UserStore.stage_membership_index(batch, old, new)
    else:
        user_store.stage_delete(batch, old, old.version)
        UserStore.stage_membership_index(batch, old, None)
    stage_audit(batch, tenant.id, actor, "user.remove", "user", user_id, {"email": old.email, "role": role}, None)
    batch.execute(get_redis())


def member_of(tenant_id: str, user_id: str) -> User:
    user = UserStore().find(user_id)
    if user is None or tenant_id not in user.memberships:
        raise ApiError(404, "not_found", f"user {user_id!r} not found in this tenant")
    return user


def role_choices_for(actor_role: str | None, actor_is_admin: bool) -> list[str]:
    if actor_is_admin:
        return list(ROLE_RANK)
    return [r for r in ROLE_RANK if ROLE_RANK[r] <= ROLE_RANK.get(actor_role or "", 0)]
