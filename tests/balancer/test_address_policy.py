"""The backend address policy (balancer/netpolicy.py) through the API, bulk and import, with the strict default:
no backend may point at the platform's insides (Redis, the proxy's admin port, loopback, metadata), nor at a
private network unless the platform allows it."""

from __future__ import annotations

import ipaddress

import pytest

from balancer import netpolicy
from tests.balancer.helpers import error, fragment, pool, routing_version


def _refusal(policy: netpolicy.Policy, ip: netpolicy.IPAddress, port: int) -> str | None:
    found = netpolicy.refused(policy, ip, port)
    return None if found is None else str(found)


@pytest.fixture
def strict(settings):
    """The default of a fresh deployment: VF_BACKEND_ALLOWED_NETWORKS empty."""
    settings.BACKEND_ALLOWED_NETWORKS = []
    return settings


@pytest.fixture
def web(api, member):
    return pool(api, member)


def refused(response, hint: str) -> str:
    assert response.status_code == 400, response.content
    message = error(response)["fields"]["address"][0]
    assert hint in message, message
    return message


def _attacks(redis_port: int, admin_port: int) -> list[tuple[str, str]]:
    return [
        (f"127.0.0.1:{redis_port}", "loopback"),
        (f"[::1]:{redis_port}", "loopback"),
        (f"127.0.0.1:{admin_port}", "loopback"),
        (f"localhost:{redis_port}", "loopback"),
        ("169.254.169.254:80", "link-local"),
        ("[fe80::1]:80", "link-local"),
        ("metadata.google.internal:80", "metadata"),
        ("[::1]:8081", "loopback"),
        ("127.0.0.1:8081", "loopback"),
        ("localhost:8081", "loopback"),
        ("[::ffff:127.0.0.1]:8081", "loopback"),
        ("[64:ff9b::7f00:1]:8081", "loopback"),
        ("0x7f.1:8081", "unusual spelling"),
        ("2130706433:8081", "unusual spelling"),
        ("127.1:8081", "unusual spelling"),
        ("0177.0.0.1:8081", "unusual spelling"),
        ("0.0.0.0:8081", "unspecified"),
        ("224.0.0.1:80", "multicast"),
        ("255.255.255.255:80", "broadcast"),
        ("10.0.0.1:80", "private network"),
        ("192.168.1.10:80", "private network"),
        ("100.64.0.1:80", "private network"),
        ("[fd00::1]:80", "private network"),
    ]


def test_it_refuses_every_platform_internal_address_as_a_backend(api, member, web, strict, redis_server, tenant_a):
    version = routing_version()
    for address, hint in _attacks(redis_server.port, strict.PROXY_ADMIN_PORT):
        refused(api.as_(member).post("/api/backends", {"address": address, "pool": "web"}), hint)
    assert api.as_(member).get("/api/backends").json()["total_count"] == 0
    assert routing_version() == version


def test_it_says_what_to_do_in_the_message(api, member, web, strict, redis_server):
    message = refused(api.as_(member).post("/api/backends", {"address": "169.254.169.254:80", "pool": "web"}),
                      "link-local")
    assert message == ("address 169.254.169.254:80 is link-local (where cloud metadata services live); "
                       "backends must be your own servers")
    strict.BACKEND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    message = refused(api.as_(member).post("/api/backends", {"address": f"127.0.0.1:{redis_server.port}",
                                                              "pool": "web"}), "platform service")
    assert message == f"address 127.0.0.1:{redis_server.port} is a platform service; backends must be your own servers"


def test_it_does_not_tell_which_loopback_port_is_a_platform_service(api, member, web, strict, redis_server):
    def message(port: int) -> str:
        return refused(api.as_(member).post("/api/backends", {"address": f"127.0.0.1:{port}", "pool": "web"}),
                       "loopback").replace(str(port), "N")

    assert message(redis_server.port) == message(strict.PROXY_ADMIN_PORT) == message(redis_server.port + 1)


def test_it_accepts_public_addresses_and_stores_mapped_ipv6_as_ipv4(api, member, web, strict):
    for address, stored in (("8.8.8.8:80", "8.8.8.8:80"), ("[::ffff:8.8.4.4]:443", "8.8.4.4:443"),
                            ("[2001:4860:4860::8888]:80", "[2001:4860:4860::8888]:80"),
                            ("not-in-dns.invalid:80", "not-in-dns.invalid:80")):
        response = api.as_(member).post("/api/backends", {"address": address, "pool": "web"})
        assert response.status_code == 201, response.json()
        assert response.json()["address"] == stored


