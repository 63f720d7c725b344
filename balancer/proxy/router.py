"""Chooses the backend for a request: usable backends of the route's pool, sticky cookie, algorithm."""

from __future__ import annotations

import hashlib
import hmac

from balancer.proxy.config import Backend, Pool

STICKY_COOKIE = b"vf_sticky"


class Sticky:
    """Signed sticky-session cookie ``vf_sticky=<backend id>.<hmac>``; the signature binds tenant and pool."""

    def __init__(self, secret: bytes):
        self.secret = secret

    def sign(self, pool: Pool, backend_id: str) -> str:
        message = f"{pool.tenant_id}|{pool.name}|{backend_id}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:24]

    def cookie_value(self, pool: Pool, backend: Backend) -> bytes:
        return f"{backend.id}.{self.sign(pool, backend.id)}".encode()

    def set_cookie_header(self, pool: Pool, backend: Backend) -> bytes:
        return b"Set-Cookie: " + STICKY_COOKIE + b"=" + self.cookie_value(pool, backend) + b"; Path=/; HttpOnly\r\n"

    def backend_from(self, pool: Pool, cookie_header: bytes | None, now: float) -> Backend | None:
        """The backend named by a valid cookie if it can still serve (draining ones can: the session finishes)."""
        if not cookie_header:
            return None
        for part in cookie_header.split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name != STICKY_COOKIE:
                continue
            backend_id, _, signature = value.decode("latin-1").rpartition(".")
            if not backend_id or not hmac.compare_digest(signature, self.sign(pool, backend_id)):
                return None
            for backend in pool.backends:
                if backend.id == backend_id and backend.st.usable(now):
                    return backend
            return None
        return None


def choose(pool: Pool, client_ip: str, now: float, exclude: Backend | None = None) -> Backend | None:
    """A backend for a new session, or None when no backend of the pool can serve (-> 503)."""
    backends = pool.backends
    for b in backends:  # common case: every backend can take new sessions, no list to build
        st = b.st
        if st.down or st.ejected_until > now or b.draining or b is exclude:
            break
    else:
        return pool.balancer.pick(backends, client_ip, now) if backends else None
    usable = [b for b in backends if not b.draining and b.st.usable(now) and b is not exclude]
    if not usable:
        return None
    return pool.balancer.pick(usable, client_ip, now)


def usable_peers(pools: list[Pool], backend: Backend, now: float) -> int:
    """The fewest other usable backends among the pools that contain ``backend`` (never eject the last one)."""
    fewest = 1 << 30
    for pool in pools:
        peers = sum(1 for b in pool.backends if b.id != backend.id and b.st.usable(now))
        fewest = min(fewest, peers)
    return 0 if fewest == 1 << 30 else fewest
