"""Invitations: how a person who already has an account comes to belong to one more tenant.

A tenant's admin never adds such a person directly (that put people into tenants without asking
them, let the tenant rename them and moved their next login). The admin invites; the invitation
goes by mail; only that person, signed in as themselves and holding the mailed token, accepts it.
Each invitation is used once: accepting, declining and revoking all remove it in the same atomic
write as their effect, so two concurrent uses cannot both pass.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import smtplib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.mail import send_mail

from tenants.audit import Actor, stage_audit
from tenants.models import ROLE_RANK, Invitation, Tenant, User
from tenants.store import InvitationStore, TenantStore, UserStore
from veloflux_site.api.errors import ApiError
from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.counters import incr_with_ttl, window_start
from veloflux_site.storage.errors import Conflict
from veloflux_site.storage.repository import retry_on_stale

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
_GONE = "This invitation does not exist or was already used, declined or revoked."


@dataclass
class Accepted:
    user: User
    tenant: Tenant
    role: str
    new_account: bool


def hash_token(raw: str) -> str:
    # Tokens carry 256 random bits: a fast hash is enough (nothing to guess from a dictionary).
    return hashlib.sha256(raw.encode()).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def expires_ms(invitation: Invitation) -> int:
    return int(datetime.fromisoformat(invitation.expires_at.replace("Z", "+00:00")).timestamp() * 1000)


def is_expired(invitation: Invitation) -> bool:
    return expires_ms(invitation) <= _now_ms()


def payload(invitation: Invitation, tenant_name: str) -> dict:
    """What the inviter and the invitee see: never the token or its hash."""
    return {
        "id": invitation.id,
        "tenant_id": invitation.tenant_id,
        "tenant_name": tenant_name,
        "email": invitation.email,
        "role": invitation.role,
        "status": "expired" if is_expired(invitation) else "pending",
        "invited_by": invitation.invited_by_label,
        "expires_at": invitation.expires_at,
        "created_at": invitation.created_at,
    }


def check_role_ceiling(role: str, actor_role: str | None, actor_is_admin: bool) -> None:
    """Nobody hands out more than they hold (an admin cannot invite an owner)."""
    if actor_is_admin or ROLE_RANK[role] <= ROLE_RANK.get(actor_role or "", 0):
        return
    raise ApiError(403, "permission_denied", f"You cannot invite someone with more rights than yours "
                                             f"({actor_role}).", {"role": ["above your own role"]})


# --- inviter's side ------------------------------------------------------------------------------
def invite(tenant: Tenant, *, email: str, role: str, actor: Actor, actor_role: str | None,
           actor_is_admin: bool) -> Invitation:
    """Record the invitation, then mail its token; a mail that cannot be sent withdraws it (503)."""
    email = email.strip().lower()
    check_role_ceiling(role, actor_role, actor_is_admin)
    existing = UserStore().find_by_email(email)
    if existing is not None and tenant.id in existing.memberships:
        raise ApiError(409, "conflict", f"{email} is already a member of this tenant.", {"email": ["already a member"]})
    _check_rate(tenant.id)
    store = InvitationStore()
    now = _now_ms()
    store.forget_expired(tenant.id, now)
    raw = secrets.token_urlsafe(32)
    ttl_ms = max(1, int(settings.INVITATION_TTL * 1000))
    invitation = Invitation(tenant_id=tenant.id, email=email, role=role, token_hash=hash_token(raw),
                            invited_by=actor.id, invited_by_label=actor.label, expires_at=_iso(now + ttl_ms))
    batch = AtomicWrite()
    batch.require_max_card(keys.tenant_invitations(tenant.id), 1, settings.INVITATION_MAX_PENDING,
                           f"This tenant already has {settings.INVITATION_MAX_PENDING} pending invitations; revoke "
                           "some or wait for them to be answered.", "max_pending_invitations")
    store.stage_create(batch, invitation, now + ttl_ms, ttl_ms)
    stage_audit(batch, tenant.id, actor, "invitation.create", "invitation", invitation.id, None,
                {"email": email, "role": role, "expires_at": invitation.expires_at})
    try:
        batch.execute(get_redis())
    except Conflict as exc:
        if exc.field != "email":
            raise
        raise ApiError(409, "invitation_pending", f"{email} already has a pending invitation to this tenant; revoke "
                                                  "it first to send a new one.", {"email": ["invitation pending"]})
    try:
        _send_mail(invitation, tenant, raw)
    except (OSError, smtplib.SMTPException) as exc:
        _consume(invitation, tenant.id, actor, "invitation.withdraw", live=True)
        raise ApiError(503, "email_unavailable", "The invitation mail could not be sent, so no invitation was made; "
                                                 f"try again later ({type(exc).__name__}).")
    return invitation


def _check_rate(tenant_id: str) -> None:
    """Each invitation sends a mail to an address the tenant chose: bound how many per hour, so that
    revoking and inviting again cannot turn the platform into a tool for flooding someone's inbox."""
    hour = 3600
    count, reset = incr_with_ttl(get_redis(), keys.rate_limit("invite", tenant_id, window_start(hour)), hour)
    if count > settings.INVITATION_RATE_PER_HOUR:
        wait = max(1, int(reset + 0.999))
        raise ApiError(429, "rate_limited", f"This tenant sent {settings.INVITATION_RATE_PER_HOUR} invitations in "
                                            "the last hour; wait before sending more.",
                       headers={"Retry-After": str(wait)}, extra={"retry_after": wait})


