"""Bad input anywhere is a 4xx with a message, never a 500, and changes nothing."""

from __future__ import annotations

import pytest

from tests.balancer.helpers import backend, pool, route, routing_version

JUNK = [[], "text", 5, None, {"name": {"a": 1}}, {"address": 5, "pool": ["web"]}, {"host": 7, "pool": None},
        {"weight": "1e400", "address": "1.2.3.4:80", "pool": "web"}, {"health_check": "fast", "name": "x"},
        {"health_check": {"interval": {"s": 1}}, "name": "x"}, {"operations": [None, [], {"op": "create"}]},
        {"pools": "all"}, {"pools": [{"name": "a", "backends": "many"}]}, {"routes": [5]},
        {"global": {"health_check": {"timeout": "1m"}}}, {"version": "one", "algorithm": "random"},
        {"name": "x" * 5000}, {"max_body_bytes": 1.5, "host": "a.example.com", "pool": "web"}]


@pytest.fixture
def objects(api, member):
    pool(api, member)
    return {"backend": backend(api, member), "route": route(api, member)}


def test_it_answers_junk_with_a_4xx_and_changes_nothing(api, member, objects):
    be, rt = objects["backend"]["id"], objects["route"]["id"]
    version = routing_version()
    targets = [("post", "/api/pools"), ("put", "/api/pools/web"), ("post", "/api/backends"),
               ("put", f"/api/backends/{be}"), ("post", "/api/routes"), ("put", f"/api/routes/{rt}"),
               ("post", "/api/bulk"), ("post", "/api/config/import"), ("post", "/api/config/import?dry_run=1"),
               ("post", "/api/config/validate"), ("post", "/api/backup/restore")]
    for method, path in targets:
        for body in JUNK:
            response = getattr(api.as_(member), method)(path, body)
            assert response.status_code < 500, (method, path, body, response.content[:300])
            if response.status_code >= 400:
                assert response.json()["error"]["message"], (method, path, body)
    assert routing_version() == version
