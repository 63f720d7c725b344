"""schemathesis against /api/schema/: every documented operation, called in-process (WSGI) as tenant A's
owner, as a viewer and as a platform admin, with generated input, must never be a 500, must answer only
documented status codes and content types, and its bodies must match the schema. Bounded (a few
derandomized examples per operation) so CI stays stable."""

from __future__ import annotations

import json

import hypothesis
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, strategies
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client

from tests.support.actors import PASSWORD, Api, add_actor, make_tenant, platform_admin_actor
from tests.support.assertions import assert_ok
from tests.support.invites import token_mailed_to

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# What cannot run against a shared world, and why:
EXCLUDED_PATHS = [
    "/api/backup/restore",  # replaces every key in Redis (the caller's own user and token included) mid-run
    "/api/auth/logout",     # revokes the token every later example of the test authenticates with
]


NEWCOMER = "newcomer@elsewhere.test"  # invited by tenant A, no account yet
HUB_KEY = "fuzz-hub-api-key-0123456789"  # the platform's hub key (Centrifugo's server API), set for the run


@pytest.fixture
def world(api, dns_zone, settings):
    """Tenant A's owner and a viewer, one of each object, and their ids by URL kwarg name (``real``)."""
    settings.REALTIME_API_KEY = HUB_KEY
    tenant_id, owner = make_tenant("Acme Corp", "owner@acme.test")
    viewer = add_actor(tenant_id, "viewer@acme.test", "viewer")
    as_owner = Api().as_(owner)
    assert_ok(as_owner.post("/api/pools", {"name": "web"}), 201)
    backend = assert_ok(as_owner.post("/api/backends", {"address": "203.0.113.10:8080", "pool": "web"}), 201)
    route = assert_ok(as_owner.post("/api/routes", {"host": "app.acme.test", "pool": "web"}), 201)
    key = assert_ok(as_owner.post("/api/auth/api-keys", {"name": "ci", "role": "viewer"}), 201)
    version = assert_ok(as_owner.get("/api/config/versions"))["items"][0]["version"]
    host = assert_ok(as_owner.post("/api/domains", {"host": "shop.acme.test"}), 201)["host"]
    invitation = assert_ok(as_owner.post(f"/api/tenants/{tenant_id}/invitations", {"email": NEWCOMER}), 201)
    real = {"tenant_id": tenant_id, "user_id": viewer.id, "key_id": key["id"], "name": "web",
            "backend_id": backend["id"], "route_id": route["id"], "version": version, "host": host,
            "invitation_id": invitation["id"], "token": token_mailed_to(NEWCOMER)}
    root = platform_admin_actor()
    return {"owner": owner, "viewer": viewer, "platform_admin": root, "real": real}


def load_schema():
    """The schema /api/schema/ serves, generated in-process (no request: collection runs before Redis is up)."""
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(document).exclude(path=EXCLUDED_PATHS)
    loaded.app = get_wsgi_application()  # calls go through the WSGI handler, every middleware included
    return loaded


SCHEMA = load_schema()
HUB_KEY_PATHS = {path for path, item in SCHEMA.raw_schema["paths"].items()
                 if any(op.get("security") == [{"hubApiKey": []}] for op in item.values())}
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


