"""The OpenAPI schema at /api/schema/ is valid, warning-free and exact about lists and error answers."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

LISTS = ["/api/pools", "/api/backends", "/api/routes", "/api/tenants", "/api/tenants/{tenant_id}/users",
         "/api/auth/api-keys", "/api/config/versions", "/api/tenants/{tenant_id}/alerts", "/api/domains",
         "/api/tenants/{tenant_id}/invitations", "/api/profile/invitations"]


@pytest.fixture(scope="module")
def document() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def test_it_validates_without_a_single_warning(tmp_path):
    # --fail-on-warn: a view whose answer spectacular cannot resolve fails here, not in production docs.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


@pytest.mark.parametrize("path", LISTS)
def test_it_documents_lists_as_the_paginated_envelope(document, path):
    operation = document["paths"][path]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    envelope = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert envelope["type"] == "object"
    assert set(envelope["required"]) == {"items", "total_count", "page", "page_size", "has_more"}
    assert envelope["properties"]["items"]["type"] == "array"
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} >= {"page", "limit"}


def test_it_documents_the_error_envelope_on_every_operation(document):
    for path, method, operation in _operations(document):
        codes = set(operation["responses"])
        assert "503" in codes, (method, path)
        if operation.get("security") == [{"hubApiKey": []}]:
            # The platform's hub key (Centrifugo's server API): refused without it, no tenant or object behind it.
            assert "401" in codes and not {"403", "404", "409"} & codes, (method, path, codes)
        elif operation.get("security") != [{}]:
            assert {"401", "403", "404"} <= codes, (method, path, codes)
        if method in ("POST", "PUT", "PATCH"):
            assert {"400", "413", "415"} <= codes, (method, path, codes)
        error = operation["responses"]["503"]["content"]["application/json"]["schema"]["$ref"]
        assert error.endswith("/Error"), (method, path, error)
        for code, response in operation["responses"].items():  # every HTTP error answer: the one envelope
            if code[0] in "45":
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in ("Error", "LoginError"), (method, path, code, ref)


def test_it_documents_creates_as_201_and_never_the_request_body_as_the_answer(document):
    for path in ("/api/pools", "/api/backends", "/api/routes", "/api/auth/api-keys", "/api/tenants"):
        assert "201" in document["paths"][path]["post"]["responses"], path
    for path, method, operation in _operations(document):
        for code, response in operation["responses"].items():
            ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
            assert not ref.endswith("Request"), (method, path, code, ref)


def _component(document: dict, ref: str) -> dict:
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_it_documents_the_login_tenant_choice(document):
    """400 tenant_required carries error.tenants: [{id, name}] (the tenants to log in again with)."""
    answer = document["paths"]["/api/auth/login"]["post"]["responses"]["400"]
    envelope = _component(document, answer["content"]["application/json"]["schema"]["$ref"])
    detail = _component(document, envelope["properties"]["error"]["$ref"])
    assert {"code", "message"} <= set(detail["required"])
    choice = _component(document, detail["properties"]["tenants"]["items"]["$ref"])
    assert set(choice["required"]) == {"id", "name"}
    assert "tenant_required" in answer["description"]


def test_it_adds_the_envelope_under_an_operations_own_error_descriptions(document):
    """A view says why (error(description)), or adds a status (410); the envelope is the one Error."""
    responses = document["paths"]["/api/invitations/{token}/accept"]["post"]["responses"]
    assert responses["410"]["description"] == "the invitation expired"
    assert "wrong_account" in responses["403"]["description"]
    for code in ("400", "401", "403", "404", "409", "410", "503"):
        assert responses[code]["content"]["application/json"]["schema"]["$ref"].endswith("/Error"), code
    # Our HTTP error envelope is one component (LoginError is it with error.tenants). Centrifugo's protocol is
    # documented as Centrifugo defines it, under its name: its reply's in-200 error (CentrifugoReplyError) is a
    # command's outcome, not an HTTP error answer.
    schemas = document["components"]["schemas"]
    assert not [name for name in schemas if name.endswith("Error") and name not in ("Error", "LoginError")
                and not name.startswith("Centrifugo")]
