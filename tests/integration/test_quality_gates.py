"""A mart that fails its blocking quality check stops the marts built from it, in the same run.

The real definitions (dbt steps, Great Expectations checks), in process, for tenant qgate_a:
two runs reported through `pulse mcp`'s report path, the ``agent_models`` job (→
``int_agent_runs``), then a job of the agent marts and of ``fct_work_item_compliance`` with
the marts built from it. That job has four dbt steps (orchestration/lib/dbt_steps.py):

- ``dbt_models``: fct_agent_runs, fct_work_item_compliance;
- ``dbt_models_after_fct_agent_runs``: usage daily, team ranks, top users, budget utilization;
- ``dbt_models_after_fct_work_item_compliance``: sprints, developer sprints, compliance flags;
- ``dbt_models_after_fct_agent_runs_and_fct_work_item_compliance``: account health.

1. Good data: every asset of the job is materialized and every check passes.
2. A pricing bug leaves one run with a negative cost in int_agent_runs: fct_agent_runs is
   rebuilt with it and its check fails with ERROR severity; the five marts built from it are
   not built (their rows are those of the first run); the compliance marts, built from no
   failed mart, are.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from orchestration.defs.transform.assets import MANIFEST, STEPS
from orchestration.lib.dbt_targets import STEP_TARGET
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.run import load_definitions
from pulse import control
from pulse.budgets.store import set_budget
from pulse.db import admin_engine
from pulse.dbt import DBT_PROJECT_DIR
from pulse.mcp.runs import AgentIdentity, RunStore
from pulse.settings import Settings
from tests.conftest import run_dbt

TENANT = "qgate_a"
ADA = "ada@qgate-a.example"


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


AGENT_RUNS = _key("fct_agent_runs")
COMPLIANCE = _key("fct_work_item_compliance")
#: Built from fct_agent_runs (the health mart from both checked marts).
AFTER_AGENT_RUNS = {
    _key(name)
    for name in (
        "fct_agent_usage_daily",
        "fct_agent_team_ranks_monthly",
        "fct_agent_top_users_monthly",
        "fct_agent_spend_monthly",
        "fct_budget_utilization",
        "fct_account_health_daily",
    )
}
#: Built from fct_work_item_compliance only.
AFTER_COMPLIANCE = {_key(name) for name in ("fct_sprints", "fct_developer_sprints", "fct_compliance_flags")}
JOB_ASSETS = {AGENT_RUNS, COMPLIANCE} | AFTER_AGENT_RUNS | AFTER_COMPLIANCE
#: The job's marts with a quality suite (every one's check blocks but fct_agent_spend_monthly's, of warnings).
CHECKED = {AGENT_RUNS, COMPLIANCE, _key("fct_sprints")} | (AFTER_AGENT_RUNS - {_key("fct_account_health_daily")})
CHECK = "great_expectations"
AGENT_RUNS_CHECK = "marts__fct_agent_runs_great_expectations"
STEP_AFTER_RUNS = "dbt_models_after_fct_agent_runs"
STEP_AFTER_COMPLIANCE = "dbt_models_after_fct_work_item_compliance"
STEP_AFTER_BOTH = "dbt_models_after_fct_agent_runs_and_fct_work_item_compliance"
MART_TABLES = sorted(key.path[1] for key in JOB_ASSETS)


def _cleanup(conn: sa.Connection) -> None:
    params = {"t": TENANT}
    for relation in [f"marts.{table}" for table in MART_TABLES] + ["intermediate.int_agent_runs"]:
        if conn.execute(sa.text("select to_regclass(:r)"), {"r": relation}).scalar() is not None:
            conn.execute(sa.text(f"delete from {relation} where tenant_id = :t"), params)
    conn.execute(sa.text("update control.budget_alerts set announced_by = null where tenant_id = :t"), params)
    for table in ("budget_alerts", "budget_thresholds", "budgets"):
        conn.execute(sa.text(f"delete from control.{table} where tenant_id = :t"), params)
    conn.execute(sa.text(f'drop schema if exists "raw_agent_mcp__{TENANT}" cascade'))
    conn.execute(sa.text("delete from control.tenants where slug = :t"), params)


@pytest.fixture
def tenant(settings: Settings, marts_built: None) -> Iterator[str]:
    """The tenant with an organisation budget and two runs in int_agent_runs (agent_models job)."""
    # The job builds marts only: the views they read are created again first, since a test that
    # drops its tenant's raw schema (`drop schema … cascade`) drops the views built on it.
    run_dbt(["run", "--select", "config.materialized:view"])
    engine = admin_engine(settings)
    with engine.begin() as conn:
        _cleanup(conn)
        control.add_tenant(conn, TENANT, "Quality Gate", actor="test")
        set_budget(conn, TENANT, "100", actor="test")
        now = conn.execute(sa.text("select now()")).scalar_one()
    store = RunStore(engine)
    for run_id, minutes_ago, status in (("r-1", 90, "succeeded"), ("r-2", 30, "failed")):
        store.record(
            AgentIdentity(TENANT, ADA),
            {
                "run_id": run_id,
                "agent_type": "coder",
                "model_name": "claude-sonnet-4-5",
                "status": status,
                "started_at": (now - timedelta(minutes=minutes_ago)).isoformat(),
                "ended_at": (now - timedelta(minutes=minutes_ago - 5)).isoformat(),
                "input_tokens": 1_000_000,
                "output_tokens": 100_000,
            },
        )
    try:
        yield TENANT
    finally:
        with engine.begin() as conn:
            _cleanup(conn)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(tenant_partitions.name or "tenant", [TENANT])
        yield instance


def _rows(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"select * from marts.{table} where tenant_id = :t"), {"t": TENANT}).all()
    return sorted((tuple(row) for row in rows), key=repr)


def _materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events() if event.asset_key}


def _steps(result: dg.ExecuteInProcessResult, event_type: dg.DagsterEventType) -> set[str]:
    return {event.step_key for event in result.all_events if event.event_type == event_type and event.step_key}


def _step_target(run_id: str, step: str) -> Path:
    """The target folder dagster-dbt gave the step's ``dbt build`` in that run."""
    [path] = (DBT_PROJECT_DIR / "target").glob(f"{step}-{run_id[:7]}-*")
    return path


