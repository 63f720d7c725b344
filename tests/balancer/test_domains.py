"""Host ownership and domain verification (issue 12, point 1), through the real API and real Redis.

A host belongs to one tenant across every path prefix; a tenant proves control of a domain (DNS TXT through
a local authoritative DNS server, or an HTTP token from a local web server) before the proxy routes it; the
platform name <slug>.<VF_PLATFORM_DOMAIN> is the tenant's from the start.
"""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core.management import call_command

from balancer import domains
from balancer.tasks import recheck_pending_domains
from tenants.store import UserStore
from tests.balancer.helpers import audit_actions, backend, error, fragment, pool, route, routing_version
from tests.support.domains import claim, prove_by_dns
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis


def site(api, actor, host: str, prefix: str = "/", address: str = "10.0.0.1:8080") -> dict:
    if api.as_(actor).get("/api/pools/web").status_code == 404:
        pool(api, actor)
        backend(api, actor, address)
    return route(api, actor, host, path_prefix=prefix)


def served(tenant_id: str) -> list[tuple[str, str]]:
    return [(r["host"], r["path_prefix"]) for r in (fragment(tenant_id) or {}).get("routes", [])]


# --- the reproducers of the issue ------------------------------------------------------------
def test_it_refuses_a_route_on_a_path_of_a_host_another_tenant_holds(api, member, outsider, dns_zone):
    prove_by_dns(api, outsider, dns_zone, "b.example.test")
    site(api, outsider, "b.example.test")
    pool(api, member)
    response = api.as_(member).post("/api/routes", {"host": "b.example.test", "path_prefix": "/hijack",
                                                    "pool": "web"})
    assert response.status_code == 409, response.json()
    assert error(response)["code"] == "host_taken"
    message = error(response)["message"]
    assert "belongs to another tenant" in message and "POST /api/domains" in message
    assert api.as_(member).get("/api/routes").json()["total_count"] == 0
    assert served(outsider.tenant_id) == [("b.example.test", "/")]
    assert not served(member.tenant_id)


def test_it_refuses_moving_a_route_onto_a_host_another_tenant_holds(api, member, outsider, dns_zone):
    prove_by_dns(api, outsider, dns_zone, "b.example.test")
    mine = site(api, member, "mine.example.test")
    response = api.as_(member).put(f"/api/routes/{mine['id']}", {"host": "b.example.test"})
    assert response.status_code == 409 and error(response)["code"] == "host_taken"
    bulk = api.as_(member).post("/api/bulk", {"operations": [
        {"op": "create", "type": "route", "data": {"host": "b.example.test", "path_prefix": "/x", "pool": "web"}}]})
    assert bulk.status_code == 409, bulk.json()


def test_it_stores_a_wildcard_route_without_proof_but_does_not_serve_it(api, member):
    created = site(api, member, "*.example.test")
    assert created["status"] == "pending_verification"
    assert "not a verified domain" in created["status_reason"]
    assert api.as_(member).get("/api/routes").json()["items"][0]["status"] == "pending_verification"
    assert fragment(member.tenant_id)["routes"] == []


@pytest.mark.parametrize("host", ["*.com", "*.co.uk", "*.test", "com", "co.uk"])
def test_it_refuses_wildcards_and_names_at_a_public_suffix(api, member, host):
    response = api.as_(member).post("/api/domains", {"host": host})
    assert response.status_code == 409 and error(response)["code"] == "host_reserved", response.json()
    pool(api, member)
    assert api.as_(member).post("/api/routes", {"host": host, "pool": "web"}).status_code == 409


@pytest.mark.parametrize("host", ["outsider-inc.localhost", "*.localhost", "localhost", "x.acme-corp.localhost",
                                  "*.acme-corp.localhost"])
def test_it_refuses_names_under_the_platform_domain_but_the_tenants_own(api, member, outsider, host):
    response = api.as_(member).post("/api/domains", {"host": host})
    assert response.status_code == 409 and error(response)["code"] == "host_reserved", response.json()
    pool(api, member)
    assert api.as_(member).post("/api/routes", {"host": host, "pool": "web"}).status_code == 409


def test_it_serves_the_platform_name_from_the_start(api, member):
    created = site(api, member, "acme-corp.localhost")
    assert created["status"] == "active" and created["status_reason"] is None
    assert served(member.tenant_id) == [("acme-corp.localhost", "/")]
    listed = api.as_(member).get("/api/domains").json()
    assert listed["items"][0] == {**listed["items"][0], "host": "acme-corp.localhost", "status": "verified",
                                  "method": "platform"}


