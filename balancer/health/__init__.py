"""Active health checks, passive-ejection mirroring, alerts and housekeeping.

The only input is the routing table (docs/data-plane-contract.md); the outputs
are the health overlay ``vf:routing:health``, per-backend detail hashes,
``vf:events:health`` messages and per-tenant alerts.

- ``scheduler``: sync the due ZSET from the routing table; claim due backends atomically.
- ``probe``: asyncio HTTP/TCP probes with a concurrency cap.
- ``state``: rise/fall transitions written atomically in Lua, published; passive ejections.
- ``sweep``: one unit of work (claim, probe, record) and the long-running sweeper loop.
- ``alerts``: backend down, pool without healthy backend, error rate; de-duplicated, resolved.
- ``housekeeping``: metric roll-ups, stream trimming, expired auth state.
"""