def _send_mail(invitation: Invitation, tenant: Tenant, raw: str) -> None:
    name = " ".join(tenant.name.split())  # a line break in a header would be refused (and is an injection)
    link = f"{settings.PUBLIC_URL}/api/invitations/{raw}/accept"
    body = (
        f"{invitation.invited_by_label} invites you to join the tenant \"{name}\" on VeloFlux as {invitation.role}.\n\n"
        f"To accept, send an authenticated POST to this address while signed in as {invitation.email}:\n\n"
        f"    {link}\n\n"
        "If you have no VeloFlux account yet, send the POST with a JSON body {\"password\": \"...\"} to create one.\n"
        f"The invitation expires at {invitation.expires_at} and works once. If you did not expect it, ignore this "
        "mail, or decline it from your profile (GET /api/profile/invitations).\n"
    )
    send_mail(f"You are invited to {name} on VeloFlux", body, None, [invitation.email], fail_silently=False)


def pending_for_tenant(tenant: Tenant) -> list[Invitation]:
    found = InvitationStore().pending_for_tenant(tenant.id, _now_ms())
    return sorted(found, key=lambda i: (i.created_at, i.id))


def of_tenant(tenant_id: str, invitation_id: str) -> Invitation:
    invitation = InvitationStore().find(invitation_id)
    if invitation is None or invitation.tenant_id != tenant_id:
        raise ApiError(404, "not_found", f"invitation {invitation_id!r} not found")
    return invitation


def revoke(tenant_id: str, invitation_id: str, actor: Actor) -> None:
    invitation = of_tenant(tenant_id, invitation_id)
    _consume(invitation, tenant_id, actor, "invitation.revoke", live=not is_expired(invitation))


def _consume(invitation: Invitation, tenant_id: str, actor: Actor, action: str, live: bool,
             invitee_side: bool = False) -> None:
    batch = AtomicWrite()
    InvitationStore().stage_consume(batch, invitation, live)
    before = {"email": invitation.email, "role": invitation.role}
    stage_audit(batch, tenant_id, actor, action, "invitation", invitation.id, before, None)
    if invitee_side:
        stage_audit(batch, None, actor, action, "invitation", invitation.id, {**before, "tenant_id": tenant_id}, None)
    batch.execute(get_redis())


def drop_tenant_invitations(batch: AtomicWrite, tenant_id: str) -> None:
    """Stage the removal of every invitation of a tenant being deleted."""
    store = InvitationStore()
    for invitation in store.get_many(store.redis.zrange(keys.tenant_invitations(tenant_id), 0, -1)):
        batch.delete(store.record_key(invitation.id))
        batch.delete(keys.invitation_token_index(invitation.token_hash))
        batch.delete(keys.invitation_pending(tenant_id, invitation.email))
        batch.zrem(keys.email_invitations(invitation.email), invitation.id)
    batch.delete(keys.tenant_invitations(tenant_id))


# --- invitee's side ------------------------------------------------------------------------------
def pending_for_person(user: User) -> list[tuple[Invitation, str]]:
    found = sorted(InvitationStore().pending_for_email(user.email, _now_ms()), key=lambda i: (i.created_at, i.id))
    names = {t.id: t.name for t in TenantStore().get_many({i.tenant_id for i in found})}
    return [(i, names[i.tenant_id]) for i in found if i.tenant_id in names]


def decline(user: User, invitation_id: str, actor: Actor) -> None:
    invitation = InvitationStore().find(invitation_id)
    if invitation is None or invitation.email != user.email or is_expired(invitation):
        raise ApiError(404, "not_found", f"invitation {invitation_id!r} not found")
    _consume(invitation, invitation.tenant_id, actor, "invitation.decline", live=True, invitee_side=True)