def test_it_refuses_an_update_to_a_platform_address(api, member, web, strict, redis_server):
    created = api.as_(member).post("/api/backends", {"address": "8.8.8.8:80", "pool": "web"}).json()
    response = api.as_(member).put(f"/api/backends/{created['id']}", {"address": f"127.0.0.1:{redis_server.port}"})
    refused(response, "loopback")
    assert api.as_(member).get(f"/api/backends/{created['id']}").json()["address"] == "8.8.8.8:80"


def test_it_refuses_platform_addresses_in_a_bulk_without_changing_anything(api, member, strict, tenant_a):
    version = routing_version()
    response = api.as_(member).post("/api/bulk", {"operations": [
        {"op": "create", "type": "pool", "data": {"name": "web"}},
        {"op": "create", "type": "backend", "data": {"address": "8.8.8.8:80", "pool": "web"}},
        {"op": "create", "type": "backend", "data": {"address": "169.254.169.254:80", "pool": "web"}},
    ]})
    assert response.status_code == 400
    assert "link-local" in error(response)["fields"]["operations[2].address"][0]
    assert routing_version() == version and fragment(tenant_a["id"]) is None


def test_it_refuses_platform_addresses_in_an_import(api, member, strict, redis_server):
    version = routing_version()
    document = {"routes": [], "pools": [{"name": "web", "backends": [
        {"address": "8.8.8.8:80"}, {"address": f"localhost:{redis_server.port}"}]}]}
    checked = api.as_(member).post("/api/config/validate", document).json()
    assert checked["valid"] is False and checked["errors"][0]["path"] == "pools[0].backends[1].address"
    assert "resolves to 127.0.0.1" in checked["errors"][0]["message"]
    response = api.as_(member).post("/api/config/import", document)
    assert response.status_code == 400, response.json()
    assert "loopback" in error(response)["fields"]["pools[0].backends[1].address"][0]
    assert routing_version() == version and api.as_(member).get("/api/pools").json()["total_count"] == 0


def test_it_opens_private_networks_only_as_the_platform_allows(api, member, web, strict):
    strict.BACKEND_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert api.as_(member).post("/api/backends", {"address": "10.1.2.3:80", "pool": "web"}).status_code == 201
    refused(api.as_(member).post("/api/backends", {"address": "192.168.1.1:80", "pool": "web"}), "private")
    strict.BACKEND_ALLOWED_NETWORKS = ["0.0.0.0/0", "::/0"]  # broad: every private range, never loopback
    assert api.as_(member).post("/api/backends", {"address": "192.168.1.1:80", "pool": "web"}).status_code == 201
    refused(api.as_(member).post("/api/backends", {"address": "127.0.0.1:8081", "pool": "web"}), "loopback")
    refused(api.as_(member).post("/api/backends", {"address": "169.254.169.254:80", "pool": "web"}), "link-local")


def test_it_never_opens_platform_listeners_whatever_the_setting_says(api, member, web, strict, redis_server):
    strict.BACKEND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128", "169.254.0.0/16"]
    strict.PLATFORM_LISTENERS = ["0.0.0.0:5432"]
    assert api.as_(member).post("/api/backends", {"address": "127.0.0.1:9101", "pool": "web"}).status_code == 201
    for address, hint in ((f"127.0.0.1:{redis_server.port}", "platform service"),
                          (f"127.0.0.2:{redis_server.port}", "platform service"),
                          (f"localhost:{redis_server.port}", "platform service"),
                          (f"[::1]:{strict.PROXY_ADMIN_PORT}", "platform service"),
                          (f"127.0.0.1:{strict.WEB_PORT}", "platform service"),
                          ("127.0.0.1:5432", "platform service"),
                          (f"127.0.0.1:{strict.PROXY_PORT}", "platform service"),
                          ("169.254.169.254:80", "link-local")):
        refused(api.as_(member).post("/api/backends", {"address": address, "pool": "web"}), hint)


def test_it_judges_embedded_ipv4_as_the_address_it_reaches():
    policy = netpolicy.Policy()
    for text in ("::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1"):
        assert "loopback" in _refusal(policy, ipaddress.ip_address(text), 80)
    assert _refusal(policy, ipaddress.ip_address("::ffff:8.8.8.8"), 80) is None


def test_it_treats_a_wildcard_listener_as_every_local_address():
    policy = netpolicy.Policy(allowed=netpolicy.parse_networks(["0.0.0.0/0", "127.0.0.0/8"]),
                              listeners=(netpolicy.Listener(None, 7001, "x"),))
    assert "platform service" in _refusal(policy, ipaddress.ip_address("127.0.0.9"), 7001)
    assert netpolicy.refused(policy, ipaddress.ip_address("127.0.0.9"), 7001).loop is False
    assert _refusal(policy, ipaddress.ip_address("127.0.0.9"), 7002) is None
    assert _refusal(policy, ipaddress.ip_address("10.255.0.1"), 7001) is None  # not this machine
