"""The spine end to end for one tenant partition: sandbox → dlt → dbt → marts, through Dagster.

Expected figures are computed independently from the sandbox's own world (the source of
truth the API serves), not from the warehouse.
"""

from __future__ import annotations

from datetime import datetime
from statistics import median
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import text

from connectors.sandbox import SandboxServer, token_for
from orchestration.defs.tenancy.sensors import tenant_partitions_sensor
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.run import materialize_tenant
from pulse import control
from pulse.db import admin_engine
from pulse.settings import Settings


def add_tenant_with_github(settings: Settings, slug: str, base_url: str, token: str) -> int:
    with admin_engine(settings).begin() as conn:
        control.add_tenant(conn, slug, slug.title(), actor="test")
        source = control.add_source(
            conn,
            slug,
            "github",
            "github",
            base_url,
            credentials={"token": token},
            config={"org": f"{slug}-eng"},
            secret_key=settings.secret_key,
            actor="test",
        )
    return source.source_id


def expected_figures(sandbox: SandboxServer, slug: str) -> dict[str, Any]:
    """Hand-computed from the sandbox world: what fct_pull_requests must say for ``slug``."""
    hours: list[float] = []
    merged = without_review = 0
    prs = list(sandbox.world(slug).pull_requests())
    for pr in prs:
        counted = [
            r
            for r in pr.reviews
            if r.state != "PENDING" and r.submitted_at is not None and r.user.login != pr.author.login
        ]
        if counted:
            first: datetime = min(r.submitted_at for r in counted if r.submitted_at)
            hours.append(round((first - pr.created_at).total_seconds() / 3600, 2))
        if pr.merged_at is not None:
            merged += 1
            if not any(r.submitted_at and r.submitted_at <= pr.merged_at for r in counted):
                without_review += 1
    return {"prs": len(prs), "merged": merged, "without_review": without_review, "median_hours": median(hours)}


def mart_figures(settings: Settings, slug: str) -> dict[str, Any]:
    with admin_engine(settings).connect() as conn:
        row = conn.execute(
            text(
                "select count(*) as prs, count(*) filter (where is_merged) as merged, "
                "count(*) filter (where is_merged_without_review) as without_review, "
                "percentile_cont(0.5) within group (order by hours_to_first_review) as median_hours "
                "from marts.fct_pull_requests where tenant_id = :t"
            ),
            {"t": slug},
        ).one()
    return {
        "prs": row.prs,
        "merged": row.merged,
        "without_review": row.without_review,
        "median_hours": round(float(row.median_hours), 4),
    }


def test_materializing_a_tenant_partition_builds_its_marts(settings: Settings, sandbox: SandboxServer) -> None:
    add_tenant_with_github(settings, "pipe_a", sandbox.url, token_for("pipe_a"))

    outcome = materialize_tenant(settings, "pipe_a")

    assert outcome.success, outcome.error
    expected = expected_figures(sandbox, "pipe_a")
    expected["median_hours"] = round(expected["median_hours"], 4)
    assert mart_figures(settings, "pipe_a") == expected
    instance = dg.DagsterInstance.get()
    for key in (["raw", "github", "pull_requests"], ["staging", "stg_github__reviews"], ["marts", "fct_pull_requests"]):
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None and event.dagster_event is not None
        assert event.dagster_event.partition == "pipe_a"
    raw_event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "github", "pull_requests"]))
    assert raw_event is not None and raw_event.asset_materialization is not None
    assert raw_event.asset_materialization.metadata["rows_loaded"].value == expected["prs"]
    check_key = dg.AssetCheckKey(
        dg.AssetKey(["marts", "fct_pull_requests"]), "unique_per_tenant_fct_pull_requests_pull_request_id"
    )
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])
    assert [execution.status.value for execution in check.values()] == ["SUCCEEDED"]
    # a test its table's unique index stands for is answered from the catalog, not run by dbt
    [execution] = check.values()
    assert execution.event is not None and execution.event.dagster_event is not None
    evaluation = execution.event.dagster_event.event_specific_data
    assert evaluation.metadata["enforced_by"].value == (
        "a unique index on marts.fct_pull_requests (tenant_id, pull_request_id)"
    )
    # a view's column rules run in dbt, as one test
    view_check = dg.AssetCheckKey(dg.AssetKey(["staging", "stg_github__reviews"]), "column_rules_stg_github__reviews")
    [view_execution] = instance.event_log_storage.get_latest_asset_check_execution_by_key([view_check]).values()
    assert view_execution.status.value == "SUCCEEDED"
    assert view_execution.event is not None and view_execution.event.dagster_event is not None
    assert "enforced_by" not in view_execution.event.dagster_event.event_specific_data.metadata
    with admin_engine(settings).connect() as conn:
        status = conn.execute(
            text("select last_sync_status, consecutive_failures from control.sources where tenant_id = 'pipe_a'")
        ).one()
    assert tuple(status) == ("succeeded", 0)


