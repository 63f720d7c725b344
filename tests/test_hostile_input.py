"""Hostile text wherever user input reaches a Redis key: a clear 4xx in the error shape, nothing changed.

Each entry point below takes text from the caller (a body field, a header, a path segment, a
query parameter) that ends up in ``veloflux_site.storage.keys``; before the fix an email with a
brace made the key builder raise ``ValueError`` and the API answer 500 without authentication.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest

from tests.support.actors import PASSWORD
from tests.support.assertions import assert_error, redis_dump
from veloflux_site.storage import keys
from veloflux_site.storage.errors import InvalidKeyPart

HOSTILE = {
    "open_brace": "a{b",
    "close_brace": "a}b",
    "hash_tag": "{t:other}",
    "colon": "a:b",
    "newline": "a\nb",
    "nul": "a\x00b",
    "ten_kb": "x" * 10_000,
    "unicode": "s\u00e9\u2603\U0001f600",
    "dot_dot_slash": "../x",
}


def _email(text: str) -> str:
    return f"u{text}v@example.test"


def _login_email(api, actors, text):
    return api.post("/api/auth/login", {"email": _email(text), "password": PASSWORD})


def _login_tenant(api, actors, text):
    return api.post("/api/auth/login", {"email": actors["admin"].email, "password": PASSWORD, "tenant_id": text})


def _register_email(api, actors, text):
    return api.post("/api/auth/register", {"email": _email(text), "password": PASSWORD, "tenant_name": "Hostile"})


def _refresh_token(api, actors, text):
    return api.post("/api/auth/refresh", {"refresh_token": text})


def _x_tenant_id(api, actors, text):
    return api.as_(actors["admin"]).get("/api/pools", HTTP_X_TENANT_ID=text)


def _path(template: str, who: str = "owner", method: str = "get") -> Callable:
    def call(api, actors, text):
        caller = api.as_(actors[who])
        return getattr(caller, method)(template.format(tenant=actors["owner"].tenant_id, x=quote(text, safe="")))
    call.__name__ = f"{method}_{template}"
    return call


def _idempotency_key(api, actors, text):
    return api.as_(actors["owner"]).post("/api/pools", {"name": "idem"}, HTTP_IDEMPOTENCY_KEY=text)


def _pool_query(api, actors, text):
    return api.as_(actors["owner"]).get("/api/backends", {"pool": text})


def _pool_name(api, actors, text):
    return api.as_(actors["owner"]).post("/api/pools", {"name": text})


def _publish_channel(api, actors, text):
    channel = f"tenant:{actors['owner'].tenant_id}:{text}"
    return api.as_(actors["owner"]).post("/api/realtime/publish", {"channel": channel, "data": {"a": 1}})


def _history_channel(api, actors, text):
    return api.as_(actors["owner"]).get("/api/realtime/history",
                                        {"channel": f"tenant:{actors['owner'].tenant_id}:{text}"})


def _presence_channel(api, actors, text):
    return api.as_(actors["owner"]).get("/api/realtime/presence", {"channel": f"user:{text}"})


def _api_key_name(api, actors, text):
    return api.as_(actors["owner"]).post("/api/auth/api-keys", {"name": text, "role": "nope"})


def _profile_email(api, actors, text):
    return api.as_(actors["owner"]).put("/api/profile", {"email": _email(text), "current_password": PASSWORD})


def _member_email(api, actors, text):
    return api.as_(actors["owner"]).post(f"/api/tenants/{actors['owner'].tenant_id}/users",
                                         {"email": _email(text), "role": "viewer"})


# Each of these must refuse every hostile string.
REFUSING = [
    _login_email, _login_tenant, _register_email, _refresh_token, _x_tenant_id,
    _pool_name, _profile_email, _member_email, _presence_channel, _api_key_name,
    _path("/api/pools/{x}"), _path("/api/pools/{x}", method="delete"),
    _path("/api/backends/{x}"), _path("/api/routes/{x}", method="delete"),
    _path("/api/auth/api-keys/{x}"), _path("/api/auth/api-keys/{x}", method="delete"),
    _path("/api/tenants/{x}", who="admin"), _path("/api/tenants/{x}/status", who="admin"),
    _path("/api/tenants/{tenant}/users/{x}"), _path("/api/tenants/{tenant}/users/{x}", method="delete"),
    _path("/api/config/versions/{x}"),
]
# These may accept some strings (a filter matching nothing, a hashed Idempotency-Key, a topic with ':')
# but never fail on any: no 5xx, and a refusal is in the error shape and changes nothing.
TOLERANT = [_pool_query, _idempotency_key, _publish_channel, _history_channel,
            _path("/api/audit?actor={x}&object_id={x}&action={x}"),
            _path("/api/tenants/{tenant}/logs?cursor={x}"), _path("/api/tenants/{tenant}/alerts?state={x}")]


@pytest.fixture
def actors(tenant_a, platform_admin) -> dict:
    return {**tenant_a, "admin": platform_admin}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("call", REFUSING, ids=lambda call: call.__name__.strip("_"))
def test_it_answers_hostile_text_with_a_4xx_and_changes_nothing(api, actors, call, text):
    before = redis_dump()
    response = call(api, actors, text)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert_error(response, response.status_code)
    assert redis_dump() == before


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("call", TOLERANT, ids=lambda call: call.__name__.strip("_"))
def test_it_never_fails_on_hostile_text_where_it_may_be_accepted(api, actors, call, text):
    before = redis_dump()
    response = call(api, actors, text)
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert_error(response, response.status_code)
        assert redis_dump() == before


@pytest.mark.parametrize("text", ["a{b", "a}b", "a b", "a\nb", ""])
def test_it_refuses_a_key_part_with_a_domain_error(text):
    with pytest.raises(InvalidKeyPart) as caught:
        keys.user_email_index(text) if text else keys.user_record(text)
    assert caught.value.code == "invalid_identifier"


def test_it_maps_an_invalid_key_part_that_escapes_validation_to_a_400(api, owner):
    from veloflux_site.api.errors import exception_handler

    response = exception_handler(InvalidKeyPart("x" * 10_000), {})
    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid_identifier"
    assert len(response.data["error"]["message"]) < 300


@pytest.mark.parametrize("field, text", [("email", _email("{")), ("email", _email("}")), ("tenant_id", "{t:x}"),
                                         ("tenant_id", "a b"), ("tenant_id", "a\nb")])
def test_it_answers_hostile_text_on_the_login_page_with_the_form_again(tenant_a, field, text):
    from django.test import Client

    before = redis_dump()
    data = {"email": tenant_a["owner"].email, "password": PASSWORD, field: text}
    response = Client().post("/login", data)
    assert response.status_code == 400, response.status_code
    assert "<form" in response.content.decode()
    assert redis_dump() == before


@pytest.mark.parametrize("cookie", ["a{b}cdefgh", "{t:other}xyz", "x" * 10_000, "abc:def:ghi"])
def test_it_treats_a_malformed_session_cookie_as_no_session(client, settings, cookie):
    # The session key from the cookie went straight into keys.session: InvalidKeyPart, a 500 (then a 400
    # from the safety net). A cookie that cannot be a session of ours is no session.
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    before = redis_dump()
    assert_error(client.get("/api/profile"), 401, "not_authenticated")
    assert client.get("/login").status_code == 200
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 302 and dashboard["Location"].startswith("/login"), dashboard
    assert redis_dump() == before
