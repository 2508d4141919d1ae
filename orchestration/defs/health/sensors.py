"""Health alerts follow the data: usage marts → health mart → health evaluation → email.

Two sensors:

- ``account_health_after_usage_marts``: when the usage marts of a tenant were refreshed
  (``agent_usage_marts``, itself started after each refresh of the agent models), rescore the
  same tenant. Tenant syncs build the health mart themselves, and the half-hourly schedule
  rescores everyone.
- ``account_health_alerts_sensor``: reads every new materialization of
  ``marts/fct_account_health_daily`` (whatever run made it) and evaluates those tenants'
  latest day, then delivers the due emails of the outbox. The ledger makes evaluation
  idempotent, so a re-run, a lost cursor or a backfill never alerts twice (pulse.health).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import dagster as dg

from orchestration.defs.budgets.jobs import agent_usage_marts_job
from orchestration.defs.health.jobs import ACCOUNT_HEALTH, account_health_job, missing_inputs, not_ready
from orchestration.lib.partitions import follow_up_request, materialized_partitions
from orchestration.lib.resources import PulseWarehouse
from pulse.budgets.mail import DeliveryReport
from pulse.health import run_health_alerts

#: A sensor tick must end well inside Dagster's evaluation timeout; emails left wait a tick.
DELIVERY_TIME_BUDGET_SECONDS = 20.0


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[agent_usage_marts_job],
    request_job=account_health_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def account_health_after_usage_marts(
    context: dg.RunStatusSensorContext, warehouse: PulseWarehouse
) -> dg.RunRequest | dg.SkipReason:
    """Rescore a tenant's account health after its usage marts were refreshed."""
    with warehouse.engine().connect() as conn:
        missing = missing_inputs(conn)
    if missing:
        return dg.SkipReason(not_ready(missing))
    return rescore_request(context.dagster_run)


def rescore_request(run: dg.DagsterRun) -> dg.RunRequest | dg.SkipReason:
    """The health run that follows a successful run of a tenant's usage marts (one per run)."""
    return follow_up_request(run, "account-health")


def summary(tenants: Iterable[str], alerts: int, delivery: DeliveryReport) -> str:
    email = delivery.skipped or f"{len(delivery.sent)} email(s) sent, {len(delivery.retrying)} to retry"
    return f"evaluated account health of {', '.join(sorted(tenants)) or 'no tenant'}: {alerts} new alert(s); {email}"


@dg.sensor(minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def account_health_alerts_sensor(context: dg.SensorEvaluationContext, warehouse: PulseWarehouse) -> dg.SensorResult:
    """Evaluate account health after each refresh of the health mart, then deliver due emails."""
    state = json.loads(context.cursor or "{}")
    tenants, newest = materialized_partitions(context.instance, ACCOUNT_HEALTH, state.get("after"))
    result = run_health_alerts(
        warehouse.engine(),
        tenant_ids=tenants,
        delivery_time_budget_seconds=DELIVERY_TIME_BUDGET_SECONDS,
    )
    message = summary(tenants, len(result.alerts), result.delivery)
    if tenants or result.delivery.sent or result.delivery.retrying:
        context.log.info(message)
    return dg.SensorResult(cursor=json.dumps({"after": newest}), skip_reason=message)
