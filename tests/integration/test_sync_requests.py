"""A requested sync runs through Dagster and its outcome lands back on the request."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import text

from connectors.sandbox import SandboxServer, token_for
from orchestration.defs.tenancy.sync_requests import (
    REQUEST_TAG,
    sync_request_succeeded,
    sync_requests_sensor,
)
from orchestration.lib.instance import ensure_dagster_home
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.run import load_definitions
from pulse import control
from pulse.db import admin_engine
from pulse.settings import Settings


def request_sync(settings: Settings, tenant: str) -> int:
    with admin_engine(settings).begin() as conn:
        return int(
            conn.execute(
                text(
                    "insert into control.sync_requests (tenant_id, requested_by) values (:t, 'ada') "
                    "returning sync_request_id"
                ),
                {"t": tenant},
            ).scalar_one()
        )


def statuses(settings: Settings, ids: list[int]) -> list[tuple[str, str | None]]:
    with admin_engine(settings).connect() as conn:
        rows = conn.execute(
            text(
                "select status, dagster_run_id from control.sync_requests "
                "where sync_request_id = any(:ids) order by sync_request_id"
            ),
            {"ids": ids},
        ).all()
    return [(row[0], row[1]) for row in rows]


def test_pending_requests_run_once_per_tenant_and_record_the_outcome(
    settings: Settings, sandbox: SandboxServer
) -> None:
    with admin_engine(settings).begin() as conn:
        control.add_tenant(conn, "sr_a", "Sync A", actor="test")
        control.add_tenant(conn, "sr_unknown", "No partition yet", actor="test")
        control.add_source(
            conn,
            "sr_a",
            "github",
            "github",
            sandbox.url,
            credentials={"token": token_for("sr_a")},
            config={"org": "sr_a-eng"},
            secret_key=settings.secret_key,
            actor="test",
        )
    first, second = request_sync(settings, "sr_a"), request_sync(settings, "sr_a")
    waiting = request_sync(settings, "sr_unknown")
    ensure_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("tenant", ["sr_a"])

    with dg.build_sensor_context(instance=instance, resources={"warehouse": PulseWarehouse()}) as context:
        result = sync_requests_sensor(context)
    assert isinstance(result, dg.SensorResult)
    ours = [r for r in result.run_requests or [] if r.partition_key == "sr_a"]
    assert [r.tags[REQUEST_TAG] for r in ours] == [f"{first},{second}"]
    assert statuses(settings, [first, second, waiting]) == [("running", None), ("running", None), ("pending", None)]

    run = (
        load_definitions()
        .resolve_job_def("tenant_sync")
        .execute_in_process(partition_key="sr_a", instance=instance, tags=ours[0].tags, raise_on_error=False)
    )
    assert run.success
    dagster_run = instance.get_run_by_id(run.run_id)
    assert dagster_run is not None
    success_event = next(
        e for e in instance.all_logs(run.run_id) if e.dagster_event_type == dg.DagsterEventType.RUN_SUCCESS
    )
    with dg.build_run_status_sensor_context(
        sensor_name="sync_request_succeeded",
        dagster_instance=instance,
        dagster_run=dagster_run,
        dagster_event=success_event.dagster_event,  # type: ignore[arg-type]
        resources={"warehouse": PulseWarehouse()},
    ) as context:
        sync_request_succeeded(context)

    assert statuses(settings, [first, second, waiting]) == [
        ("succeeded", run.run_id),
        ("succeeded", run.run_id),
        ("pending", None),
    ]
    with admin_engine(settings).connect() as conn:
        prs = conn.execute(text("select count(*) from marts.fct_pull_requests where tenant_id = 'sr_a'")).scalar()
    assert prs == sum(1 for _ in sandbox.world("sr_a").pull_requests())
