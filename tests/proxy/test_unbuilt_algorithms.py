"""A pool stored with geo_proximity (accepted once, never built) still serves: round robin, with a logged warning."""

from __future__ import annotations

from collections import Counter

from tests.proxy.support import backend_name, get, simple_site
from tests.support.assertions import wait_until


def test_it_runs_a_stored_geo_proximity_pool_as_round_robin_and_says_so(proxy, farm):
    backends = [farm.start(f"b{i}") for i in range(3)]
    _, host, _ = simple_site(proxy, backends, algorithm="geo_proximity")
    counts = Counter(backend_name(get(proxy, host)[2]) for _ in range(30))
    assert counts == {"b0": 10, "b1": 10, "b2": 10}
    assert wait_until(lambda: "'geo_proximity' is not implemented" in proxy.log_path.read_text(), timeout=5)
