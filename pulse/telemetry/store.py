"""Durable, idempotent storage of telemetry rows in each tenant's raw schema.

Rows land in ``raw_claude_code__<tenant>.otel_events`` and ``.otel_metric_points``; the
schema and tables are created on first use. Every insert is ``on conflict do nothing`` on
the deterministic id, so an exporter retry of a batch never duplicates rows.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from pulse.settings import raw_schema

log = logging.getLogger(__name__)

EVENT_COLUMNS = (
    "event_id",
    "event_name",
    "event_at",
    "session_id",
    "prompt_id",
    "user_id",
    "user_email",
    "organization_id",
    "team",
    "model",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "duration_ms",
    "success",
    "tool_name",
    "status_code",
    "error",
    "request_id",
    "attributes",
    "resource",
)
POINT_COLUMNS = (
    "point_id",
    "metric_name",
    "point_at",
    "start_at",
    "value",
    "session_id",
    "user_email",
    "organization_id",
    "team",
    "model",
    "type",
    "attributes",
    "resource",
)
_JSON_COLUMNS = frozenset({"attributes", "resource"})
DDL = """
create schema if not exists {schema};
create table if not exists {schema}.otel_events (
    event_id text primary key,
    received_at timestamptz not null default now(),
    event_name text not null,
    event_at timestamptz not null,
    session_id text,
    prompt_id text,
    user_id text,
    user_email text,
    organization_id text,
    team text,
    model text,
    cost_usd numeric,
    input_tokens bigint,
    output_tokens bigint,
    cache_read_tokens bigint,
    cache_creation_tokens bigint,
    duration_ms numeric,
    success boolean,
    tool_name text,
    status_code integer,
    error text,
    request_id text,
    attributes jsonb not null,
    resource jsonb not null
);
create index if not exists otel_events_event_at_idx on {schema}.otel_events (event_at);
create index if not exists otel_events_prompt_id_idx on {schema}.otel_events (prompt_id);
create table if not exists {schema}.otel_metric_points (
    point_id text primary key,
    received_at timestamptz not null default now(),
    metric_name text not null,
    point_at timestamptz not null,
    start_at timestamptz,
    value double precision not null,
    session_id text,
    user_email text,
    organization_id text,
    team text,
    model text,
    type text,
    attributes jsonb not null,
    resource jsonb not null
);
"""


class PoolExhausted(RuntimeError):
    """No database connection became free in time: the receiver answers 429."""


def schema_name(tenant: str) -> str:
    """The raw schema of a tenant's Claude Code telemetry (slugs are identifier-safe)."""
    return raw_schema("claude_code", tenant)


class ConnectionPool:
    """A small thread-safe pool of psycopg connections, opened lazily, at most ``size``."""

    def __init__(self, url: str, size: int = 8, timeout: float = 2.0) -> None:
        self._url = url
        self._size = size
        self._timeout = timeout
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        if not self._slots.acquire(timeout=self._timeout):
            raise PoolExhausted(f"all {self._size} database connections stayed busy for {self._timeout:g} s")
        conn: psycopg.Connection[Any] | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(self._url, autocommit=False)
            yield conn
        finally:
            if conn is not None:
                if conn.closed or conn.broken or self._closed:
                    conn.close()
                else:
                    conn.rollback()  # no-op after a commit; clears a failed transaction
                    self._idle.put(conn)
            self._slots.release()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class TelemetryStore:
    """Writes rows for a tenant in one transaction; creates the tenant's schema on first use."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    def ensure_schema(self, conn: psycopg.Connection[Any], tenant: str) -> None:
        schema = schema_name(tenant)
        if schema in self._ready:
            return
        with conn.transaction():
            # Serialise concurrent first uses: `create schema if not exists` races otherwise.
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (schema,))
            conn.execute(sql.SQL(DDL).format(schema=sql.Identifier(schema)))
        with self._lock:
            self._ready.add(schema)

    def write_events(self, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
        self._write(tenant, "otel_events", EVENT_COLUMNS, "event_id", rows)

    def write_points(self, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
        self._write(tenant, "otel_metric_points", POINT_COLUMNS, "point_id", rows)

    def _write(self, tenant: str, table: str, columns: Sequence[str], key: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        # executemany runs in pipeline mode: measured at ~3 ms per 50-row batch, 3x faster than
        # one `insert ... select * from unnest(<column arrays>)` statement on the same rows.
        statement = sql.SQL("insert into {table} ({columns}) values ({values}) on conflict ({key}) do nothing").format(
            table=sql.Identifier(schema_name(tenant), table),
            columns=sql.SQL(", ").join(sql.Identifier(column) for column in columns),
            values=sql.SQL(", ").join(sql.Placeholder() for _ in columns),
            key=sql.Identifier(key),
        )
        params = [
            tuple(Jsonb(row[column]) if column in _JSON_COLUMNS else row[column] for column in columns) for row in rows
        ]
        with self.pool.connection() as conn:
            self.ensure_schema(conn, tenant)
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(statement, params)
