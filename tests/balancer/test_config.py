"""Configuration: effective config, validate with paths, export/import (dry run, diff), versions, rollback."""

from __future__ import annotations

import json

import yaml

from tests.balancer.helpers import audit_actions, backend, error, pool, route, routing_version
from tests.support.domains import prove_by_dns

VELOFLUX_YAML = """
cluster:
  enabled: false
global:
  bind_address: "0.0.0.0:80"
  metrics_address: "0.0.0.0:8080"
  health_check:
    interval: 10s
    timeout: 5s
    retries: 3
pools:
  - name: web-servers
    algorithm: round_robin
    sticky_sessions: true
    health_check:
      path: /health
      interval: 30s
      timeout: 5s
      expected_status: 200
    backends:
      - address: "backend1:80"
        weight: 100
      - address: "backend2:80"
        weight: 200
        health_check:
          path: /status
routes:
  - host: example.com
    pool: web-servers
    path_prefix: /
  - host: "*.example.com"
    pool: web-servers
    path_prefix: /api
"""


def small_setup(api, actor):
    pool(api, actor, health_check={"path": "/ping"})
    backend(api, actor, "10.0.0.2:80", weight=20)
    backend(api, actor, "10.0.0.1:80", region="eu")
    route(api, actor, "b.example.com")
    route(api, actor, "a.example.com", path_prefix="/v1")


def test_it_returns_the_effective_config(api, member, viewer):
    small_setup(api, member)
    config = api.as_(viewer).get("/api/config").json()
    assert set(config) == {"global", "pools", "routes", "config_version", "routing_version"}
    assert [b["address"] for b in config["pools"][0]["backends"]] == ["10.0.0.1:80", "10.0.0.2:80"]
    assert [(r["host"], r["path_prefix"]) for r in config["routes"]] == [("a.example.com", "/v1"),
                                                                          ("b.example.com", "/")]
    assert config["config_version"] == 5


