"""Django sessions stored in Redis through our storage layer (JSON, with TTL)."""

from __future__ import annotations

import re

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, SessionBase
from django.core import signing

from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

# The keys Django issues (get_random_string(32, VALID_KEY_CHARS)); anything else in the cookie is no session.
_ISSUED_KEY = re.compile(f"[{VALID_KEY_CHARS}]{{32}}")


def is_issued_key(session_key: object) -> bool:
    return isinstance(session_key, str) and _ISSUED_KEY.fullmatch(session_key) is not None


class SessionStore(SessionBase):
    def _validate_session_key(self, key) -> bool:
        # At the edge: a cookie that is not a key we issue (braces, spaces, 10 kB) never reaches the key
        # builder (its InvalidKeyPart was a 500, then a 400): it is treated as no session, i.e. anonymous.
        return is_issued_key(key)

    def _key(self, session_key: str | None = None) -> str:
        return keys.session(session_key or self._get_or_create_session_key())

    def load(self) -> dict:
        if not self.session_key:
            return {}
        raw = get_redis().get(self._key(self.session_key))
        if raw is None:
            self._session_key = None
            return {}
        try:
            return signing.loads(raw, salt="veloflux.sessions", serializer=signing.JSONSerializer)
        except signing.BadSignature:
            self._session_key = None
            return {}

    def exists(self, session_key: str | None) -> bool:
        return is_issued_key(session_key) and bool(get_redis().exists(keys.session(session_key)))

    def create(self) -> None:
        for _ in range(10):
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key.")

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = signing.dumps(self._get_session(no_load=must_create), salt="veloflux.sessions",
                             serializer=signing.JSONSerializer)
        ok = get_redis().set(self._key(self.session_key), data, ex=self.get_expiry_age(), nx=must_create)
        if must_create and not ok:
            raise CreateError

    def delete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if is_issued_key(session_key):
            get_redis().delete(keys.session(session_key))

    @classmethod
    def clear_expired(cls) -> None:
        """Redis expires sessions by itself."""
