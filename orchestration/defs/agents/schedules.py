"""Pulled agent data (the agent platform's runs API) is at most a few minutes stale."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from sqlalchemy import text

from orchestration.defs.agents.jobs import agent_platform_job
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse


@dg.schedule(
    job=agent_platform_job,
    cron_schedule="*/3 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def agent_platform_schedule(context: dg.ScheduleEvaluationContext, warehouse: PulseWarehouse) -> list[dg.RunRequest]:
    """Every 3 minutes, sync each tenant that has an active agent-platform source.

    A sync takes well under a minute, so runs are at most about 4 minutes stale on the models.
    """
    with warehouse.engine().connect() as conn:
        tenants: Sequence[str] = (
            conn.execute(
                text(
                    "select distinct s.tenant_id from control.sources as s "
                    "join control.tenants as t on t.slug = s.tenant_id "
                    "where s.type = 'agent_platform' and s.is_active and t.is_active order by 1"
                )
            )
            .scalars()
            .all()
        )
    partitions = set(context.instance.get_dynamic_partitions(tenant_partitions.name or "tenant"))
    tick = context.scheduled_execution_time.isoformat()
    return [
        dg.RunRequest(partition_key=tenant, run_key=f"agent_platform:{tenant}:{tick}")
        for tenant in tenants
        if tenant in partitions
    ]