# The platform admin acts in tenant A (X-Tenant-ID), so platform-only operations answer with success too.
@pytest.mark.parametrize("role", ["owner", "viewer", "platform_admin"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
@hypothesis.settings(max_examples=10, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck))
@hypothesis.given(data=strategies.data())
def test_it_answers_as_documented(operation, role, world, data):
    case = data.draw(operation.as_strategy())
    # Generated ids are almost never ours: point half the examples at tenant A's real objects, so the
    # success answers of detail endpoints are checked too.
    if case.path_parameters and data.draw(strategies.booleans(), label="real objects"):
        case.path_parameters = {**case.path_parameters,
                                **{k: v for k, v in world["real"].items() if k in case.path_parameters}}
    headers = {"Authorization": f"Bearer {world[role].token}"}
    if role == "platform_admin":
        headers["X-Tenant-ID"] = world["real"]["tenant_id"]
    if operation.path in HUB_KEY_PATHS:  # Centrifugo's server API: the hub key (a user's token is not read there)
        headers["X-API-Key"] = HUB_KEY
    case.call_and_validate(headers=headers, checks=CHECKS)


# The hub's operations, held to more: a body or query the schema allows is never refused with a 400 (their
# schemas say exactly what the views take). Not the token endpoints: their ``info`` is bounded to about
# 1 KiB, which JSON Schema cannot say.
EXACT = [op for op in OPERATIONS if op.path in HUB_KEY_PATHS
         or (op.path.startswith("/api/realtime/") and "token" not in op.path)]


@pytest.mark.parametrize("operation", EXACT, ids=[op.label for op in EXACT])
@hypothesis.settings(max_examples=25, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck))
@hypothesis.given(data=strategies.data())
def test_it_accepts_every_request_the_hub_operations_document(operation, world, data):
    case = data.draw(operation.as_strategy())
    headers = {"Authorization": f"Bearer {world['owner'].token}", "X-API-Key": HUB_KEY}
    if operation.path not in HUB_KEY_PATHS:  # a tenant's endpoint reads X-API-Key as a tenant's API key
        headers.pop("X-API-Key")
    case.call_and_validate(headers=headers, checks=[*CHECKS, positive_data_acceptance])


