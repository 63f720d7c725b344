"""Property: the export of a tenant, imported into an empty tenant, exports to exactly the same document."""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from balancer import config_io, netpolicy
from balancer.models import ALGORITHMS, BACKEND_STATES
from tenants.audit import Actor
from tests.support.actors import make_tenant
from veloflux_site.storage.connection import get_redis

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).filter(
    lambda s: s[0] != "-" and s[-1] != "-")
DURATION_MS = st.integers(min_value=100, max_value=60_000)


@st.composite
def health_checks(draw):
    check = {}
    if draw(st.booleans()):
        interval = draw(DURATION_MS)
        timeout = draw(st.integers(min_value=1, max_value=interval - 1))
        check["interval"] = draw(st.sampled_from([f"{interval}ms", interval / 1000]))
        check["timeout"] = f"{timeout}ms"
    if draw(st.booleans()):
        check["path"] = "/" + draw(NAMES)
    if draw(st.booleans()):
        check["expected_status"] = draw(st.lists(st.integers(200, 399), min_size=1, max_size=3))
    if draw(st.booleans()):
        check["type"] = draw(st.sampled_from(["http", "tcp"]))
    if draw(st.booleans()):
        check["rise"] = draw(st.integers(1, 5))
    return check or None


@st.composite
def addresses(draw):
    kind = draw(st.sampled_from(["ipv4", "name", "ipv6"]))
    port = draw(st.integers(1, 65535))
    if kind == "ipv4":
        host = ".".join(str(draw(st.integers(0, 255))) for _ in range(4))
        # only what the address policy accepts (tests/conftest.py allows 127/8 and 10/8; no platform port)
        assume(netpolicy.refused(netpolicy.policy_from_settings(), ipaddress.ip_address(host), port) is None)
    elif kind == "ipv6":
        host = f"[2001:db8::{draw(st.integers(1, 0xFFFF)):x}]"
    else:
        host = f"{draw(NAMES)}.internal"
    return f"{host}:{port}"


@st.composite
def documents(draw):
    pool_names = draw(st.lists(NAMES, min_size=0, max_size=4, unique=True))
    pools = []
    for name in pool_names:
        backends = []
        for address in draw(st.lists(addresses(), max_size=4, unique=True)):
            backend = {"address": address}
            if draw(st.booleans()):
                backend["weight"] = draw(st.integers(1, 1000))
            if draw(st.booleans()):
                backend["region"] = draw(st.sampled_from(["eu-west-1", "us-east-1", None]))
            if draw(st.booleans()):
                backend["enabled"] = draw(st.booleans())
            if draw(st.booleans()):
                backend["state"] = draw(st.sampled_from(BACKEND_STATES))
            if draw(st.booleans()):
                backend["health_check"] = {"path": "/" + draw(NAMES)}
            backends.append(backend)
        pool = {"name": name, "algorithm": draw(st.sampled_from(ALGORITHMS)), "backends": backends}
        if draw(st.booleans()):
            pool["sticky_sessions"] = draw(st.booleans())
        check = draw(health_checks())
        if check:
            pool["health_check"] = check
        pools.append(pool)
    routes = []
    if pool_names:
        keys = draw(st.lists(st.tuples(st.sampled_from(["", "*."]), NAMES, st.sampled_from(["/", "/api", "/v1/x"])),
                             max_size=4, unique_by=lambda t: (t[0] + t[1], t[2])))
        for wildcard, label, prefix in keys:
            route = {"host": f"{wildcard}{label}.example.com", "path_prefix": prefix,
                     "pool": draw(st.sampled_from(pool_names))}
            if draw(st.booleans()):
                route["max_body_bytes"] = draw(st.integers(0, 10**9))
            routes.append(route)
    document = {"pools": pools, "routes": routes}
    if draw(st.booleans()):
        document["global"] = {"health_check": {"path": "/healthz"}}
    return document


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents())
def test_it_reproduces_an_exported_tenant_exactly_in_an_empty_tenant(document):
    get_redis().flushall()
    source, _ = make_tenant("Source", "source@example.test", plan="enterprise")
    target, _ = make_tenant("Target", "target@example.test", plan="enterprise")
    actor = Actor.system()
    config_io.import_document(source, actor, document)
    exported = config_io.current_document(source)
    assert len(exported["pools"]) == len(document["pools"])
    assert len(exported["routes"]) == len(document["routes"])
    # Importing its own export changes nothing.
    assert config_io.import_document(source, actor, exported)["applied"] is False
    # Hosts are global: the source lets go of them before the copy takes them.
    config_io.import_document(source, actor, {"pools": [], "routes": []})
    text, _ = config_io.render(exported, "yaml")
    config_io.import_document(target, actor, config_io.load_text(text))
    assert config_io.current_document(target) == exported
