"""The Redis storage layer: connection, key builder, records, atomic writes, repositories."""
