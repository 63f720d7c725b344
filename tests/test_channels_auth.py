"""WebSockets are authenticated like the API: a JWT in ?token=, an API key in ?api_key=, or the session cookie."""

from __future__ import annotations

import asyncio
import json

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.test import Client

from tenants.channels_auth import PrincipalAuthMiddleware
from tests.support.actors import PASSWORD
from tests.support.assertions import assert_ok
from tests.support.ws import WebsocketClient
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


class WhoAmI(AsyncJsonWebsocketConsumer):
    """Accepts, then says who the middleware decided the caller is."""

    channel_layer_alias = "none"  # no channel layer: this consumer only answers its own socket

    async def connect(self):
        await self.accept()
        principal = self.scope["principal"]
        await self.send_json({
            "authenticated": principal.is_authenticated,
            "method": getattr(principal, "auth_method", None),
            "tenant_id": principal.tenant_id,
            "role": principal.role,
            "user_id": principal.user.id if principal.user else None,
            "same_as_user": self.scope["user"] is principal,
        })


APP = PrincipalAuthMiddleware(WhoAmI.as_asgi())


def who(path: str = "/ws", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    async def run() -> dict:
        communicator = WebsocketClient(APP, path, headers)
        assert await communicator.connect()
        try:
            return await communicator.receive_json()
        finally:
            await communicator.disconnect()

    return asyncio.run(run())


def test_it_authenticates_a_jwt_in_the_query_string(member):
    seen = who(f"/ws?token={member.token}")
    assert seen == {"authenticated": True, "method": "jwt", "tenant_id": member.tenant_id, "role": "member",
                    "user_id": member.id, "same_as_user": True}


def test_it_leaves_a_connection_without_credentials_anonymous():
    seen = who("/ws")
    assert seen["authenticated"] is False and seen["tenant_id"] is None and seen["user_id"] is None


def test_it_treats_a_bad_or_revoked_token_as_anonymous(api, member):
    assert who("/ws?token=garbage")["authenticated"] is False
    assert who(f"/ws?token={member.refresh_token}")["authenticated"] is False  # not an access token
    assert api.as_(member).post("/api/auth/logout").status_code == 204
    assert who(f"/ws?token={member.token}")["authenticated"] is False


def test_it_authenticates_the_session_cookie(owner):
    browser = Client()
    assert browser.post("/login", {"email": owner.email, "password": PASSWORD}).status_code == 302
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    seen = who(headers=[(b"cookie", f"other=1; {settings.SESSION_COOKIE_NAME}={cookie}".encode())])
    assert seen["authenticated"] is True and seen["method"] == "session"
    assert seen["user_id"] == owner.id and seen["role"] == "owner" and seen["tenant_id"] == owner.tenant_id


def test_it_treats_an_unknown_or_ended_session_as_anonymous(owner):
    name = settings.SESSION_COOKIE_NAME
    assert who(headers=[(b"cookie", f"{name}=not-a-session".encode())])["authenticated"] is False
    browser = Client()
    browser.post("/login", {"email": owner.email, "password": PASSWORD})
    cookie = browser.cookies[name].value
    browser.post("/logout")
    assert who(headers=[(b"cookie", f"{name}={cookie}".encode())])["authenticated"] is False


def test_it_authenticates_an_api_key(api, admin):
    created = assert_ok(api.as_(admin).post("/api/auth/api-keys", {"name": "ws", "role": "viewer"}), 201)
    seen = who(f"/ws?api_key={created['key']}")
    assert seen["authenticated"] is True and seen["method"] == "api_key"
    assert seen["tenant_id"] == admin.tenant_id and seen["role"] == "viewer"
    api.as_(admin).delete(f"/api/auth/api-keys/{created['id']}")
    assert who(f"/ws?api_key={created['key']}")["authenticated"] is False


def test_it_refuses_a_user_removed_from_the_tenant(api, owner, member):
    api.as_(owner).delete(f"/api/tenants/{owner.tenant_id}/users/{member.id}")
    assert who(f"/ws?token={member.token}")["authenticated"] is False


def test_it_refuses_the_users_of_a_suspended_tenant(api, owner, platform_admin):
    assert_ok(api.as_(platform_admin).put(f"/api/tenants/{owner.tenant_id}", {"active": False}))
    assert who(f"/ws?token={owner.token}")["authenticated"] is False


def test_it_refuses_an_expired_api_key(api, admin):
    created = assert_ok(api.as_(admin).post("/api/auth/api-keys", {"name": "ws", "role": "viewer"}), 201)
    key = keys.api_key(admin.tenant_id, created["id"])
    record = json.loads(get_redis().get(key))
    get_redis().set(key, json.dumps({**record, "expires_at": "2020-01-01T00:00:00Z"}))
    assert who(f"/ws?api_key={created['key']}")["authenticated"] is False
