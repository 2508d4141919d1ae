"""Health changes with time alone: data ages, periods slide. Rescore every tenant every half hour."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from sqlalchemy import text

from orchestration.defs.health.jobs import account_health_job, missing_inputs, not_ready
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse


@dg.schedule(
    job=account_health_job,
    cron_schedule="5,35 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def account_health_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: PulseWarehouse
) -> list[dg.RunRequest] | dg.SkipReason:
    """Twice an hour, rescore each active tenant.

    New data rescores a tenant within minutes (sensors.account_health_after_usage_marts and
    every tenant sync); this catches what no load announces: data going stale, the day and
    the period moving on. A fall that only time causes is thus alerted within about 35 minutes.
    """
    with warehouse.engine().connect() as conn:
        missing = missing_inputs(conn)
        if missing:
            return dg.SkipReason(not_ready(missing))
        tenants: Sequence[str] = (
            conn.execute(text("select slug from control.tenants where is_active and deleted_at is null order by slug"))
            .scalars()
            .all()
        )
    partitions = set(context.instance.get_dynamic_partitions(tenant_partitions.name or "tenant"))
    tick = context.scheduled_execution_time.isoformat()
    return [
        dg.RunRequest(partition_key=tenant, run_key=f"account-health:{tenant}:{tick}")
        for tenant in tenants
        if tenant in partitions
    ]