# --- proving control -------------------------------------------------------------------------
def test_it_verifies_a_domain_by_a_dns_txt_record_and_serves_its_routes_at_once(api, member, dns_zone):
    pending = site(api, member, "shop.example.test")
    assert pending["status"] == "pending_verification" and not served(member.tenant_id)
    claimed = api.as_(member).post("/api/domains", {"host": "shop.example.test"})
    assert claimed.status_code == 201
    body = claimed.json()
    assert body["status"] == "pending"
    assert body["verification"]["dns_txt_name"] == "_veloflux-challenge.shop.example.test"
    assert body["verification"]["http_path"] == f"/.well-known/veloflux-challenge/{body['verification']['http_body']}"
    version = routing_version()
    dns_zone.txt("_veloflux-challenge.shop.example.test", body["verification"]["dns_txt_value"])
    verified = api.as_(member).post("/api/domains/shop.example.test/verify")
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    assert verified.json()["method"] == "dns_txt" and dns_zone.queries >= 1
    assert routing_version() == version + 1
    assert served(member.tenant_id) == [("shop.example.test", "/")]
    assert api.as_(member).get(f"/api/routes/{pending['id']}").json()["status"] == "active"
    assert get_redis().get(keys.host_claim("shop.example.test")) == member.tenant_id
    assert audit_actions(member.tenant_id)[-2:] == ["domain.claim", "domain.verify"]


def test_it_keeps_a_domain_pending_while_no_proof_is_found(api, member, dns_zone):
    claim(api, member, "shop.example.test")
    dns_zone.txt("_veloflux-challenge.shop.example.test", "someone-elses-token")
    answer = api.as_(member).post("/api/domains/shop.example.test/verify").json()
    assert answer["status"] == "pending"
    assert "does not hold the token" in answer["checks"]["dns_txt"]
    assert "could not connect" in answer["checks"]["http"] or "has no address" in answer["checks"]["http"]
    assert get_redis().get(keys.host_claim("shop.example.test")) is None


def test_it_verifies_a_domain_by_an_http_token(api, member, dns_zone, token_site):
    claimed = claim(api, member, "web.example.test")
    dns_zone.a("web.example.test", "127.0.0.1")
    token_site.pages[claimed["verification"]["http_path"]] = claimed["verification"]["http_body"]
    answer = api.as_(member).post("/api/domains/web.example.test/verify").json()
    assert answer["status"] == "verified" and answer["method"] == "http", answer
    assert token_site.requests[-1][0].startswith("web.example.test")


def test_it_proves_a_wildcard_on_its_base_name(api, member, dns_zone):
    claimed = claim(api, member, "*.example.test")
    assert claimed["wildcard"] and claimed["verification"]["dns_txt_name"] == "_veloflux-challenge.example.test"
    prove_by_dns(api, member, dns_zone, "*.example.test")
    assert site(api, member, "*.example.test")["status"] == "active"
    assert served(member.tenant_id) == [("*.example.test", "/")]


def test_it_lets_whoever_proves_first_win_and_voids_the_others_claim(api, member, outsider, dns_zone):
    mine = claim(api, member, "x.example.test")
    prove_by_dns(api, outsider, dns_zone, "x.example.test")
    dns_zone.txt("_veloflux-challenge.x.example.test", mine["verification"]["dns_txt_value"])
    response = api.as_(member).post("/api/domains/x.example.test/verify")
    assert response.status_code == 409 and error(response)["code"] == "host_taken"
    shown = api.as_(member).get("/api/domains/x.example.test").json()
    assert shown["status"] == "pending" and "verified by another tenant" in shown["reason"]
    assert get_redis().get(keys.host_claim("x.example.test")) == outsider.tenant_id


def test_it_does_not_let_a_pending_claim_block_another_tenant(api, member, outsider, dns_zone):
    claim(api, member, "x.example.test")
    site(api, member, "x.example.test")  # a pending route does not hold the host either
    prove_by_dns(api, outsider, dns_zone, "x.example.test")
    assert site(api, outsider, "x.example.test")["status"] == "active"
    routes = api.as_(member).get("/api/routes").json()["items"]
    assert routes[0]["status"] == "pending_verification" and "another tenant" in routes[0]["status_reason"]


# --- releasing -----------------------------------------------------------------------------
def test_it_stops_serving_the_routes_of_a_released_domain(api, member, outsider, dns_zone):
    prove_by_dns(api, member, dns_zone, "shop.example.test")
    site(api, member, "shop.example.test")
    assert served(member.tenant_id)
    assert api.as_(member).delete("/api/domains/shop.example.test").status_code == 204
    assert not served(member.tenant_id)
    assert api.as_(member).get("/api/routes").json()["items"][0]["status"] == "pending_verification"
    assert get_redis().get(keys.host_claim("shop.example.test")) is None
    assert "domain.release" in audit_actions(member.tenant_id)
    prove_by_dns(api, outsider, dns_zone, "shop.example.test")  # free for anyone who proves it


