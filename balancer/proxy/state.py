"""Per-backend runtime state shared by every snapshot: in-flight count, peak-EWMA latency, passive ejection.

One ``BackendState`` per backend id lives for the life of the worker, so a config reload
keeps counters, latency estimates and ejections.
"""

from __future__ import annotations

import math
import time

EWMA_DECAY_S = 10.0  # time constant of the latency average
ERROR_PENALTY_MS = 500.0  # an error or 5xx counts as at least this slow
MAX_EJECTION_S = 300.0


class BackendState:
    __slots__ = ("down", "ejected_until", "ejections", "ewma", "ewma_at", "fails", "id", "inflight")

    def __init__(self, backend_id: str):
        self.id = backend_id
        self.inflight = 0
        self.ewma = 0.0  # ms
        self.ewma_at = 0.0
        self.fails = 0  # consecutive connect errors / 5xx
        self.ejected_until = 0.0  # loop time
        self.ejections = 0
        self.down = False  # health overlay says "down"

    def usable(self, now: float) -> bool:
        return not self.down and self.ejected_until <= now

    def observe(self, now: float, latency_ms: float, failed: bool) -> None:
        """Peak EWMA: a slower sample is taken at once, faster ones decay in; failures look slow."""
        if failed:
            latency_ms = max(latency_ms, self.ewma * 2, ERROR_PENALTY_MS)
        if latency_ms > self.ewma:
            self.ewma = latency_ms
        else:
            weight = math.exp(-(now - self.ewma_at) / EWMA_DECAY_S)
            self.ewma = self.ewma * weight + latency_ms * (1 - weight)
        self.ewma_at = now

    def cost(self, now: float) -> float:
        return (self.ewma + 1.0) * (self.inflight + 1)


class StateRegistry:
    """backend id -> BackendState, plus the passive-ejection bookkeeping the metrics flusher publishes."""

    def __init__(self, eject_after: int, eject_base: float):
        self.states: dict[str, BackendState] = {}
        self.eject_after = eject_after
        self.eject_base = eject_base
        self.pending_ejections: list[tuple[str, float, str]] = []  # (backend id, until epoch, reason)
        self.pending_restores: list[str] = []

    def get(self, backend_id: str) -> BackendState:
        state = self.states.get(backend_id)
        if state is None:
            state = self.states[backend_id] = BackendState(backend_id)
        return state

    def apply_health(self, health: dict[str, str]) -> None:
        for backend_id, state in self.states.items():
            state.down = health.get(backend_id) == "down"

    def backend_up(self, backend_id: str) -> None:
        """An active check saw the backend healthy: lift a passive ejection at once."""
        state = self.states.get(backend_id)
        if state is None:
            return
        state.down = False
        if state.ejected_until:
            state.ejected_until = 0.0
            state.fails = 0
            self.pending_restores.append(backend_id)

    def success(self, state: BackendState) -> None:
        state.fails = 0

    def failure(self, state: BackendState, now: float, peers_usable: int, reason: str) -> bool:
        """Count a failure; eject when the streak is long enough and another backend can take over."""
        state.fails += 1
        if state.fails < self.eject_after or state.ejected_until > now or peers_usable < 1:
            return False
        duration = min(self.eject_base * (2 ** state.ejections), MAX_EJECTION_S)
        state.ejections += 1
        state.fails = 0
        state.ejected_until = now + duration
        self.pending_ejections.append((state.id, time.time() + duration, reason))
        return True
