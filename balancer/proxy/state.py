"""Per-backend runtime state shared by every snapshot: in-flight count, peak-EWMA latency, passive ejection.

One ``BackendState`` per backend id lives for the life of the worker, so a config reload
keeps counters, latency estimates and ejections. ``BackendState`` is compiled (``csrc/state.c``): the
hot path reads and updates it in C. Its fields: ``inflight``, ``ewma`` (peak-EWMA latency in ms, a
failure counts as at least ERROR_PENALTY_MS and twice the average), ``ewma_at``, ``fails`` (consecutive
connect errors / 5xx), ``ejected_until`` (the proxy's clock, ``codec.clock``), ``ejections``, ``down``
(health overlay); methods ``usable(now)``, ``observe(now, latency_ms, failed)`` and ``cost(now)`` =
(ewma + 1) x (in flight + 1).
"""

from __future__ import annotations

import time

from balancer.proxy.codec import ERROR_PENALTY_MS, EWMA_DECAY_S, BackendState

MAX_EJECTION_S = 300.0

__all__ = ["ERROR_PENALTY_MS", "EWMA_DECAY_S", "MAX_EJECTION_S", "BackendState", "StateRegistry"]


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
