"""Load-balancing algorithms. Each picks one backend among the usable ones of a pool.

``usable`` is never empty (the router answers 503 before asking) and keeps the pool's order.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from typing import TYPE_CHECKING

from balancer.proxy.codec import RoundRobinCore

if TYPE_CHECKING:
    from balancer.proxy.config import Backend


class Balancer:
    def pick(self, usable: list[Backend], client_ip: str, now: float) -> Backend:
        raise NotImplementedError


class RoundRobin(RoundRobinCore, Balancer):
    """Each usable backend in turn. Compiled (``RoundRobinCore``: ``next`` and ``pick``), as the default
    algorithm's pick is on the hot path."""

    def __init__(self, backends: list[Backend]):
        self.next = 0


class SmoothWeighted(Balancer):
    """nginx's smooth weighted round robin: over sum(weights) picks each backend gets exactly its weight."""

    def __init__(self, backends: list[Backend]):
        self.current: dict[str, int] = {}

    def pick(self, usable, client_ip, now):
        current = self.current
        total = 0
        best = None
        best_weight = 0
        for backend in usable:
            weight = current.get(backend.id, 0) + backend.weight
            current[backend.id] = weight
            total += backend.weight
            if best is None or weight > best_weight:
                best, best_weight = backend, weight
        current[best.id] = best_weight - total
        if len(current) > 2 * len(usable) + 8:  # forget backends that left the pool
            ids = {b.id for b in usable}
            self.current = {k: v for k, v in current.items() if k in ids}
        return best


class LeastConn(Balancer):
    """Fewest in-flight requests per unit of weight; ties rotate so equal backends share the load."""

    def __init__(self, backends: list[Backend]):
        self.next = 0

    def pick(self, usable, client_ip, now):
        count = len(usable)
        start = self.next % count
        self.next = start + 1
        best = usable[start]
        best_load = best.st.inflight / best.weight
        for offset in range(1, count):
            backend = usable[(start + offset) % count]
            load = backend.st.inflight / backend.weight
            if load < best_load:
                best, best_load = backend, load
        return best


class ConsistentHash(Balancer):
    """Ketama ring over the pool's backends (points proportional to weight), keyed by client IP.

    An unusable backend is skipped by walking clockwise, so removing one of n backends
    moves only the clients that hashed to it (about 1/n).
    """

    POINTS_PER_100 = 160

    def __init__(self, backends: list[Backend]):
        ring: list[tuple[int, int]] = []
        for index, backend in enumerate(backends):
            points = max(1, backend.weight * self.POINTS_PER_100 // 100)
            for point in range(points):
                digest = hashlib.md5(f"{backend.id}-{point}".encode()).digest()
                ring.append((int.from_bytes(digest[:8], "big"), index))
        ring.sort()
        self.hashes = [h for h, _ in ring]
        self.owners = [backends[i] for _, i in ring]
        self.count = len(backends)
        self.cache: dict[str, int] = {}

    def pick(self, usable, client_ip, now):
        if not self.hashes:
            return usable[0]
        start = self.cache.get(client_ip)
        if start is None:
            key = int.from_bytes(hashlib.md5(client_ip.encode()).digest()[:8], "big")
            start = bisect.bisect(self.hashes, key) % len(self.hashes)
            if len(self.cache) > 65536:
                self.cache.clear()
            self.cache[client_ip] = start
        owners = self.owners
        if len(usable) == self.count:
            return owners[start]
        allowed = {b.id for b in usable}
        size = len(owners)
        for step in range(size):
            backend = owners[(start + step) % size]
            if backend.id in allowed:
                return backend
        return usable[0]


class WeightedRandom(Balancer):
    def __init__(self, backends: list[Backend]):
        pass

    def pick(self, usable, client_ip, now):
        if len(usable) == 1:
            return usable[0]
        return random.choices(usable, weights=[b.weight for b in usable])[0]


class LeastLatency(Balancer):
    """Power of two choices on peak-EWMA latency x (in-flight + 1); errors count as slow."""

    def __init__(self, backends: list[Backend]):
        pass

    def pick(self, usable, client_ip, now):
        count = len(usable)
        if count == 1:
            return usable[0]
        first = random.randrange(count)
        second = random.randrange(count - 1)
        if second >= first:
            second += 1
        a, b = usable[first], usable[second]
        return a if a.st.cost(now) / a.weight <= b.st.cost(now) / b.weight else b


class Adaptive(Balancer):
    """Uses the algorithm the AI stored for the pool (``vf:{t:..}:ai:pool_algorithm``), else least_latency."""

    def __init__(self, backends: list[Backend]):
        self.backends = backends
        self.choice = "least_latency"
        self.delegates: dict[str, Balancer] = {}
        self.current: Balancer = LeastLatency(backends)

    def use(self, algorithm: str | None) -> None:
        if algorithm not in ALGORITHMS or algorithm == "adaptive":
            algorithm = "least_latency"
        if algorithm != self.choice or not self.delegates:
            self.choice = algorithm
            delegate = self.delegates.get(algorithm)
            if delegate is None:
                delegate = self.delegates[algorithm] = ALGORITHMS[algorithm](self.backends)
            self.current = delegate

    def pick(self, usable, client_ip, now):
        return self.current.pick(usable, client_ip, now)


ALGORITHMS: dict[str, type[Balancer]] = {
    "round_robin": RoundRobin,
    "weighted_round_robin": SmoothWeighted,
    "least_conn": LeastConn,
    "ip_hash": ConsistentHash,
    "random": WeightedRandom,
    "least_latency": LeastLatency,
    "adaptive": Adaptive,
}


def make_balancer(algorithm: str, backends: list[Backend]) -> Balancer:
    return ALGORITHMS.get(algorithm, RoundRobin)(backends)
