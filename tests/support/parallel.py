"""Run one call many times at once: every thread waits at a barrier, then fires."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def run_parallel(count: int, call: Callable[[int], object]) -> list:
    """``call(i)`` for i in range(count), all released together; returns the results in order."""
    barrier = threading.Barrier(count)

    def fire(index: int):
        barrier.wait(timeout=30)
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(fire, range(count)))


def status_counts(responses) -> Counter:
    return Counter(response.status_code for response in responses)
