"""Great Expectations suites against a real PostgreSQL, and their checks in real Dagster runs.

The real ``fct_agent_usage_daily`` suite runs on a table of the same shape in a test schema
(``quality_test``), so no dbt build is needed and the marts other tests build are untouched:

- acme (3 rows): one row with success_rate 1.4 (140 %, the rate is a share from 0 to 1) and
  one with p50 40 s above p90 30 s → two error-severity failures, one offending row each;
- globex (2 rows): everything holds;
- initech (1 row): good values, but its newest day is 10 days old → only the freshness
  expectation (warn) fails.

In Dagster, the check of that suite sits on a stand-in for the mart's asset with one asset
downstream: acme's run stops before the downstream asset; globex's and initech's run it.
"""

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from orchestration.defs.quality.factory import CHECK_NAME, build_quality_check, quality_checks_for
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse
from pulse.db import admin_engine
from pulse.quality import (
    SUITES,
    ExpectationResult,
    NotNull,
    Severity,
    Suite,
    SuiteResult,
    suites_by_model,
    validate_partition,
)
from pulse.quality.suites import WARN

SCHEMA = "quality_test"
TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)
STALE_DAY = TODAY - timedelta(days=10)
USAGE = replace(suites_by_model()["fct_agent_usage_daily"], schema=SCHEMA)
KEY = dg.AssetKey([SCHEMA, "fct_agent_usage_daily"])

COLUMNS = """
    tenant_id text not null, usage_date date not null, team_name text, user_email text, agent_type text,
    model_name text, status text, runs integer, finished_runs integer, succeeded_runs integer,
    cost_usd numeric(18, 6), success_rate numeric(6, 4), p50_duration_seconds numeric(14, 3),
    p90_duration_seconds numeric(14, 3)
"""
# tenant, day, team, email, runs, finished, succeeded, cost, success_rate, p50, p90
ROWS: list[tuple[str, date, str, str, int, int, int, str, str | None, str | None, str | None]] = [
    ("acme", YESTERDAY, "Platform", "ada@acme.example", 4, 4, 3, "1.20", "0.75", "12", "30"),
    ("acme", YESTERDAY, "Platform", "bob@acme.example", 5, 5, 5, "2.00", "1.4", "10", "20"),
    ("acme", TODAY, "Web", "cy@acme.example", 2, 2, 1, "0.40", "0.5", "40", "30"),
    ("globex", YESTERDAY, "Core", "gus@globex.example", 3, 2, 2, "0.90", "1", "5", "9"),
    ("globex", TODAY, "Core", "gia@globex.example", 1, 0, 0, "0", None, None, None),
    ("initech", STALE_DAY, "Ops", "ian@initech.example", 2, 2, 1, "0.10", "0.5", "3", "4"),
]


@pytest.fixture(scope="module")
def usage_table(db_url: str) -> Iterator[str]:
    engine = admin_engine()
    with engine.begin() as conn:
        conn.execute(sa.text(f"drop schema if exists {SCHEMA} cascade"))
        conn.execute(sa.text(f"create schema {SCHEMA}"))
        conn.execute(sa.text(f"create table {SCHEMA}.fct_agent_usage_daily ({COLUMNS})"))
        for tenant, day, team, person, runs, finished, succeeded, cost, rate, p50, p90 in ROWS:
            conn.execute(
                sa.text(
                    f"insert into {SCHEMA}.fct_agent_usage_daily (tenant_id, usage_date, team_name, user_email, "
                    "agent_type, model_name, status, runs, finished_runs, succeeded_runs, cost_usd, success_rate, "
                    "p50_duration_seconds, p90_duration_seconds) values (:tenant, :day, :team, :person, "
                    "'claude-code', 'claude-sonnet-4-5', 'succeeded', :runs, :finished, :succeeded, "
                    "cast(:cost as numeric), cast(:rate as numeric), cast(:p50 as numeric), cast(:p90 as numeric))"
                ),
                {
                    "tenant": tenant,
                    "day": day,
                    "team": team,
                    "person": person,
                    "runs": runs,
                    "finished": finished,
                    "succeeded": succeeded,
                    "cost": cost,
                    "rate": rate,
                    "p50": p50,
                    "p90": p90,
                },
            )
    yield db_url
    with engine.begin() as conn:
        conn.execute(sa.text(f"drop schema if exists {SCHEMA} cascade"))


def _by_key(outcome: SuiteResult) -> dict[str, ExpectationResult]:
    return {result.expectation.key: result for result in outcome.results}


