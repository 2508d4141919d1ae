"""Quality suites as data, and how a Great Expectations result is read, without a database.

The GE result dictionaries below are the shapes GE 1.24 returns for a SQL batch with
``result_format=SUMMARY`` and ``unexpected_index_column_names`` (recorded from real runs).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pulse.dbt import manifest_path
from pulse.quality import (
    ERROR,
    SUITES,
    WARN,
    Between,
    Fresh,
    NotNull,
    Ordered,
    QualityConfigError,
    Severity,
    Suite,
    SuiteResult,
    interpret,
    suites_by_model,
)
from pulse.quality.results import exception_message, failed_to_run, plain
from pulse.quality.runner import partition_query
from pulse.quality.suites import age_words

RATE = Between(ERROR, "success_rate", minimum=0, maximum=1)
PERCENTILES = Ordered(ERROR, "p50_duration_seconds", "p90_duration_seconds")
KEY = NotNull(ERROR, "agent_run_id")
FRESH = Fresh(WARN, "updated_at", max_age=timedelta(hours=48))
SUITE = Suite(model="fct_x", description="test", expectations=(RATE, PERCENTILES, KEY, FRESH), key_columns=("k",))

RATE_FAILED: dict[str, Any] = {
    "element_count": 3,
    "unexpected_count": 1,
    "unexpected_percent": 50.0,
    "partial_unexpected_list": [Decimal("1.4000")],
    "unexpected_index_column_names": ["k"],
    "missing_count": 1,
    "partial_unexpected_index_list": [{"k": "b", "success_rate": Decimal("1.4000")}],
}
PAIR_FAILED: dict[str, Any] = {
    "element_count": 3,
    "unexpected_count": 1,
    # GE lists (column_A, column_B) = (p90, p50)
    "partial_unexpected_list": [(Decimal("2"), Decimal("3"))],
    "partial_unexpected_index_list": [{"k": "b", "p90_duration_seconds": Decimal("2"), "p50_duration_seconds": 3}],
}
MISSING_COLUMN = {
    "MetricConfigurationID(metric_name='column_values.nonnull.condition', ...)": {
        "exception_traceback": "Traceback ...",
        "exception_message": 'Error: The column "nope" in BatchData does not exist.',
        "raised_exception": True,
    }
}


# --- the suites ---------------------------------------------------------------------------


def test_one_suite_per_mart_and_blocking_exactly_when_an_expectation_is_an_error() -> None:
    by_model = suites_by_model()
    assert len(by_model) == len(SUITES)
    for suite in SUITES:
        assert suite.schema == "marts"
        assert suite.expectations, suite.model
        assert suite.blocking == any(expectation.severity is Severity.ERROR for expectation in suite.expectations)
        assert all(isinstance(expectation.severity, Severity) for expectation in suite.expectations)
    assert Suite(model="m", description="", expectations=(FRESH,)).blocking is False


def test_the_suites_declare_what_the_issue_asks_for() -> None:
    def declared(model: str) -> dict[str, str]:
        return {e.describe(): e.severity.value for e in suites_by_model()[model].expectations}

    usage = declared("fct_agent_usage_daily")
    assert usage["success_rate between 0 and 1"] == "error"  # a share (0 to 1), not a percentage
    assert usage["p50_duration_seconds ≤ p90_duration_seconds"] == "error"
    assert usage["newest usage_date at most 3 days old"] == "warn"
    assert usage["tenant_id is never empty"] == "error"
    sprints = declared("fct_sprints")
    assert sprints["say_do_ratio between 0 and 1"] == "error"  # documented as a share, 0 to 1
    assert sprints["dmt_compliance_rate between 0 and 100"] == "error"
    assert sprints["share_reviewed between 0 and 100"] == "error"
    assert sprints["committed_points ≥ 0"] == "error"
    assert declared("fct_work_item_compliance")["work_item_uid is never empty"] == "error"
    pr_health = declared("fct_pr_health")
    assert pr_health["share_reviewed between 0 and 100"] == "error"
    assert pr_health["p50_hours_to_first_review ≤ p90_hours_to_first_review"] == "error"
    assert all(
        expectation.severity is WARN
        for suite in SUITES
        for expectation in suite.expectations
        if isinstance(expectation, Fresh)
    )


def test_suite_columns_exist_in_the_models_the_manifest_documents() -> None:
    """A suite naming a column its (contracted) mart lacks would fail at run time: catch it here."""
    path = manifest_path()
    if not path.exists():
        pytest.skip(f"no dbt manifest at {path}; run `dbt parse` first")
    nodes = json.loads(path.read_text())["nodes"].values()
    columns = {
        node["name"]: {name: (column.get("data_type") or "").lower() for name, column in node["columns"].items()}
        for node in nodes
        if node["resource_type"] == "model" and node["config"].get("schema") == "marts"
    }
    checked = 0
    for suite in SUITES:
        documented = columns.get(suite.model)
        if not documented:  # not built yet, or no documented columns yet
            continue
        checked += 1
        assert set(suite.columns) - set(documented) == set(), suite.model
        for expectation in suite.expectations:
            if isinstance(expectation, Fresh):
                assert documented[expectation.column].startswith(("date", "timestamp")), expectation
    assert checked >= 6  # the agent marts and fct_pull_requests at least


def test_declarations_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="needs a minimum, a maximum or both"):
        Between(ERROR, "x")
    with pytest.raises(ValueError, match="minimum 5 is above maximum 1"):
        Between(ERROR, "x", minimum=5, maximum=1)
    with pytest.raises(ValueError, match=r"expectations declared twice: notnull:x"):
        Suite(model="m", description="", expectations=(NotNull(ERROR, "x"), NotNull(WARN, "x")))
    with pytest.raises(ValueError, match=r"two suites for marts\.m"):
        suites_by_model((Suite(model="m", description="", expectations=()),) * 2)


def test_each_kind_maps_to_its_great_expectations_expectation() -> None:
    assert (RATE.gx_type, RATE.gx_kwargs()) == (
        "ExpectColumnValuesToBeBetween",
        {"column": "success_rate", "min_value": 0, "max_value": 1},
    )
    assert Between(ERROR, "cost_usd", minimum=0).gx_kwargs() == {
        "column": "cost_usd",
        "min_value": 0,
        "max_value": None,
    }
    assert (KEY.gx_type, KEY.gx_kwargs()) == ("ExpectColumnValuesToNotBeNull", {"column": "agent_run_id"})
    assert (PERCENTILES.gx_type, PERCENTILES.gx_kwargs()) == (
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {
            "column_A": "p90_duration_seconds",
            "column_B": "p50_duration_seconds",
            "or_equal": True,
            "ignore_row_if": "either_value_is_missing",
        },
    )
    now = datetime(2026, 3, 10, 6, 30, tzinfo=UTC)
    assert FRESH.oldest_allowed(now, is_date=False) == datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    assert FRESH.oldest_allowed(now, is_date=True) == date(2026, 3, 8)
    assert FRESH.gx_kwargs(fresh_after=date(2026, 3, 8)) == {"column": "updated_at", "min_value": date(2026, 3, 8)}
    with pytest.raises(ValueError, match="needs the moment"):
        FRESH.gx_kwargs()
    assert SUITE.columns == (
        "success_rate",
        "p50_duration_seconds",
        "p90_duration_seconds",
        "agent_run_id",
        "updated_at",
        "k",
    )
    assert (age_words(timedelta(hours=48)), age_words(timedelta(hours=26)), age_words(timedelta(days=1))) == (
        "2 days",
        "26 hours",
        "1 day",
    )


def test_the_partition_query_filters_the_tenant_and_refuses_what_is_not_a_slug() -> None:
    assert partition_query(SUITE, ["success_rate", "k"], "acme") == (
        'select "success_rate", "k" from "marts"."fct_x" where tenant_id = \'acme\''
    )
    assert partition_query(SUITE, ["k"], None) == 'select "k" from "marts"."fct_x"'
    with pytest.raises(QualityConfigError, match="is not a tenant slug"):
        partition_query(SUITE, ["k"], "acme' or '1'='1")
    with pytest.raises(QualityConfigError, match="not a plain lower-case SQL name"):
        partition_query(SUITE, ['k"; drop table x; --'], "acme")


# --- reading GE results --------------------------------------------------------------------


def test_a_range_failure_reports_count_values_and_offending_rows() -> None:
    result = interpret(RATE, False, RATE_FAILED, {"raised_exception": False, "exception_message": None})

    assert (result.success, result.unexpected_count, result.element_count) == (False, 1, 3)
    assert result.observed_value == [1.4]
    assert result.offending_rows == ({"k": "b", "success_rate": 1.4},)
    assert result.sentence() == "success_rate between 0 and 1: broken in 1 of 3 rows (e.g. 1.4)"


def test_a_pair_failure_reads_lower_then_upper() -> None:
    result = interpret(PERCENTILES, False, PAIR_FAILED)

    assert result.observed_value == [[3, 2]]
    assert result.finding() == "broken in 1 of 3 rows (e.g. 3 > 2)"


def test_a_passing_expectation_has_no_unexpected_rows() -> None:
    result = interpret(KEY, True, {"element_count": 5, "unexpected_count": 0, "partial_unexpected_list": []})

    assert (result.success, result.unexpected_count, result.observed_value) == (True, 0, None)
    assert result.sentence() == "agent_run_id is never empty: holds in all 5 rows"


def test_freshness_reads_the_newest_value_and_an_empty_partition_is_not_stale() -> None:
    stale = interpret(FRESH, False, {"observed_value": datetime(2026, 3, 1, 12, tzinfo=UTC)})
    assert (stale.success, stale.observed_value) == (False, "2026-03-01T12:00:00+00:00")
    assert stale.finding() == "newest is 2026-03-01T12:00:00+00:00, older than 2 days"

    empty = interpret(FRESH, False, {"observed_value": None})
    assert empty.success
    assert empty.finding() == "no rows, so nothing is stale"


def test_an_exception_counts_as_a_failure_with_its_message() -> None:
    result = interpret(KEY, False, {}, MISSING_COLUMN)

    assert not result.success
    assert result.error == 'Error: The column "nope" in BatchData does not exist.'
    assert result.sentence().startswith("could not check agent_run_id is never empty: Error: The column")
    assert exception_message({"raised_exception": False, "exception_message": None}) is None
    assert exception_message(None) is None


def test_the_suite_result_says_which_severity_failed() -> None:
    rate = interpret(RATE, False, RATE_FAILED)
    fresh = interpret(FRESH, False, {"observed_value": date(2026, 3, 1)})
    key = interpret(KEY, True, {"element_count": 3, "unexpected_count": 0})

    both = SuiteResult(SUITE, "acme", (rate, fresh, key), row_count=3)
    assert (both.passed, both.severity) == (False, Severity.ERROR)
    assert both.summary() == "marts.fct_x (tenant acme, 3 rows): 1 error(s) and 1 warning(s) of 3 expectations"
    assert both.unexpected_counts() == {"between:success_rate": 1}
    assert both.offending_rows() == {"between:success_rate": [{"k": "b", "success_rate": 1.4}]}
    assert both.failures_markdown().splitlines() == [
        "| severity | expectation | found |",
        "|---|---|---|",
        "| error | `success_rate between 0 and 1` | broken in 1 of 3 rows (e.g. 1.4) |",
        "| warn | `newest updated_at at most 2 days old` | newest is 2026-03-01, older than 2 days |",
    ]

    warn_only = SuiteResult(SUITE, "acme", (fresh, key), row_count=3)
    assert (warn_only.passed, warn_only.severity) == (False, Severity.WARN)

    clean = SuiteResult(SUITE, None, (key,), row_count=3)
    assert clean.passed and clean.failures_markdown() == "Every expectation holds."
    assert clean.summary() == "marts.fct_x (every tenant, 3 rows): all 1 expectations hold"


def test_a_suite_that_cannot_run_fails_every_expectation_with_the_reason() -> None:
    outcome = failed_to_run(SUITE, "table marts.fct_x does not exist", "acme")

    assert [result.error for result in outcome.results] == ["table marts.fct_x does not exist"] * 4
    assert outcome.severity is Severity.ERROR
    assert outcome.failures_markdown() == "The suite could not run: table marts.fct_x does not exist"
    assert outcome.summary() == "marts.fct_x (tenant acme): could not run: table marts.fct_x does not exist"


def test_values_become_plain_json() -> None:
    assert plain(
        {
            "a": Decimal("1.4000"),
            "b": Decimal("3.000"),
            "c": (Decimal("2"), None),
            "d": date(2026, 3, 1),
            "e": datetime(2026, 3, 1, 13, tzinfo=UTC),
            "f": Decimal("NaN"),
        }
    ) == {"a": 1.4, "b": 3, "c": [2, None], "d": "2026-03-01", "e": "2026-03-01T13:00:00+00:00", "f": "NaN"}
    json.dumps(plain({"x": Decimal("1.5")}))
