"""Claude Code telemetry: an OTLP/HTTP receiver that lands events and metric points per tenant.

- :mod:`pulse.telemetry.otlp`: decode requests, turn records into rows (pure functions)
- :mod:`pulse.telemetry.store`: the tenant's raw schema, a small connection pool, idempotent writes
- :mod:`pulse.telemetry.auth`: ingest tokens, cached briefly
- :mod:`pulse.telemetry.server`: the receiver and its HTTP server
- :mod:`pulse.telemetry.cli`: ``pulse ingest serve`` and ``pulse ingest token create``
"""