def test_a_rate_above_one_and_p50_above_p90_fail_the_tenant_with_error_severity(usage_table: str) -> None:
    outcome = validate_partition(USAGE, usage_table, "acme")

    assert outcome.row_count == 3
    assert not outcome.passed
    assert outcome.severity is Severity.ERROR
    assert [result.expectation.key for result in outcome.error_failures] == [
        "between:success_rate",
        "ordered:p50_duration_seconds,p90_duration_seconds",
    ]
    assert outcome.warn_failures == ()
    assert outcome.unexpected_counts() == {
        "between:success_rate": 1,
        "ordered:p50_duration_seconds,p90_duration_seconds": 1,
    }
    rate = next(result for result in outcome.failures if result.expectation.key == "between:success_rate")
    assert rate.element_count == 3
    assert rate.observed_value == [1.4]
    assert rate.finding() == "broken in 1 of 3 rows (e.g. 1.4)"
    # The offending rows, by the mart's key columns, with the value checked.
    assert outcome.offending_rows()["between:success_rate"] == [
        {
            "usage_date": YESTERDAY.isoformat(),
            "team_name": "Platform",
            "user_email": "bob@acme.example",
            "agent_type": "claude-code",
            "model_name": "claude-sonnet-4-5",
            "status": "succeeded",
            "success_rate": 1.4,
        }
    ]
    percentiles = next(result for result in outcome.failures if result.expectation.key.startswith("ordered:p50"))
    assert percentiles.observed_value == [[40, 30]]  # [p50, p90]
    assert percentiles.finding() == "broken in 1 of 3 rows (e.g. 40 > 30)"
    assert [row["user_email"] for row in outcome.offending_rows()[percentiles.expectation.key]] == ["cy@acme.example"]
    fresh = _by_key(outcome)["fresh:usage_date"]
    assert fresh.success and fresh.observed_value == TODAY.isoformat()


def test_a_good_partition_passes_whatever_other_tenants_hold(usage_table: str) -> None:
    outcome = validate_partition(USAGE, usage_table, "globex")

    assert outcome.passed, outcome.failures_markdown()
    assert outcome.row_count == 2
    assert len(outcome.results) == len(USAGE.expectations) == 9
    rate = _by_key(outcome)["between:success_rate"]
    assert rate.unexpected_count == 0 and rate.element_count == 2
    assert outcome.summary() == f"{SCHEMA}.fct_agent_usage_daily (tenant globex, 2 rows): all 9 expectations hold"


def test_stale_data_fails_only_the_freshness_expectation_with_warn_severity(usage_table: str) -> None:
    outcome = validate_partition(USAGE, usage_table, "initech")

    assert not outcome.passed
    assert outcome.severity is Severity.WARN
    assert outcome.error_failures == ()
    [stale] = outcome.warn_failures
    assert stale.expectation.key == "fresh:usage_date"
    assert stale.observed_value == STALE_DAY.isoformat()
    assert stale.finding() == f"newest is {STALE_DAY.isoformat()}, older than 3 days"


def test_every_tenant_at_once_names_the_tenant_of_each_offending_row(usage_table: str) -> None:
    outcome = validate_partition(USAGE, usage_table, None)

    assert outcome.row_count == 6
    assert outcome.unexpected_counts()["between:success_rate"] == 1
    [row] = outcome.offending_rows()["between:success_rate"]
    assert (row["tenant_id"], row["user_email"], row["success_rate"]) == ("acme", "bob@acme.example", 1.4)


def test_a_missing_table_or_column_fails_with_what_to_fix(usage_table: str) -> None:
    missing_table = validate_partition(replace(suites_by_model()["fct_agent_runs"], schema=SCHEMA), usage_table, "acme")
    assert missing_table.problem == (
        f"table {SCHEMA}.fct_agent_runs does not exist; build the mart (dbt) before checking it"
    )
    assert missing_table.severity is Severity.ERROR and not missing_table.passed

    suite = Suite(
        model="fct_agent_usage_daily",
        schema=SCHEMA,
        description="a suite that names a column the table lacks",
        expectations=(NotNull(WARN, "user_email"), NotNull(WARN, "no_such_column")),
    )
    outcome = validate_partition(suite, usage_table, "acme")
    assert [(result.expectation.key, result.success, result.error) for result in outcome.results] == [
        ("notnull:user_email", True, None),
        (
            "notnull:no_such_column",
            False,
            f"column no_such_column is not in {SCHEMA}.fct_agent_usage_daily; fix the suite or the model",
        ),
    ]