# Success answers the fuzzer rarely reaches (its bodies are mostly invalid): a real session of tenant A's
# owner, each answer checked against the operation it is documented by. (method, schema path, URL, body)
SESSION = [
    ("GET", "/api/", "/api/", None),
    ("POST", "/api/pools", "/api/pools", {"name": "api", "algorithm": "least_conn"}),
    ("POST", "/api/bulk", "/api/bulk", {"operations": [{"op": "create", "type": "backend",
                                                        "data": {"address": "203.0.113.11:80", "pool": "api"}}]}),
    ("GET", "/api/pools/{name}", "/api/pools/web", None),
    ("PUT", "/api/pools/{name}", "/api/pools/api", {"sticky_sessions": True}),
    ("GET", "/api/backends/{backend_id}", "/api/backends/{backend_id}", None),
    ("PATCH", "/api/backends/{backend_id}", "/api/backends/{backend_id}", {"weight": 5}),
    ("GET", "/api/routes/{route_id}", "/api/routes/{route_id}", None),
    ("DELETE", "/api/pools/{name}", "/api/pools/api?force=true", None),
    ("GET", "/api/config", "/api/config", None),
    ("POST", "/api/config/validate", "/api/config/validate", {"pools": [], "routes": []}),
    ("POST", "/api/config/import", "/api/config/import?dry_run=true", {"pools": [], "routes": []}),
    ("GET", "/api/config/versions", "/api/config/versions", None),
    ("GET", "/api/config/versions/{version}", "/api/config/versions/{version}", None),
    ("POST", "/api/config/versions/{version}/rollback", "/api/config/versions/{version}/rollback", None),
    ("POST", "/api/reload", "/api/reload", None),
    ("GET", "/api/tenants/{tenant_id}", "/api/tenants/{tenant_id}", None),
    ("GET", "/api/tenants/{tenant_id}/users/{user_id}", "/api/tenants/{tenant_id}/users/{user_id}", None),
    ("GET", "/api/tenants/{tenant_id}/config", "/api/tenants/{tenant_id}/config", None),
    ("GET", "/api/tenants/{tenant_id}/logs", "/api/tenants/{tenant_id}/logs", None),
    ("GET", "/api/audit", "/api/audit", None),
    ("GET", "/api/auth/api-keys/{key_id}", "/api/auth/api-keys/{key_id}", None),
    ("POST", "/api/realtime/publish", "/api/realtime/publish", {"channel": "tenant:{tenant_id}:news", "data": 1}),
    ("GET", "/api/realtime/history", "/api/realtime/history?channel=tenant:{tenant_id}:news", None),
    ("GET", "/api/realtime/presence", "/api/realtime/presence?channel=tenant:{tenant_id}:news", None),
    ("POST", "/api/ws/force-update", "/api/ws/force-update", {}),
    ("GET", "/api/profile", "/api/profile", None),
    ("GET", "/api/domains", "/api/domains", None),
    ("GET", "/api/domains/{host}", "/api/domains/{host}", None),
    ("POST", "/api/domains/{host}/verify", "/api/domains/{host}/verify", None),
    ("GET", "/api/tenants/{tenant_id}/invitations", "/api/tenants/{tenant_id}/invitations", None),
    ("GET", "/api/tenants/{tenant_id}/invitations/{invitation_id}",
     "/api/tenants/{tenant_id}/invitations/{invitation_id}", None),
    ("GET", "/api/tenants/{tenant_id}/users", "/api/tenants/{tenant_id}/users", None),
    ("POST", "/api/tenants/{tenant_id}/users", "/api/tenants/{tenant_id}/users", {"email": "new@acme.test"}),
    ("GET", "/api/profile/invitations", "/api/profile/invitations", None),
    ("POST", "/api/auth/login", "/api/auth/login", {"email": "owner@acme.test", "password": PASSWORD}),
    ("POST", "/api/realtime/broadcast", "/api/realtime/broadcast", {"channels": ["tenant:{tenant_id}:news"],
                                                                    "data": None}),
    ("POST", "/api/realtime/token", "/api/realtime/token", {"ttl": 60, "channels": ["tenant:{tenant_id}:news"]}),
    ("POST", "/api/realtime/subscription-token", "/api/realtime/subscription-token",
     {"channel": "tenant:{tenant_id}:news"}),
]
# Centrifugo's server API with the hub key: each method's reply (a result, or Centrifugo's error in a 200).
HUB_SESSION = [
    ("/api/publish", {"channel": "tenant:{tenant_id}:news", "data": {"n": 1}}),
    ("/api/broadcast", {"channels": ["tenant:{tenant_id}:news", "not a channel"], "data": 2}),
    ("/api/presence", {"channel": "tenant:{tenant_id}:news"}),
    ("/api/presence_stats", {"channel": "tenant:{tenant_id}:news"}),
    ("/api/history", {"channel": "tenant:{tenant_id}:news", "limit": -1}),
    ("/api/history", {"channel": "tenant:{tenant_id}:news", "since": {"offset": 0, "epoch": "other"}}),
    ("/api/unsubscribe", {"channel": "tenant:{tenant_id}:news", "user": "{user_id}"}),
    ("/api/disconnect", {"user": "{user_id}", "disconnect": {"code": 4000, "reason": "bye"}}),
]


def test_it_documents_the_success_answers_of_a_real_session_exactly(world):
    client = Client(SCHEMA.app)
    headers = {"Authorization": f"Bearer {world['owner'].token}"}
    for method, documented, url, body in SESSION:
        url = url.format(**world["real"])
        if body is not None:
            body = json.loads(json.dumps(body).replace("{tenant_id}", world["real"]["tenant_id"]))
        response = client.open(url, method=method, json=body, headers=headers)
        assert 200 <= response.status_code < 300, (method, url, response.status_code, response.get_data()[:300])
        SCHEMA[documented][method].validate_response(response)
    for path, body in HUB_SESSION:
        body = json.loads(json.dumps(body).replace("{tenant_id}", world["real"]["tenant_id"])
                          .replace("{user_id}", world["real"]["user_id"]))
        response = client.post(path, json=body, headers={"X-API-Key": HUB_KEY})
        assert response.status_code == 200, (path, response.status_code, response.get_data()[:300])
        SCHEMA[path]["POST"].validate_response(response)
