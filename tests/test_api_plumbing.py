"""API plumbing: one error shape for everything, request ids, OpenAPI schema and docs with offline
assets, the browsable API with a session login, and the public endpoints."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

from tests.support.actors import PASSWORD
from tests.support.assertions import assert_error, assert_ok


# --- one error shape ---------------------------------------------------------
def test_it_answers_an_unknown_path_with_the_error_shape(api):
    error = assert_error(api.get("/api/no-such-thing"), 404, "not_found")
    assert "/api/no-such-thing" in error["message"]
    assert_error(api.get("/nowhere"), 404, "not_found")


def test_it_answers_an_unknown_method_with_the_error_shape(api, owner):
    response = api.as_(owner).delete("/api/profile")
    error = assert_error(response, 405, "method_not_allowed")
    assert "DELETE" in error["message"]
    assert "GET" in response["Allow"]
    assert_error(api.as_(owner).post("/api/profile", {}), 405, "method_not_allowed")


def test_it_answers_an_unsupported_media_type_with_the_error_shape(api):
    response = api.post("/api/auth/login", "email=a", content_type="text/plain", format=None)
    error = assert_error(response, 415, "unsupported_media_type")
    assert "text/plain" in error["message"]


def test_it_answers_malformed_json_with_the_error_shape(api):
    response = api.post("/api/auth/login", '{"email": ', content_type="application/json", format=None)
    assert_error(response, 400, "parse_error")


def test_it_answers_a_validation_error_with_fields_and_a_readable_message(api):
    error = assert_error(api.post("/api/auth/register", {"email": "x"}), 400, "validation_error")
    assert {"email", "password", "tenant_name"} <= set(error["fields"])
    assert error["message"].startswith("Invalid input.")
    assert all(isinstance(messages, list) and messages for messages in error["fields"].values())


def test_it_answers_an_unacceptable_format_with_the_error_shape(api, owner):
    response = api.as_(owner).get("/api/profile", HTTP_ACCEPT="application/xml")
    assert_error(response, 406, "not_acceptable")


@pytest.mark.urls("tests.support.failing_urls")
def test_it_answers_throttling_with_the_error_shape_and_retry_after(api):
    from django.core.cache import cache

    cache.clear()
    assert_ok(api.get("/test/throttled"))
    response = api.get("/test/throttled")
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0


@pytest.mark.urls("tests.support.failing_urls")
@pytest.mark.parametrize("path", ["/test/broken-api", "/test/broken-page"])
def test_it_answers_a_bug_with_a_500_in_the_error_shape_and_no_details(path):
    client = Client(raise_request_exception=False)
    response = client.get(path, HTTP_X_REQUEST_ID="req-500")
    error = assert_error(response, 500, "internal_error")
    assert error["request_id"] == "req-500"
    assert "boom" not in response.content.decode() and "Traceback" not in response.content.decode()


def test_it_refuses_a_write_without_csrf_in_the_error_shape(owner):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/login", {"email": owner.email, "password": PASSWORD}).status_code == 403
    body = client.post("/login", {"email": owner.email, "password": PASSWORD}).json()
    assert body == {"error": {"code": "csrf_failed", "message": "CSRF verification failed: CSRF cookie not set. "
                                                                "Reload the page and try again."}}


# --- request id --------------------------------------------------------------
def test_it_echoes_a_callers_request_id(api):
    response = api.get("/health", HTTP_X_REQUEST_ID="abc-123.x:y_z")
    assert response["X-Request-ID"] == "abc-123.x:y_z"


@pytest.mark.parametrize("sent", [None, "has spaces", "x" * 200, "<script>"])
def test_it_generates_a_request_id_when_none_or_a_bad_one_is_sent(api, sent):
    extra = {"HTTP_X_REQUEST_ID": sent} if sent else {}
    response = api.get("/api/profile", **extra)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_it_gives_every_request_its_own_id(api):
    assert api.get("/health")["X-Request-ID"] != api.get("/health")["X-Request-ID"]


# --- schema and docs ---------------------------------------------------------
def test_it_serves_an_openapi_3_schema(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    for path in ("/api/auth/login", "/api/auth/register", "/api/auth/refresh", "/api/auth/logout", "/api/profile",
                 "/api/auth/api-keys", "/api/auth/api-keys/{key_id}", "/api/tenants", "/api/tenants/{tenant_id}",
                 "/api/tenants/{tenant_id}/users", "/api/tenants/{tenant_id}/users/{user_id}", "/api/audit",
                 "/api/tenants/{tenant_id}/metrics", "/api/tenants/{tenant_id}/billing"):
        assert path in schema["paths"], path
    schemes = schema["components"]["securitySchemes"]
    assert schemes["jwt"]["scheme"] == "bearer" and schemes["apiKey"]["name"] == "X-API-Key"


def test_it_generates_a_valid_schema_with_distinct_operation_ids(tmp_path):
    call_command("spectacular", "--validate", "--file", str(tmp_path / "schema.yaml"))
    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())
    operation_ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()
                     if isinstance(op, dict) and "operationId" in op]
    assert not [op for op in operation_ids if re.search(r"_\d+$", op)], "colliding operation ids got suffixes"


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_it_serves_the_docs_with_offline_assets(api, page):
    response = api.get(page)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets, html[:500]
    assert not re.search(r'(?:src|href)="https?://', html)  # nothing from a CDN
    for asset in assets:
        fetched = api.get(asset)
        assert fetched.status_code == 200, asset
        assert b"".join(fetched.streaming_content) if fetched.streaming else fetched.content, asset


# --- the browsable API -------------------------------------------------------
def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_it_lets_a_person_log_in_browse_and_submit_a_form(owner):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/api-auth/login/?next=/api/tenants")
    assert page.status_code == 200
    response = browser.post("/api-auth/login/?next=/api/tenants", {
        "email": owner.email, "password": PASSWORD, "next": "/api/tenants",
        "csrfmiddlewaretoken": csrf_token(page.content.decode())})
    assert response.status_code == 302 and response["Location"] == "/api/tenants"

    listing = browser.get("/api/tenants", HTTP_ACCEPT="text/html")
    assert listing.status_code == 200 and listing["Content-Type"].startswith("text/html")
    assert "Acme Corp" in listing.content.decode()

    users_url = f"/api/tenants/{owner.tenant_id}/users"
    form_page = browser.get(users_url, HTTP_ACCEPT="text/html").content.decode()
    assert "<form" in form_page and 'name="email"' in form_page
    created = browser.post(users_url, {"email": "formed@acme.test", "role": "viewer",
                                       "csrfmiddlewaretoken": csrf_token(form_page)}, HTTP_ACCEPT="text/html")
    assert created.status_code == 201, created.content[:300]
    api_view = browser.get(users_url, HTTP_ACCEPT="application/json").json()
    assert "formed@acme.test" in {u["email"] for u in api_view["items"]}


def test_it_refuses_a_session_write_without_the_csrf_token(owner):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login")
    browser.post("/login", {"email": owner.email, "password": PASSWORD,
                            "csrfmiddlewaretoken": csrf_token(page.content.decode())})
    response = browser.post(f"/api/tenants/{owner.tenant_id}/users", {"email": "nocsrf@acme.test"},
                            content_type="application/json")
    # The exact body: the message once, as text (it used to carry the failure view's JSON, encoded twice).
    assert response.json() == {"error": {"code": "csrf_failed", "message": "CSRF verification failed: CSRF token "
                                         "missing. Reload the page and try again."}}


def test_it_shows_the_login_form_again_with_an_error_for_a_wrong_password(owner):
    browser = Client()
    response = browser.post("/login", {"email": owner.email, "password": "wrong"})
    assert response.status_code == 401
    assert "Email or password is wrong." in response.content.decode()


def test_it_never_redirects_a_login_to_another_site(owner):
    browser = Client()
    response = browser.post("/login", {"email": owner.email, "password": PASSWORD, "next": "https://evil.test/"})
    assert response.status_code == 302 and response["Location"] == "/api/"


def test_it_logs_a_session_out(owner):
    browser = Client()
    browser.post("/login", {"email": owner.email, "password": PASSWORD})
    assert browser.get("/api/profile", HTTP_ACCEPT="application/json").status_code == 200
    assert browser.post("/logout").status_code == 302
    assert_error(browser.get("/api/profile", HTTP_ACCEPT="application/json"), 401, "not_authenticated")


# --- public endpoints --------------------------------------------------------
def test_it_answers_the_public_endpoints(api, owner):
    root = assert_ok(api.get("/"))
    assert root["status"] == "ok" and root["version"]
    assert assert_ok(api.get("/health")) == {"status": "ok"}
    ready = assert_ok(api.get("/api/status/health"))
    assert ready["status"] == "ok" and ready["checks"]["redis"]["ok"] is True
    metrics = api.get("/metrics")
    assert metrics.status_code == 200 and metrics["Content-Type"].startswith("text/plain")
    assert "veloflux_tenants 1" in metrics.content.decode()


def test_it_answers_a_too_large_body_with_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    error = assert_error(api.post("/api/auth/login", {"email": "a@b.test", "password": "x" * 2000}), 413,
                         "payload_too_large")
    assert "1000 bytes" in error["message"]
    response = Client().post("/login", {"email": "a@b.test", "password": "x" * 2000})
    assert_error(response, 413, "payload_too_large")


def test_it_lists_where_to_go_at_the_api_root(api, owner):
    links = assert_ok(api.get("/api/"))
    assert links["tenants"].endswith("/api/tenants") and links["docs"].endswith("/api/docs/")
    for name, link in links.items():
        if name.startswith("auth-"):
            continue  # POST-only endpoints
        assert api.as_(owner).get(link).status_code == 200, name


def test_it_lands_on_a_browsable_page_after_logging_in(owner):
    browser = Client()
    response = browser.post("/login", {"email": owner.email, "password": PASSWORD}, follow=True,
                            HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
