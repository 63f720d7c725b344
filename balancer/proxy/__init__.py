"""VeloFlux data plane: an HTTP/1.1 reverse proxy on uvloop and a compiled head codec (docs/data-plane-contract.md)."""
