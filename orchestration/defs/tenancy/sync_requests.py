"""Sync requests: a person asks for fresh data (control.sync_requests); Dagster runs it and says how it went."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import Connection, text

from orchestration.defs.ingest.external import (
    agent_import_runs,
    agent_mcp_runs,
    claude_code_events,
    claude_code_metric_points,
)
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse

REQUEST_TAG = "pulse/sync_request_id"

#: Everything Dagster can materialize for a tenant (the pushed raw tables are written elsewhere).
tenant_sync_job = dg.define_asset_job(
    "tenant_sync",
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.assets(
        *(spec.key for spec in (claude_code_events, claude_code_metric_points, agent_import_runs, agent_mcp_runs))
    ),
    description="Sync one tenant: every source, then every model.",
)


def claim_pending_requests(conn: Connection, partitions: set[str]) -> list[tuple[int, str]]:
    """Mark pending requests of known tenant partitions as running; one run per tenant serves them all."""
    rows = conn.execute(
        text(
            "update control.sync_requests set status = 'running', started_at = now() "
            "where status = 'pending' and tenant_id = any(:tenants) returning sync_request_id, tenant_id"
        ),
        {"tenants": sorted(partitions)},
    ).all()
    return [(int(row[0]), str(row[1])) for row in rows]


def record_outcome(conn: Connection, request_ids: list[int], run_id: str, error: str | None) -> None:
    conn.execute(
        text(
            "update control.sync_requests set status = :status, finished_at = now(), dagster_run_id = :run_id, "
            "error = :error where sync_request_id = any(:ids)"
        ),
        {"status": "failed" if error else "succeeded", "run_id": run_id, "error": error, "ids": request_ids},
    )


@dg.sensor(job=tenant_sync_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def sync_requests_sensor(context: dg.SensorEvaluationContext, warehouse: PulseWarehouse) -> dg.SensorResult:
    """Launch a tenant sync for pending requests (several requests of one tenant share one run)."""
    partitions = set(context.instance.get_dynamic_partitions(tenant_partitions.name or "tenant"))
    with warehouse.engine().begin() as conn:
        claimed = claim_pending_requests(conn, partitions)
    by_tenant: dict[str, list[int]] = {}
    for request_id, tenant in claimed:
        by_tenant.setdefault(tenant, []).append(request_id)
    requests = [
        dg.RunRequest(
            partition_key=tenant,
            run_key=f"sync-requests:{','.join(map(str, ids))}",
            tags={REQUEST_TAG: ",".join(map(str, ids))},
        )
        for tenant, ids in sorted(by_tenant.items())
    ]
    return dg.SensorResult(run_requests=requests, skip_reason=None if requests else "no pending sync requests")


def _request_ids(run: dg.DagsterRun) -> list[int]:
    return [int(value) for value in run.tags.get(REQUEST_TAG, "").split(",") if value]


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[tenant_sync_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def sync_request_succeeded(context: dg.RunStatusSensorContext, warehouse: PulseWarehouse) -> None:
    ids = _request_ids(context.dagster_run)
    if ids:
        with warehouse.engine().begin() as conn:
            record_outcome(conn, ids, context.dagster_run.run_id, None)


@dg.run_failure_sensor(monitored_jobs=[tenant_sync_job], default_status=dg.DefaultSensorStatus.RUNNING)
def sync_request_failed(context: dg.RunFailureSensorContext, warehouse: PulseWarehouse) -> None:
    ids = _request_ids(context.dagster_run)
    if ids:
        message = context.failure_event.message or "the sync run failed; see the Dagster UI"
        with warehouse.engine().begin() as conn:
            record_outcome(conn, ids, context.dagster_run.run_id, message)