def test_a_rejected_token_fails_the_run_clearly_and_loads_nothing(settings: Settings, sandbox: SandboxServer) -> None:
    add_tenant_with_github(settings, "pipe_bad", sandbox.url, "ghp_not_a_valid_token")

    outcome = materialize_tenant(settings, "pipe_bad")

    assert not outcome.success
    assert outcome.error is not None
    assert "'github'" in outcome.error and "pipe_bad" in outcome.error
    assert "ghp_not_a_valid_token" not in outcome.error
    with admin_engine(settings).connect() as conn:
        status = conn.execute(
            text(
                "select last_sync_status, last_sync_error, consecutive_failures from control.sources "
                "where tenant_id = 'pipe_bad'"
            )
        ).one()
        raw = conn.execute(text("select to_regclass('raw_github__pipe_bad.pull_requests')")).scalar()
        marts = conn.execute(text("select count(*) from marts.fct_pull_requests where tenant_id = 'pipe_bad'")).scalar()
    assert status.last_sync_status == "failed"
    assert status.consecutive_failures == 1
    assert "rejected" in status.last_sync_error and "ghp_not_a_valid_token" not in status.last_sync_error
    assert (raw, marts) == (None, 0)


def test_the_sensor_keeps_tenant_partitions_in_step_with_the_control_plane(settings: Settings) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenant", ["gone_tenant"])
    with admin_engine(settings).begin() as conn:
        control.add_tenant(conn, "sensor_new", "New", actor="test")
        control.add_tenant(conn, "sensor_old", "Old", actor="test")
        control.deactivate_tenant(conn, "sensor_old", actor="test")
        active = set(conn.execute(text("select slug from control.tenants where is_active")).scalars())

    context = dg.build_sensor_context(instance=instance, resources={"warehouse": PulseWarehouse()})
    result = tenant_partitions_sensor(context)

    assert isinstance(result, dg.SensorResult)
    requests = result.dynamic_partitions_requests or []
    added = [key for r in requests if isinstance(r, dg.AddDynamicPartitionsRequest) for key in r.partition_keys]
    deleted = [key for r in requests if isinstance(r, dg.DeleteDynamicPartitionsRequest) for key in r.partition_keys]
    assert set(added) == active and "sensor_new" in added and "sensor_old" not in added
    assert deleted == ["gone_tenant"]
    assert tenant_partitions.name == "tenant"


@pytest.mark.usefixtures("settings")
def test_definitions_form_one_lineage_graph() -> None:
    from orchestration.lib.run import load_definitions

    graph = load_definitions().resolve_asset_graph()
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents["staging/stg_github__pull_requests"] == {"raw/github/pull_requests"}
    assert parents["staging/stg_github__reviews"] == {"raw/github/reviews"}
    assert parents["marts/fct_pull_requests"] == {"intermediate/int_pull_requests_unified"}

    def ancestors(key: str) -> set[str]:
        seen: set[str] = set()
        todo = [key]
        while todo:
            for parent in parents[todo.pop()] - seen:
                seen.add(parent)
                todo.append(parent)
        return seen

    # Every tool reaches the marts through the unified models, in the one graph.
    assert {"raw/github/pull_requests", "raw/azure_devops_git/pull_requests"} <= ancestors("marts/fct_pr_health")
    assert {"raw/jira/issues", "raw/clickup/tasks", "raw/azure_boards/work_items"} <= ancestors("marts/fct_sprints")
    assert parents["raw/github/reviews"] == {"raw/github/pull_requests"}
