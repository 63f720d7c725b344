"""The browsable API renders every balancer endpoint, and the OpenAPI schema lists them."""

from __future__ import annotations

from tests.balancer.helpers import backend, pool, route


def test_it_renders_every_endpoint_in_the_browsable_api(api, member):
    pool(api, member)
    be = backend(api, member)
    rt = route(api, member)
    paths = ["/api/pools", "/api/pools/web", "/api/backends", f"/api/backends/{be['id']}", "/api/routes",
             f"/api/routes/{rt['id']}", "/api/bulk", "/api/config", "/api/config/validate", "/api/config/import",
             "/api/config/versions", "/api/config/versions/1", "/api/config/versions/1/rollback", "/api/reload",
             "/api/status", "/api/metrics", "/api/analytics"]
    for path in paths:
        response = api.as_(member).get(path, HTTP_ACCEPT="text/html")
        assert response.status_code in (200, 405), (path, response.status_code)
        assert response["Content-Type"].startswith("text/html"), path


def test_it_lists_the_balancer_paths_in_the_schema(api, member):
    schema = api.as_(member).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in ("/api/pools", "/api/pools/{name}", "/api/backends/{backend_id}", "/api/bulk", "/api/config/import",
                 "/api/config/versions/{version}/rollback", "/api/backup/restore", "/api/analytics"):
        assert path in schema["paths"], path
