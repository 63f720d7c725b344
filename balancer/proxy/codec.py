"""The compiled HTTP/1.1 codec (``balancer/proxy/csrc``, built into ``balancer.proxy._codec``).

One call parses a whole request head and returns the head to send upstream; one call parses a
response head and returns the client's head plus the body bytes that came with it; a ``Framer``
forwards the rest of a body (Content-Length countdown, strict chunked decoding, close-delimited).
The same module holds the compiled cores of the per-request objects and the common exchange's hot
path (``csrc/hot.h`` says what it covers; everything else runs the Python methods).
There is deliberately no pure-Python fallback: a proxy that silently ran ten times slower would be
worse than one that refuses to start.
"""

from __future__ import annotations

import os

BUILD_COMMAND = "python setup.py build_ext --inplace"

try:
    from balancer.proxy._codec import (
        CHUNKED,
        EOF,
        ERROR_PENALTY_MS,
        EWMA_DECAY_S,
        LENGTH,
        MAX_HEADERS,
        AppCore,
        BackendCore,
        BackendState,
        ClientCore,
        ExchangeCore,
        Framer,
        HeadError,
        MetricsCore,
        PoolCore,
        Request,
        RoundRobinCore,
        RouteCore,
        Series,
        UpstreamCore,
        UpstreamPoolCore,
        clock,
        new_request_id,
        parse_request,
        parse_response,
        record,
        route_lookup,
        set_max_hops,
        set_request_id_prefix,
        use_exchange_class,
    )
except ImportError as exc:  # pragma: no cover - exercised by hand on an unbuilt checkout
    raise ImportError(f"the proxy's compiled codec (balancer.proxy._codec) is not built: run `{BUILD_COMMAND}` in the "
                      f"project directory (bin/up and bin/test do it) [{exc}]", name="balancer.proxy._codec") from exc

# parse_response flags
HEAD_REQUEST = 1
CLIENT_HTTP10 = 2
CLOSE_CLIENT = 4

__all__ = ["CHUNKED", "CLIENT_HTTP10", "CLOSE_CLIENT", "EOF", "ERROR_PENALTY_MS", "EWMA_DECAY_S", "HEAD_REQUEST",
           "LENGTH", "MAX_HEADERS", "AppCore", "BackendCore", "BackendState", "ClientCore", "ExchangeCore", "Framer",
           "HeadError", "MetricsCore", "PoolCore", "Request", "RoundRobinCore", "RouteCore", "Series", "UpstreamCore",
           "UpstreamPoolCore", "clock", "new_request_id", "parse_request", "parse_response", "record",
           "reseed_request_ids", "route_lookup", "set_max_hops", "use_exchange_class"]


def reseed_request_ids() -> None:
    """A fresh random prefix for generated X-Request-IDs; each worker calls it after the fork, so two workers
    never hand out the same id."""
    set_request_id_prefix(os.urandom(4).hex().encode())


reseed_request_ids()
