"""Sign-in rules: password login with lockout and per-IP rate limit, API keys, profile."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password

from tenants import services, tokens
from tenants.audit import Actor, stage_audit
from tenants.models import ApiKey, Tenant, User
from tenants.store import ApiKeyStore, TenantStore, UserStore
from veloflux_site.api.errors import ApiError
from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.counters import incr_with_ttl, window_start
from veloflux_site.storage.errors import NotFound
from veloflux_site.storage.records import utcnow
from veloflux_site.storage.repository import retry_on_stale

API_KEY_PREFIX = "vfk_"
_DUMMY_HASH = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = make_password(secrets.token_hex(16))
    return _DUMMY_HASH


@dataclass
class LoginResult:
    user: User
    tenant_id: str | None
    pair: tokens.TokenPair


def _too_many(code: str, message: str, retry_after: float) -> ApiError:
    wait = max(1, int(retry_after + 0.999))
    return ApiError(429, code, message, headers={"Retry-After": str(wait)}, extra={"retry_after": wait})


def check_login_rate(ip: str) -> None:
    client = get_redis()
    window = int(settings.LOGIN_RATE_WINDOW)
    count, ttl = incr_with_ttl(client, keys.rate_limit("login", ip, window_start(window)), window)
    if count > settings.LOGIN_RATE_PER_IP:
        raise _too_many("rate_limited", "Too many login attempts from your address; wait and try again.", ttl)


def authenticate_password(email: str, password: str, ip: str) -> User:
    """The user, or an error that says nothing about whether the email exists."""
    check_login_rate(ip)
    client = get_redis()
    lock_ttl = client.pttl(keys.login_lock(email))
    if lock_ttl and lock_ttl > 0:
        raise _too_many("account_locked", "Too many failed logins for this account; it is locked for a while.",
                        lock_ttl / 1000)
    user = UserStore().find_by_email(email)
    valid = check_password(password, user.password_hash if user else _dummy_hash())
    if not (user and valid and user.password_hash):
        failures, _ = incr_with_ttl(client, keys.login_failures(email), settings.LOGIN_LOCKOUT)
        if failures >= settings.LOGIN_MAX_FAILURES:
            pipe = client.pipeline(transaction=True)
            pipe.set(keys.login_lock(email), "1", px=int(settings.LOGIN_LOCKOUT * 1000))
            pipe.delete(keys.login_failures(email))
            pipe.execute()
        raise ApiError(401, "invalid_credentials", "Email or password is wrong.")
    if not user.active:
        raise ApiError(403, "account_disabled", "This account is disabled; ask your tenant's admin.")
    client.delete(keys.login_failures(email))
    return user


def choose_tenant(user: User, tenant_id: str | None) -> str | None:
    """The tenant a login acts in: the one asked for, else the one the person last used, else their
    only one; with several and none last used, the person is asked to choose (400 listing them)."""
    if tenant_id:
        if tenant_id not in user.memberships and not user.is_platform_admin:
            raise ApiError(403, "not_a_member", "You are not a member of that tenant.",
                           {"tenant_id": ["not one of your tenants"]})
        if tenant_id in user.inactive_in and not user.is_platform_admin:
            raise ApiError(403, "account_disabled", "Your access to that tenant is switched off; ask its admin.",
                           {"tenant_id": ["your membership is switched off"]})
        tenant = TenantStore().find(tenant_id)
        if tenant is None:
            raise ApiError(400, "validation_error", f"Tenant {tenant_id!r} does not exist.",
                           {"tenant_id": ["no such tenant"]})
    else:
        tenant_id = _default_tenant(user)
        tenant = TenantStore().find(tenant_id) if tenant_id else None
    if tenant is not None and not tenant.active and not user.is_platform_admin:
        raise ApiError(403, "tenant_suspended", "This tenant is suspended; contact support.")
    return tenant_id


def _default_tenant(user: User) -> str | None:
    candidates = user.active_tenant_ids()
    if user.memberships and not candidates and not user.is_platform_admin:
        raise ApiError(403, "account_disabled", "Your access to every tenant you belong to is switched off; ask "
                                                "their admins.")
    if user.last_tenant_id in candidates:
        return user.last_tenant_id
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    # Several tenants and none last used (e.g. an account from before this was recorded): never guess.
    tenants = sorted(TenantStore().get_many(candidates), key=lambda t: (t.name.lower(), t.id))
    listing = ", ".join(f"{t.name} ({t.id})" for t in tenants)
    raise ApiError(400, "tenant_required", f"You belong to several tenants; log in again with tenant_id set to one "
                                           f"of: {listing}.", {"tenant_id": ["choose one of your tenants"]},
                   extra={"tenants": [{"id": t.id, "name": t.name} for t in tenants]})


@retry_on_stale()
def _touch_last_login(user_id: str, tenant_id: str | None = None) -> None:
    """Record the login, and the tenant it went to: the next login without a tenant goes there."""
    store = UserStore()
    old = store.get(user_id)
    changes: dict = {"last_login_at": utcnow()}
    if tenant_id and tenant_id in old.memberships:
        changes["last_tenant_id"] = tenant_id
    store.update(old, User.from_dict({**old.to_dict(), **changes}))


def login(email: str, password: str, tenant_id: str | None, ip: str) -> LoginResult:
    user = authenticate_password(email, password, ip)
    chosen = choose_tenant(user, tenant_id)
    _touch_last_login(user.id, chosen)
    return LoginResult(UserStore().get(user.id), chosen, tokens.issue_pair(user.id, chosen, user.auth_epoch))


def record_tenant_choice(user_id: str, tenant_id: str | None) -> None:
    """The web login's counterpart of ``login``'s bookkeeping (same last-used tenant)."""
    _touch_last_login(user_id, tenant_id)


def register(data: dict, ip: str) -> tuple[Tenant, User, tokens.TokenPair]:
    """Self-service sign-up: a new tenant and its owner, audited as the owner from ``ip``."""
    check_login_rate(ip)
    tenant, owner, _ = services.create_tenant_with_owner(
        name=data["tenant_name"], plan=data["plan"], owner_email=data["email"],
        owner_first_name=data["first_name"], owner_last_name=data["last_name"],
        owner_password=data["password"], actor=None, new_owner_only=True, actor_ip=ip,
    )
    return tenant, owner, tokens.issue_pair(owner.id, tenant.id, owner.auth_epoch)


def user_payload(user: User, tenant_id: str | None) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "name": user.full_name,
        "tenant_id": tenant_id,
        "role": user.role_in(tenant_id),
        "tenants": [{"tenant_id": t, "role": r, "active": t not in user.inactive_in}
                    for t, r in sorted(user.memberships.items())],
        "last_tenant_id": user.last_tenant_id,
        "is_platform_admin": user.is_platform_admin,
        "active": user.active,
        "must_change_password": user.must_change_password,
        "last_login_at": user.last_login_at,
        "created_at": user.created_at,
        "version": user.version,
    }


# --- API keys -------------------------------------------------------------
def hash_api_key(raw: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(tenant: Tenant, name: str, role: str, expires_at: str | None, actor: Actor) -> tuple[ApiKey, str]:
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(tenant_id=tenant.id, name=name, role=role, prefix=raw[:12], key_hash=hash_api_key(raw),
                    created_by=actor.id, expires_at=expires_at)
    store = ApiKeyStore(tenant.id)
    batch = AtomicWrite()
    batch.require_max_card(store.index_key(), 1, tenant.limits["max_api_keys"],
                           f"Your plan allows {tenant.limits['max_api_keys']} API keys; revoke one or upgrade.",
                           "max_api_keys")
    store.stage_create(batch, record)
    stage_audit(batch, tenant.id, actor, "api_key.create", "api_key", record.id, None, record.public_dict())
    batch.execute(get_redis())
    return record, raw


def revoke_api_key(tenant_id: str, key_id: str, actor: Actor) -> None:
    store = ApiKeyStore(tenant_id)
    record = store.get(key_id)
    batch = AtomicWrite()
    store.stage_delete(batch, record)
    batch.hdel(keys.api_key_last_used(tenant_id), key_id)
    stage_audit(batch, tenant_id, actor, "api_key.revoke", "api_key", key_id, record.public_dict(), None)
    batch.execute(get_redis())


# A busy client must not cost a Redis write per request: a key's use is recorded at most once per
# interval per process, so last_used_at is exact to within this many seconds.
API_KEY_TOUCH_INTERVAL = 60.0
_last_touch: dict[str, float] = {}


def touch_api_key(record: ApiKey) -> None:
    """Record that a key was just used; a key revoked in the meantime is left revoked."""
    now = time.monotonic()
    if now - _last_touch.get(record.id, -API_KEY_TOUCH_INTERVAL) < API_KEY_TOUCH_INTERVAL:
        return
    if len(_last_touch) > 10_000:
        _last_touch.clear()
    _last_touch[record.id] = now
    batch = AtomicWrite()
    batch.require_present(keys.api_key(record.tenant_id, record.id), "API key revoked")
    batch.hset(keys.api_key_last_used(record.tenant_id), record.id, utcnow())
    with contextlib.suppress(NotFound):
        batch.execute(get_redis())


def api_keys_with_last_use(tenant_id: str, records: list[ApiKey]) -> list[ApiKey]:
    used = get_redis().hgetall(keys.api_key_last_used(tenant_id)) if records else {}
    for record in records:
        record.last_used_at = used.get(record.id)
    return records


# --- profile --------------------------------------------------------------
@retry_on_stale()
def update_profile(user_id: str, changes: dict, actor: Actor, tenant_id: str | None,
                   expected_version: int | None = None) -> User:
    store = UserStore()
    changes = dict(changes)  # this may run again after a lost race: never consume the caller's dict
    old = store.get(user_id)
    new_password = changes.pop("new_password", None)
    current_password = changes.pop("current_password", None)
    sensitive = new_password is not None or "email" in changes
    if sensitive and not (current_password and check_password(current_password, old.password_hash)):
        raise ApiError(400, "validation_error", "To change your email or password, give your current password.",
                           {"current_password": ["wrong or missing"]})
    data = {**old.to_dict(), **changes}
    if "email" in changes:
        data["email"] = changes["email"].strip().lower()
    if new_password is not None:
        data["password_hash"] = make_password(new_password)
        data["must_change_password"] = False
        data["auth_epoch"] = old.auth_epoch + 1  # ends every other session and token
    new = User.from_dict(data)
    batch = AtomicWrite()
    store.stage_update(batch, old, new, expected_version)
    for tid in sorted(old.memberships if tenant_id is None else [tenant_id]):
        audit_after = {**{k: getattr(new, k) for k in changes}, **({"password": "changed"} if new_password else {})}
        stage_audit(batch, tid, actor, "profile.update", "user", user_id,
                    {k: getattr(old, k) for k in changes}, audit_after)
    batch.execute(get_redis())
    return new