def test_it_lets_a_platform_admin_release_any_claim_audited_twice(api, member, platform_admin, dns_zone):
    prove_by_dns(api, member, dns_zone, "shop.example.test")
    site(api, member, "shop.example.test")
    as_admin = api.as_(platform_admin, tenant_header=member.tenant_id)
    assert as_admin.delete("/api/domains/shop.example.test").status_code == 204
    assert not served(member.tenant_id)
    assert audit_actions(member.tenant_id)[-1] == "domain.release"
    platform = get_redis().xrange(keys.audit_stream(None))
    assert platform[-1][1]["action"] == "domain.release"
    assert platform[-1][1]["object_id"] == f"{member.tenant_id}/shop.example.test"
    assert platform[-1][1]["actor_id"] == platform_admin.id


def test_it_refuses_releasing_the_platform_name(api, owner):
    response = api.as_(owner).delete("/api/domains/acme-corp.localhost")
    assert response.status_code == 409 and error(response)["code"] == "platform_name"


# --- roles and isolation -------------------------------------------------------------------
def test_it_lets_viewers_read_and_members_write_domains(api, viewer, member):
    assert api.as_(viewer).get("/api/domains").status_code == 200
    assert api.as_(viewer).post("/api/domains", {"host": "shop.example.test"}).status_code == 403
    assert api.as_(member).post("/api/domains", {"host": "shop.example.test"}).status_code == 201
    assert api.as_(member).post("/api/domains", {"host": "shop.example.test"}).status_code == 200
    assert api.as_(viewer).delete("/api/domains/shop.example.test").status_code == 403
    assert api.as_(None).get("/api/domains").status_code == 401


def test_it_answers_bad_domain_input_with_400(api, member):
    for body in ({"host": "exa mple.com"}, {"host": "http://example.com"}, {"host": ""}, {}, ["x"],
                 {"host": "example.com", "extra": 1}, {"host": "a.*.example.com"}):
        response = api.as_(member).post("/api/domains", body)
        assert response.status_code == 400 and error(response)["code"] == "validation_error", (body, response.json())
    assert api.as_(member).get("/api/domains/nothing.example.test").status_code == 404
    assert api.as_(member).post("/api/domains/nothing.example.test/verify").status_code == 404
    assert api.as_(member).delete("/api/domains/nothing.example.test").status_code == 404


def test_it_hides_and_protects_tenant_a_domains_from_tenant_b(api, member, outsider, dns_zone):
    prove_by_dns(api, member, dns_zone, "shop.example.test")
    claim(api, member, "pending.example.test")
    listed = api.as_(outsider).get("/api/domains").json()
    assert [d["host"] for d in listed["items"]] == ["outsider-inc.localhost"]
    for host in ("shop.example.test", "pending.example.test"):
        assert api.as_(outsider).get(f"/api/domains/{host}").status_code == 404
        assert api.as_(outsider).post(f"/api/domains/{host}/verify").status_code == 404
        assert api.as_(outsider).delete(f"/api/domains/{host}").status_code == 404
    assert api.as_(member).get("/api/domains/shop.example.test").json()["status"] == "verified"
    assert api.as_(member).get("/api/domains/pending.example.test").json()["status"] == "pending"
    assert get_redis().get(keys.host_claim("shop.example.test")) == member.tenant_id


# --- expiry and the periodic re-check --------------------------------------------------------
def test_it_verifies_pending_claims_in_the_periodic_recheck_and_forgets_expired_ones(api, member, outsider,
                                                                                     dns_zone, settings):
    claimed = claim(api, member, "later.example.test")
    site(api, member, "later.example.test")
    assert recheck_pending_domains() == {"checked": 1, "verified": 0, "expired": 0}
    dns_zone.txt("_veloflux-challenge.later.example.test", claimed["verification"]["dns_txt_value"])
    assert recheck_pending_domains() == {"checked": 1, "verified": 1, "expired": 0}
    assert served(member.tenant_id) == [("later.example.test", "/")]
    settings.DOMAIN_PENDING_TTL = -1.0
    claim(api, outsider, "stale.example.test")
    assert recheck_pending_domains() == {"checked": 0, "verified": 0, "expired": 1}
    assert api.as_(outsider).get("/api/domains/stale.example.test").status_code == 404


def test_it_refuses_verifying_an_expired_claim(api, member, dns_zone, settings):
    settings.DOMAIN_PENDING_TTL = -1.0
    claimed = claim(api, member, "stale.example.test")
    dns_zone.txt("_veloflux-challenge.stale.example.test", claimed["verification"]["dns_txt_value"])
    response = api.as_(member).post("/api/domains/stale.example.test/verify")
    assert response.status_code == 409 and error(response)["code"] == "claim_expired"


