"""Budget alerts follow the data: agent models → usage marts → budget evaluation → email.

Two sensors:

- ``agent_usage_marts_after_models``: when a run of the agent models (``agent_models``,
  ``agent_platform_sync``) succeeds, refresh the same tenant's usage marts. Jobs that build
  everything (``tenant_sync``, ``pulse sync``) refresh the marts themselves.
- ``budget_alerts_sensor``: reads every new materialization of
  ``marts/fct_budget_utilization`` (whatever run made it: the job above, a tenant sync, a
  backfill) and evaluates every budget of those tenants, plus the tenants whose budgets or
  thresholds changed; then it delivers the due emails of the outbox, retries included. The
  alert ledger makes evaluation idempotent, so a re-run, a lost cursor or a backfill never
  alerts twice (pulse.budgets.evaluate).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import dagster as dg
from sqlalchemy import Connection, text

from orchestration.defs.agents.jobs import agent_models_job, agent_platform_job
from orchestration.defs.budgets.jobs import BUDGET_UTILIZATION, agent_usage_marts_job
from orchestration.lib.partitions import follow_up_request, materialized_partitions
from orchestration.lib.resources import PulseWarehouse
from pulse.budgets import DeliveryReport, run_budget_alerts

#: A sensor tick must end well inside Dagster's evaluation timeout; emails left wait a tick.
DELIVERY_TIME_BUDGET_SECONDS = 20.0


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[agent_models_job, agent_platform_job],
    request_job=agent_usage_marts_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def agent_usage_marts_after_models(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """Refresh a tenant's usage marts after its agent models were refreshed."""
    return follow_up_request(context.dagster_run, "usage-marts")


def changed_budgets(conn: Connection, since: str | None) -> tuple[set[str], str | None]:
    """Tenants with a budget created or changed (amount, thresholds) after ``since``; the newest stamp."""
    rows = conn.execute(
        text(
            "select tenant_id, max(updated_at) from control.budgets "
            "where cast(:since as timestamptz) is null or updated_at > cast(:since as timestamptz) "
            "group by tenant_id"
        ),
        {"since": since},
    ).all()
    stamps: list[datetime] = [row[1] for row in rows]
    newest = max(stamps).isoformat() if stamps else since
    return {str(row[0]) for row in rows}, newest


def summary(tenants: Iterable[str], alerts: int, delivery: DeliveryReport) -> str:
    email = delivery.skipped or f"{len(delivery.sent)} email(s) sent, {len(delivery.retrying)} to retry"
    return f"evaluated budgets of {', '.join(sorted(tenants)) or 'no tenant'}: {alerts} new alert(s); {email}"


@dg.sensor(minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def budget_alerts_sensor(context: dg.SensorEvaluationContext, warehouse: PulseWarehouse) -> dg.SensorResult:
    """Evaluate budgets after each refresh of the usage marts, then deliver due alert emails."""
    state = json.loads(context.cursor or "{}")
    tenants, newest = materialized_partitions(context.instance, BUDGET_UTILIZATION, state.get("after"))
    engine = warehouse.engine()
    with engine.connect() as conn:
        changed, stamp = changed_budgets(conn, state.get("budgets"))
    tenants |= changed
    result = run_budget_alerts(
        engine,
        tenant_ids=tenants,
        delivery_time_budget_seconds=DELIVERY_TIME_BUDGET_SECONDS,
    )
    message = summary(tenants, len(result.alerts), result.delivery)
    if tenants or result.delivery.sent or result.delivery.retrying:
        context.log.info(message)
    return dg.SensorResult(
        cursor=json.dumps({"after": newest, "budgets": stamp}),
        skip_reason=message,
    )