def live_invitation(raw: str, addressed_to: str | None = None) -> Invitation:
    """The invitation of a token; with ``addressed_to``, only if it was sent to that address: a signed-in
    person holding someone else's token hears what an unknown token hears (not whether it exists, for
    whom, or whether it expired)."""
    invitation = InvitationStore().find_by_token_hash(hash_token(raw)) if _TOKEN.match(raw) else None
    if invitation is None or (addressed_to is not None and invitation.email != addressed_to):
        raise ApiError(404, "not_found", _GONE)
    if is_expired(invitation):
        raise ApiError(410, "invitation_expired", "This invitation has expired; ask the tenant for a new one.")
    return invitation


def accept_as(raw: str, user: User, actor: Actor) -> Accepted:
    """A signed-in person accepts: the invitation must have been sent to their own address."""
    invitation = live_invitation(raw, addressed_to=user.email)
    tenant = _tenant_of(invitation)
    joined = _join(invitation, tenant, user.id, actor)
    return Accepted(joined, tenant, invitation.role, new_account=False)


def accept_new(raw: str, *, password: str | None, first_name: str, last_name: str, ip: str) -> Accepted:
    """Nobody is signed in: only a person without an account may accept, by choosing a password."""
    invitation = live_invitation(raw)
    if UserStore().find_by_email(invitation.email) is not None:
        raise ApiError(401, "not_authenticated", "An account with the invited address exists: sign in as that "
                                                 "person, then accept.")
    if not password:
        raise ApiError(400, "validation_error", "Choose a password for your new account.",
                       {"password": ["required to create your account"]})
    tenant = _tenant_of(invitation)
    user = User(email=invitation.email, password_hash=make_password(password), first_name=first_name,
                last_name=last_name, memberships={tenant.id: invitation.role}, last_tenant_id=tenant.id)
    actor = Actor(user.id, user.email, ip)
    batch = AtomicWrite()
    InvitationStore().stage_consume(batch, invitation, live=True)  # first: a second accept fails here (404)
    _stage_member_limit(batch, tenant)
    UserStore().stage_create(batch, user)
    UserStore.stage_membership_index(batch, None, user)
    _stage_accept_audit(batch, invitation, tenant, actor, user, {"email": user.email, "role": invitation.role})
    try:
        batch.execute(get_redis())
    except Conflict as exc:
        if exc.field != "email":
            raise
        raise ApiError(401, "not_authenticated", "An account with the invited address exists: sign in as that "
                                                 "person, then accept.")
    return Accepted(user, tenant, invitation.role, new_account=True)


def _tenant_of(invitation: Invitation) -> Tenant:
    tenant = TenantStore().find(invitation.tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", _GONE)
    return tenant


def _stage_member_limit(batch: AtomicWrite, tenant: Tenant) -> None:
    maximum = tenant.limits["max_users"]
    batch.require_max_card(keys.tenant_members(tenant.id), 1, maximum,
                           f"This tenant's plan allows {maximum} users and has no room left; ask its owner.",
                           "max_users")


def _stage_accept_audit(batch: AtomicWrite, invitation: Invitation, tenant: Tenant, actor: Actor, user: User,
                        user_after: dict) -> None:
    accepted = {"email": invitation.email, "role": invitation.role}
    stage_audit(batch, tenant.id, actor, "invitation.accept", "invitation", invitation.id, None, accepted)
    stage_audit(batch, tenant.id, actor, "user.add", "user", user.id, None, user_after)
    stage_audit(batch, None, actor, "invitation.accept", "invitation", invitation.id, None,
                {**accepted, "tenant_id": tenant.id})


@retry_on_stale()
def _join(invitation: Invitation, tenant: Tenant, user_id: str, actor: Actor) -> User:
    users = UserStore()
    old = users.get(user_id)
    if tenant.id in old.memberships:
        raise ApiError(409, "conflict", "You are already a member of this tenant.")
    new = User.from_dict({**old.to_dict(), "memberships": {**old.memberships, tenant.id: invitation.role},
                          "inactive_in": [t for t in old.inactive_in if t != tenant.id]})
    batch = AtomicWrite()
    InvitationStore().stage_consume(batch, invitation, live=True)  # first: a second accept fails here (404)
    _stage_member_limit(batch, tenant)
    users.stage_update(batch, old, new)
    UserStore.stage_membership_index(batch, old, new)
    _stage_accept_audit(batch, invitation, tenant, actor, new, {"email": new.email, "role": invitation.role})
    batch.execute(get_redis())
    return new