# --- migration of routes stored before host claims -------------------------------------------
def _as_before_host_claims(api, actors, *routes: dict) -> None:
    """What the old code stored: a claim per host + prefix, and fragments serving every route (no ``hosts``)."""
    for r in routes:
        get_redis().set(keys.route_claim(r["host"], r["path_prefix"]), r["id"])
    for actor in actors:
        items = api.as_(actor).get("/api/routes").json()["items"]
        old = {**fragment(actor.tenant_id), "routes": [
            {name: r[name] for name in ("id", "host", "path_prefix", "pool", "max_body_bytes")} for r in items]}
        old.pop("hosts")
        get_redis().hset(keys.routing_table(), actor.tenant_id, json.dumps(old))


def test_it_migrates_each_stored_host_to_the_tenant_that_routed_it_first(api, member, outsider):
    first = site(api, member, "shared.example.test")
    time.sleep(0.01)
    later = site(api, outsider, "shared.example.test", prefix="/hijack")
    only = site(api, outsider, "only.example.test")
    _as_before_host_claims(api, (member, outsider), first, later, only)
    assert ("shared.example.test", "/hijack") in served(outsider.tenant_id)  # the hijack the old code allowed
    call_command("migrate_host_claims", stdout=io.StringIO())
    assert get_redis().get(keys.host_claim("shared.example.test")) == member.tenant_id
    assert get_redis().get(keys.host_claim("only.example.test")) == outsider.tenant_id
    assert served(member.tenant_id) == [("shared.example.test", "/")]
    assert served(outsider.tenant_id) == [("only.example.test", "/")]
    theirs = {r["host"]: r for r in api.as_(outsider).get("/api/routes").json()["items"]}
    assert theirs["shared.example.test"]["status"] == "pending_verification"
    assert "another tenant" in theirs["shared.example.test"]["status_reason"]
    assert api.as_(member).get("/api/domains/shared.example.test").json()["method"] == "migrated"
    assert get_redis().keys("vf:route:claim:*") == []
    version = routing_version()
    call_command("migrate_host_claims", stdout=io.StringIO())  # idempotent: nothing left to do
    assert routing_version() == version
    assert get_redis().get(keys.host_claim("shared.example.test")) == member.tenant_id


def test_it_keeps_route_statuses_consistent_with_the_fragment(api, member, dns_zone):
    site(api, member, "a.example.test")
    site(api, member, "acme-corp.localhost")
    prove_by_dns(api, member, dns_zone, "b.example.test")
    site(api, member, "b.example.test")
    snapshot_statuses = {r["host"]: r["status"] for r in api.as_(member).get("/api/routes").json()["items"]}
    assert {h for h, s in snapshot_statuses.items() if s == "active"} == {h for h, _ in served(member.tenant_id)}
    assert domains.list_domains(member.tenant_id)[0]["host"] == "acme-corp.localhost"


def test_it_serves_the_demo_route_of_bin_up_at_once():
    call_command("migrate_host_claims", stdout=io.StringIO())
    call_command("bootstrap_demo", backend_ports="9101,9102", stdout=io.StringIO())
    demo = UserStore().find_by_email("demo@veloflux.local")
    tenant_id = min(demo.memberships)
    assert served(tenant_id) == [("demo.localhost", "/")]
    assert fragment(tenant_id)["hosts"] == ["demo.localhost"]


@pytest.mark.parametrize("address", ["169.254.169.254", "0.0.0.0", "224.0.0.1"])
def test_it_never_fetches_an_http_token_from_metadata_or_unspecified_addresses(api, member, dns_zone, token_site,
                                                                              address):
    claimed = claim(api, member, "meta.example.test")
    dns_zone.a("meta.example.test", address)
    answer = api.as_(member).post("/api/domains/meta.example.test/verify").json()
    assert answer["status"] == "pending" and "will not fetch" in answer["checks"]["http"]
    assert claimed["verification"]["http_path"] not in [path for _, path in token_site.requests]


def test_it_never_fetches_an_http_token_from_loopback_unless_the_platform_allows_it(api, member, dns_zone,
                                                                                    token_site, settings):
    # The token site listens on 127.0.0.1: with the strict default policy (no allowed networks) a claimed name
    # pointed at this machine is never fetched, whatever listens there (Redis, the admin port, the token).
    settings.BACKEND_ALLOWED_NETWORKS = []
    claimed = claim(api, member, "loop.example.test")
    dns_zone.a("loop.example.test", "127.0.0.1")
    dns_zone.txt(claimed["verification"]["dns_txt_name"], "not-the-token")
    answer = api.as_(member).post("/api/domains/loop.example.test/verify").json()
    assert answer["status"] == "pending" and "loopback" in answer["checks"]["http"], answer
    assert token_site.requests == []