def _run(instance: dg.DagsterInstance, tenant: str, ran: list[str]) -> dg.ExecuteInProcessResult:
    """Materialize the stand-in mart, its quality check and one downstream asset for a tenant."""

    @dg.asset(key=KEY, partitions_def=tenant_partitions)
    def mart() -> None:
        """Stands in for the dbt model (the rows are already in place)."""

    @dg.asset(deps=[KEY], partitions_def=tenant_partitions)
    def usage_report(context: dg.AssetExecutionContext) -> None:
        ran.append(context.partition_key)

    return dg.materialize(
        [mart, usage_report, build_quality_check(USAGE)],
        partition_key=tenant,
        instance=instance,
        resources={"warehouse": PulseWarehouse()},
        raise_on_error=False,
    )


@pytest.fixture()
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(tenant_partitions.name or "tenant", ["acme", "globex", "initech"])
        yield instance


def test_an_error_failure_stops_downstream_assets_and_a_warning_does_not(
    usage_table: str, instance: dg.DagsterInstance
) -> None:
    check = build_quality_check(USAGE)
    [spec] = check.check_specs
    assert (spec.asset_key, spec.name, spec.blocking) == (KEY, CHECK_NAME, True)
    ran: list[str] = []

    bad = _run(instance, "acme", ran)
    assert not bad.success
    assert ran == []
    started = [event.step_key for event in bad.all_events if event.event_type_value == "STEP_START"]
    assert started == ["quality_test__fct_agent_usage_daily", check.op.name]  # usage_report never started
    assert [event.step_key for event in bad.all_events if event.is_step_failure] == [check.op.name]
    assert [event.asset_key for event in bad.get_asset_materialization_events()] == [KEY]
    [evaluation] = bad.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.ERROR)
    metadata = {name: value.value for name, value in evaluation.metadata.items()}
    assert metadata["tenant"] == "acme"
    assert (metadata["rows_checked"], metadata["failed_errors"], metadata["failed_warnings"]) == (3, 2, 0)
    assert metadata["unexpected_counts"] == {
        "between:success_rate": 1,
        "ordered:p50_duration_seconds,p90_duration_seconds": 1,
    }
    assert metadata["offending_rows"]["between:success_rate"][0]["user_email"] == "bob@acme.example"
    assert "| error | `success_rate between 0 and 1` | broken in 1 of 3 rows (e.g. 1.4) |" in str(
        metadata["failed_expectations"]
    )

    good = _run(instance, "globex", ran)
    assert good.success
    [evaluation] = good.get_asset_check_evaluations()
    assert evaluation.passed
    assert ran == ["globex"]

    stale = _run(instance, "initech", ran)
    assert stale.success
    [evaluation] = stale.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert evaluation.metadata["failed_warnings"].value == 1
    assert ran == ["globex", "initech"]


def test_the_code_location_checks_the_marts_it_has_without_importing_great_expectations() -> None:
    """In a fresh interpreter: load the definitions; GE must not be imported by that."""
    script = textwrap.dedent(
        """
        import json, sys
        from orchestration.lib.run import load_definitions
        graph = load_definitions().resolve_asset_graph()
        checks = {
            key.asset_key.to_user_string(): graph.get_check_spec(key).blocking
            for key in graph.asset_check_keys if key.name == "great_expectations"
        }
        models = sorted(key.to_user_string() for key in graph.get_all_asset_keys() if key.path[0] == "marts")
        print(json.dumps({"checks": checks, "models": models, "gx": "great_expectations" in sys.modules}))
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(completed.stdout.strip().splitlines()[-1])

    assert found["gx"] is False
    expected = {f"marts/{suite.model}": suite.blocking for suite in SUITES if f"marts/{suite.model}" in found["models"]}
    assert found["checks"] == expected
    assert found["checks"]["marts/fct_agent_usage_daily"] is True


def test_a_suite_whose_mart_is_not_in_the_manifest_is_skipped() -> None:
    not_built = Suite(model="fct_not_built_yet", description="", expectations=(NotNull(WARN, "x"),))
    manifest_keys = [dg.AssetKey(["marts", "fct_agent_runs"]), dg.AssetKey(["staging", "stg_x"])]

    checks = quality_checks_for(manifest_keys, suites=(*SUITES, not_built))

    assert [spec.asset_key for check in checks for spec in check.check_specs] == [manifest_keys[0]]
