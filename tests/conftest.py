"""Test session: one real redis-server on a free port, flushed before every test."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

from tests.support.redis_server import RedisServer

# Hashing cost is not what the tests measure; MD5 keeps hundreds of logins fast. Settings are
# already loaded here, so set it in-process and export it to the servers tests start.
os.environ["VF_PASSWORD_HASHER"] = "md5"
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
get_hashers.cache_clear()
get_hashers_by_algorithm.cache_clear()

# The suite's backends listen on 127.0.0.1 and its examples use 10.0.0.0/8: allow both, explicitly, in-process and
# for the servers tests start (the address policy's own tests set the strict default: tests/balancer/
# test_address_policy.py). Platform listeners and link-local stay refused whatever this says.
TEST_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8"
os.environ["VF_BACKEND_ALLOWED_NETWORKS"] = TEST_ALLOWED_NETWORKS
settings.BACKEND_ALLOWED_NETWORKS = TEST_ALLOWED_NETWORKS.split(",")


def point_app_at(url: str) -> None:
    from veloflux_site.storage.connection import reset_redis

    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [url]
    reset_redis()


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    server = RedisServer().start()
    point_app_at(server.url)
    yield server
    server.cleanup()


@pytest.fixture(autouse=True)
def clean_redis(redis_server):
    from veloflux_site.storage.connection import get_redis

    get_redis().flushall()
    yield


@pytest.fixture
def own_redis(redis_server):
    """A second redis-server with AOF (a restart keeps the data), the app pointed at it: a test may stop
    and restart it without touching the session's shared server."""
    server = RedisServer(appendonly=True).start()
    point_app_at(server.url)
    try:
        yield server
    finally:
        point_app_at(redis_server.url)
        server.cleanup()


pytest_plugins = ["tests.support.actors", "tests.support.asgi_server", "tests.support.domains"]
