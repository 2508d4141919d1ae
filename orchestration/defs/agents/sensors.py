"""Agent data reaches the models within a minute: watch the pushed raw tables, refresh on arrival."""

from __future__ import annotations

import json
from datetime import datetime

import dagster as dg
from sqlalchemy import Connection, text

from orchestration.defs.agents.jobs import agent_models_job
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse

#: Raw tables written outside Dagster, with the column that records each row's arrival.
PUSHED_TABLES = (
    ("claude_code", "otel_events", "received_at"),
    ("claude_code", "otel_metric_points", "received_at"),
    ("agent_mcp", "runs", "reported_at"),
    ("agent_import", "runs", "imported_at"),
)


def latest_arrivals(conn: Connection) -> dict[str, datetime]:
    """The newest arrival time of pushed agent data, per tenant (tenants with none left out)."""
    found = conn.execute(
        text(
            "select t.slug, c.table_schema, c.table_name, c.column_name "
            "from control.tenants as t "
            "join information_schema.columns as c "
            "  on c.table_schema in ("
            + ", ".join(f"'raw_{source}__' || t.slug" for source in {s for s, _, _ in PUSHED_TABLES})
            + ") where t.is_active and (c.table_name, c.column_name) in ("
            + ", ".join(f"('{table}', '{column}')" for _, table, column in PUSHED_TABLES)
            + ")"
        )
    ).all()
    latest: dict[str, datetime] = {}
    for row in found:
        tenant, schema, table, column = str(row[0]), row[1], row[2], row[3]
        value = conn.execute(text(f'select max("{column}") from "{schema}"."{table}"')).scalar()
        if value is not None and (tenant not in latest or value > latest[tenant]):
            latest[tenant] = value
    return latest


def refresh_requests(
    arrivals: dict[str, datetime], seen: dict[str, str], partitions: set[str]
) -> tuple[list[dg.RunRequest], dict[str, str]]:
    """Run requests for tenants with data newer than last seen; the cursor to store next."""
    requests = []
    cursor = dict(seen)
    for tenant, arrived in sorted(arrivals.items()):
        stamp = arrived.isoformat()
        if tenant in partitions and seen.get(tenant) != stamp:
            requests.append(dg.RunRequest(partition_key=tenant, run_key=f"agents:{tenant}:{stamp}"))
            cursor[tenant] = stamp
    return requests, cursor


@dg.sensor(job=agent_models_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def agent_data_sensor(context: dg.SensorEvaluationContext, warehouse: PulseWarehouse) -> dg.SensorResult:
    """Refresh a tenant's agent models when Claude Code, MCP or imported runs arrive."""
    with warehouse.engine().connect() as conn:
        arrivals = latest_arrivals(conn)
    partitions = set(context.instance.get_dynamic_partitions(tenant_partitions.name or "tenant"))
    requests, cursor = refresh_requests(arrivals, json.loads(context.cursor or "{}"), partitions)
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps(cursor),
        skip_reason=None if requests else "no new agent data",
    )