def _dbt_log_events(run_id: str, step: str) -> list[dict[str, Any]]:
    """What the step's ``dbt build`` logged (dbt.log in its target folder; dagster-dbt has dbt log
    in JSON): each event's ``info`` (level, name, msg)."""
    text = (_step_target(run_id, step) / "dbt.log").read_text()
    return [json.loads(line)["info"] for line in text.splitlines() if line.strip()]


def _dbt_results(run_id: str, step: str) -> tuple[dict[str, Any], set[str]]:
    """The args and the unique ids of what the step's ``dbt build`` ran (its run_results.json)."""
    results = json.loads((_step_target(run_id, step) / "run_results.json").read_text())
    return results["args"], {result["unique_id"] for result in results["results"]}


def test_a_failed_error_check_stops_the_marts_built_from_its_mart_and_nothing_else(
    settings: Settings, tenant: str, instance: dg.DagsterInstance
) -> None:
    engine = admin_engine(settings)
    # The project parsed once, as `make` does; each step's dbt then parses partially: the
    # tenant partition reaches dbt in its environment, not as --vars (which would make every
    # tenant's every step parse the whole project again).
    run_dbt(["parse"])
    # a step's target folder of a run eight days ago: the next step removes it (dbt_targets.py)
    stale = DBT_PROJECT_DIR / "target" / "dbt_models-0000000-0000000"
    stale.mkdir(exist_ok=True)
    (stale / "dbt.log").write_text("{}\n")
    for path in (stale / "dbt.log", stale):
        os.utime(path, (time.time() - 8 * 86400,) * 2)
    defs = load_definitions()
    models = defs.resolve_job_def("agent_models").execute_in_process(
        partition_key=TENANT, instance=instance, raise_on_error=False
    )
    assert models.success, [event.message for event in models.all_events if event.is_failure]
    assert not stale.exists()
    logged = [entry.user_message for entry in instance.all_logs(models.run_id)]
    assert "removed 1 dbt target folder(s) of steps more than 7 days old" in logged
    made = _step_target(models.run_id, "dbt_models")
    assert STEP_TARGET.fullmatch(made.name) and (made / "dbt.log").exists()  # what the next steps look for
    job = dg.define_asset_job(
        "quality_gates",
        selection=dg.AssetSelection.groups("marts_agents") | dg.AssetSelection.assets(COMPLIANCE).downstream(),
        executor_def=dg.in_process_executor,
    ).resolve(asset_graph=defs.resolve_asset_graph())
    assert set(job.asset_layer.selected_asset_keys) == JOB_ASSETS

    # 1. Good data: every asset built, every quality check passed.
    good = job.execute_in_process(partition_key=TENANT, instance=instance, raise_on_error=False)

    assert good.success, [event.message for event in good.all_events if event.is_failure]
    assert _materialized(good) == JOB_ASSETS
    quality = {e.asset_key: e.passed for e in good.get_asset_check_evaluations() if e.check_name == CHECK}
    assert quality == dict.fromkeys(CHECKED, True)
    assert {"dbt_models", STEP_AFTER_RUNS, STEP_AFTER_COMPLIANCE, STEP_AFTER_BOTH} <= _steps(
        good, dg.DagsterEventType.STEP_SUCCESS
    )
    # Each step's dbt build ran its own models, their data tests, and no unit test; the tests a
    # constraint stands for were answered from the catalog instead (pulse/enforced_tests.py).
    steps = {step.name: step for step in STEPS}
    from_catalog = {
        (evaluation.asset_key, evaluation.check_name)
        for evaluation in good.get_asset_check_evaluations()
        if evaluation.passed and "enforced_by" in evaluation.metadata
    }
    for name, built in (
        ("dbt_models", {AGENT_RUNS, COMPLIANCE}),
        (STEP_AFTER_RUNS, AFTER_AGENT_RUNS - {_key("fct_account_health_daily")}),
        (STEP_AFTER_COMPLIANCE, AFTER_COMPLIANCE),
        (STEP_AFTER_BOTH, {_key("fct_account_health_daily")}),
    ):
        args, ran = _dbt_results(good.run_id, name)
        assert {unique_id.split(".")[-1] for unique_id in ran if unique_id.startswith("model.")} == {
            key.path[1] for key in built
        }
        assert not [unique_id for unique_id in ran if unique_id.startswith("unit_test.")]
        built_ids = {f"model.pulse.{key.path[1]}" for key in built}
        enforced = {test.unique_id: test for test in steps[name].enforced if test.model_id in built_ids}
        in_dbt = {
            unique_id
            for unique_id, node in MANIFEST["nodes"].items()
            if node["resource_type"] == "test"
            and node.get("attached_node") in built_ids
            and unique_id not in enforced
            and ".".join(node["fqn"]) not in steps[name].deferred_tests
        }
        assert in_dbt <= ran, name
        assert not set(enforced) & ran, name
        assert enforced, name  # every step's models have tests a constraint stands for
        for test in enforced.values():
            assert (_key(test.table), test.name) in from_catalog, (name, test.name)
        assert set(args["exclude"]) == set(steps[name].exclude.split())
        assert not args.get("vars")
        events = _dbt_log_events(good.run_id, name)
        # the step's file log is at info (pulse.dbt.dbt_env): no debug line, such as each statement's
        assert events and {event["level"] for event in events} <= {"info", "warn", "error"}, name
        # every reason for a full parse is announced at info: the step parsed partially
        assert "UnableToPartialParse" not in {event["name"] for event in events}, name
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text("select agent_run_id, cost_usd from marts.fct_agent_runs where tenant_id = :t order by 1"),
            {"t": TENANT},
        ).all()
    # 1M input tokens at 3 USD and 100k output at 15 USD per million: 4.50 each.
    assert [tuple(row) for row in runs] == [("agent_mcp:r-1", Decimal("4.5")), ("agent_mcp:r-2", Decimal("4.5"))]
    before = {table: _rows(engine, table) for table in MART_TABLES}
    assert len(before["fct_agent_usage_daily"]) >= 1
    assert len(before["fct_budget_utilization"]) == 1
    assert len(before["fct_account_health_daily"]) >= 1

    # 2. A pricing bug: one run costs less than nothing.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                # as a rebuild from a newer load of the run would leave it: fct_agent_runs takes the
                # runs int_agent_runs loaded after its watermark (macros/incremental_runs.sql)
                "update intermediate.int_agent_runs set cost_usd = -4.5, source_loaded_at = now()"
                " where tenant_id = :t and agent_run_id = :r"
            ),
            {"t": TENANT, "r": "agent_mcp:r-2"},
        )
    bad = job.execute_in_process(partition_key=TENANT, instance=instance, raise_on_error=False)

    assert not bad.success
    assert _materialized(bad) == {AGENT_RUNS, COMPLIANCE} | AFTER_COMPLIANCE
    assert [event.step_key for event in bad.all_events if event.is_step_failure] == [AGENT_RUNS_CHECK]
    started = _steps(bad, dg.DagsterEventType.STEP_START)
    assert {"dbt_models", STEP_AFTER_COMPLIANCE} <= started
    assert not {STEP_AFTER_RUNS, STEP_AFTER_BOTH} & started
    [evaluation] = [e for e in bad.get_asset_check_evaluations() if e.asset_key == AGENT_RUNS and e.check_name == CHECK]
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.ERROR)
    metadata = {name: value.value for name, value in evaluation.metadata.items()}
    assert (metadata["tenant"], metadata["rows_checked"], metadata["failed_errors"]) == (TENANT, 2, 1)
    assert metadata["unexpected_counts"] == {"between:cost_usd": 1}
    assert [row["agent_run_id"] for row in metadata["offending_rows"]["between:cost_usd"]] == ["agent_mcp:r-2"]
    # The failed mart was rebuilt (the check read it); the marts built from it were not.
    assert _rows(engine, "fct_agent_runs") != before["fct_agent_runs"]
    for key in AFTER_AGENT_RUNS:
        assert _rows(engine, key.path[1]) == before[key.path[1]], key
        latest = instance.get_latest_materialization_event(key)
        assert latest is not None and latest.run_id == good.run_id, key
    for key in AFTER_COMPLIANCE:
        latest = instance.get_latest_materialization_event(key)
        assert latest is not None and latest.run_id == bad.run_id, key
