"""VeloFlux data plane: an HTTP/1.1 reverse proxy on uvloop + httptools (see docs/data-plane-contract.md)."""