def test_it_exports_json_and_yaml(api, member):
    small_setup(api, member)
    as_json = api.as_(member).get("/api/config/export?format=json")
    assert as_json.status_code == 200 and as_json["Content-Type"].startswith("application/json")
    as_yaml = api.as_(member).get("/api/config/export?format=yaml")
    assert as_yaml["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.content) == json.loads(as_json.content)
    assert api.as_(member).get("/api/config/export?format=xml").status_code == 400


def test_it_validates_a_document_reporting_every_error_with_its_path(api, member, viewer):
    document = {
        "pools": [
            {"name": "web", "algorithm": "best", "backends": [{"address": "x"}, {"address": "10.0.0.1:80",
                                                                                 "weight": 0}]},
            {"name": "web"},
        ],
        "routes": [{"host": "a.example.com", "pool": "ghost"}, {"host": "bad host", "pool": "web"}],
        "extras": 1,
    }
    result = api.as_(viewer).post("/api/config/validate", document).json()
    assert result["valid"] is False
    paths = {e["path"] for e in result["errors"]}
    assert {"pools[0].algorithm", "pools[0].backends[0].address", "pools[0].backends[1].weight", "pools[1].name",
            "routes[0].pool", "routes[1].host", "extras"} <= paths
    good = api.as_(viewer).post("/api/config/validate", {"pools": [{"name": "web"}], "routes": []}).json()
    assert good["valid"] is True and good["summary"] == {"pools": 1, "backends": 0, "routes": 0}


def test_it_validates_hosts_held_by_other_tenants(api, member, outsider, dns_zone):
    prove_by_dns(api, outsider, dns_zone, "taken.example.com")
    pool(api, outsider, "theirs")
    route(api, outsider, "taken.example.com", "theirs")
    result = api.as_(member).post("/api/config/validate", {"pools": [{"name": "web"}], "routes": [
        {"host": "taken.example.com", "pool": "web"}]}).json()
    assert result["valid"] is False and result["errors"][0]["path"] == "routes[0].host"


def test_it_imports_the_veloflux_yaml_layout(api, member, tenant_a):
    response = api.as_(member).post("/api/config/import", VELOFLUX_YAML, content_type="application/yaml",
                                    format=None)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["applied"] is True and body["config_version"] == 1
    assert set(body["ignored"]) == {"cluster", "global.bind_address", "global.metrics_address"}
    assert len(body["diff"]["backends"]["create"]) == 2
    config = api.as_(member).get("/api/config").json()
    assert config["global"] == {"health_check": {"interval": 10.0, "timeout": 5.0, "fall": 3}}
    web = config["pools"][0]
    assert web["sticky_sessions"] is True and web["health_check"]["expected_status"] == [200]
    assert [b["weight"] for b in web["backends"]] == [100, 200]
    assert [r["host"] for r in config["routes"]] == ["*.example.com", "example.com"]
    assert "config.global" in audit_actions(tenant_a["id"])


def test_it_accepts_a_document_as_text_content(api, member):
    response = api.as_(member).post("/api/config/import", {"content": VELOFLUX_YAML})
    assert response.status_code == 200
    broken = api.as_(member).post("/api/config/import", {"content": "pools: [unclosed"})
    assert broken.status_code == 400 and error(broken)["code"] == "invalid_config"


def test_it_shows_the_diff_on_a_dry_run_and_changes_nothing(api, member):
    small_setup(api, member)
    version = routing_version()
    document = api.as_(member).get("/api/config/export").json()
    document["pools"][0]["algorithm"] = "least_conn"
    document["pools"][0]["backends"] = [*document["pools"][0]["backends"][:1], {"address": "10.0.0.3:80"}]
    document["routes"] = document["routes"][:1]
    dry = api.as_(member).post("/api/config/import?dry_run=true", document).json()
    assert dry["dry_run"] is True and dry["applied"] is False
    diff = dry["diff"]
    assert diff["pools"]["update"] == [{"name": "web", "fields": {"algorithm": ["round_robin", "least_conn"]}}]
    assert [b["name"] for b in diff["backends"]["create"]] == ["web/10.0.0.3:80"]
    assert [b["name"] for b in diff["backends"]["delete"]] == ["web/10.0.0.2:80"]
    assert [r["name"] for r in diff["routes"]["delete"]] == ["b.example.com/"]
    assert routing_version() == version
    assert api.as_(member).get("/api/pools/web").json()["algorithm"] == "round_robin"
    applied = api.as_(member).post("/api/config/import", document).json()
    assert applied["applied"] is True and applied["diff"] == diff
    assert api.as_(member).get("/api/backends").json()["total_count"] == 2


def test_it_keeps_ids_of_objects_an_import_leaves_in_place(api, member):
    small_setup(api, member)
    before = {b["address"]: b["id"] for b in api.as_(member).get("/api/backends").json()["items"]}
    document = api.as_(member).get("/api/config/export").json()
    result = api.as_(member).post("/api/config/import", document).json()
    assert result["applied"] is False and result["diff"]["total"] == 0
    after = {b["address"]: b["id"] for b in api.as_(member).get("/api/backends").json()["items"]}
    assert before == after


def test_it_refuses_an_invalid_import_without_touching_anything(api, member):
    small_setup(api, member)
    version = routing_version()
    response = api.as_(member).post("/api/config/import", {"routes": [], "pools": [{"name": "web", "backends": [
        {"address": "10.0.0.1:80", "health_check": {"interval": "1s", "timeout": "2s"}}]}]})
    assert response.status_code == 400
    assert "pools[0].backends[0].health_check.timeout" in error(response)["fields"]
    assert routing_version() == version and api.as_(member).get("/api/routes").json()["total_count"] == 2


def test_it_lists_versions_and_rolls_back(api, member, tenant_a):
    pool(api, member)
    api.as_(member).put("/api/pools/web", {"algorithm": "random"})
    backend(api, member)
    versions = api.as_(member).get("/api/config/versions").json()
    assert [v["version"] for v in versions["items"]] == [3, 2, 1]
    assert versions["items"][0]["action"] == "backend.create" and versions["items"][0]["summary"]["backends"] == 1
    one = api.as_(member).get("/api/config/versions/1").json()
    assert one["document"]["pools"][0]["algorithm"] == "round_robin"
    rolled = api.as_(member).post("/api/config/versions/1/rollback")
    assert rolled.status_code == 200 and rolled.json()["config_version"] == 4 and rolled.json()["rolled_back_to"] == 1
    assert api.as_(member).get("/api/pools/web").json()["algorithm"] == "round_robin"
    assert api.as_(member).get("/api/backends").json()["total_count"] == 0
    assert api.as_(member).post("/api/config/versions/99/rollback").status_code == 404
    assert api.as_(member).get("/api/config/versions/99").status_code == 404
    assert api.as_(tenant_a["viewer"]).post("/api/config/versions/1/rollback").status_code == 403


def test_it_replays_an_import_sent_twice_with_one_idempotency_key(api, member):
    client = api.as_(member).with_headers(HTTP_IDEMPOTENCY_KEY="import-7")
    document = {"pools": [{"name": "web", "backends": [{"address": "10.0.0.1:80"}]}], "routes": []}
    first = client.post("/api/config/import", document)
    # Someone changes the config in between: the replay must not undo it.
    api.as_(member).put("/api/pools/web", {"algorithm": "random"})
    again = client.post("/api/config/import", document)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert api.as_(member).get("/api/pools/web").json()["algorithm"] == "random"


def test_it_refuses_a_document_missing_a_section_instead_of_deleting_everything(api, member):
    pool(api, member)
    for body in ({}, {"pools": []}, {"global": {}}):
        response = api.as_(member).post("/api/config/import", body)
        assert response.status_code == 400
    assert "pools: [] to have none" in error(api.as_(member).post("/api/config/import", {}))["fields"]["pools"][0]
    assert api.as_(member).get("/api/pools").json()["total_count"] == 1


def test_it_enforces_roles_on_configuration(api, viewer, member):
    assert api.as_(viewer).get("/api/config").status_code == 200
    assert api.as_(viewer).get("/api/config/export").status_code == 200
    assert api.as_(viewer).post("/api/config/import", {"pools": []}).status_code == 403
    assert api.as_(viewer).post("/api/config/validate", {"pools": []}).status_code == 200
