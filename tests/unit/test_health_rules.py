"""Account-health rules without a database: bands, when a fall alerts, the alert setting, the
configured weights, the alert's message and the page's factor lines (pulse.health).

The score itself is SQL; its math is proven by the dbt unit tests in
dbt_project/models/marts/accounts/_accounts__unit_tests.yml (run by
tests/integration/test_account_health.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from orchestration.defs.health.jobs import not_ready
from orchestration.defs.health.sensors import rescore_request, summary
from pulse.budgets.mail import DeliveryReport
from pulse.health.evaluate import factor_lines, message
from pulse.health.portfolio import factor_details
from pulse.health.rules import (
    ALERT_DROP_ENV,
    FACTOR_LABELS,
    HealthConfigError,
    alert_drop_from_env,
    alert_reason,
    band_of,
    band_rank,
    configured_weights,
)


@pytest.mark.parametrize(
    ("score", "band"),
    [(0, "red"), (50, "red"), (51, "amber"), (75, "amber"), (76, "green"), (100, "green")],
)
def test_bands_have_their_edges_where_the_issue_puts_them(score: int, band: str) -> None:
    assert band_of(score) == band


def test_a_score_outside_0_to_100_or_an_unknown_band_is_refused() -> None:
    with pytest.raises(ValueError, match="from 0 to 100, not 101"):
        band_of(101)
    with pytest.raises(ValueError, match="Unknown band 'blue'"):
        band_rank("blue")
    assert [band_rank(band) for band in ("red", "amber", "green")] == [0, 1, 2]


@pytest.mark.parametrize(
    ("previous", "score", "drop", "reason"),
    [
        (90, 80, 10, "drop"),  # exactly the drop, same band
        (90, 81, 10, None),  # 9 points, same band
        (90, 81, 9, "drop"),  # a smaller configured drop
        (76, 75, 10, "band"),  # one point, but green → amber
        (80, 50, 10, "drop_and_band"),  # 30 points, green → red
        (51, 50, 10, "band"),  # amber → red
        (50, 60, 10, None),  # a rise
        (75, 75, 10, None),  # unchanged
        (100, 76, 10, "drop"),  # 24 points within green
    ],
)
def test_a_fall_alerts_by_points_or_by_band(previous: int, score: int, drop: int, reason: str | None) -> None:
    assert alert_reason(score, band_of(score), previous, band_of(previous), drop) == reason


def test_the_alert_drop_comes_from_the_environment_with_a_clear_error() -> None:
    assert alert_drop_from_env({}) == 10
    assert alert_drop_from_env({ALERT_DROP_ENV: " 15 "}) == 15
    with pytest.raises(HealthConfigError, match=r"PULSE_HEALTH_ALERT_DROP='ten' is not a whole number"):
        alert_drop_from_env({ALERT_DROP_ENV: "ten"})
    with pytest.raises(HealthConfigError, match="out of range: a fall of 1 to 100 points"):
        alert_drop_from_env({ALERT_DROP_ENV: "0"})
    with pytest.raises(ValueError, match="at least 1 point"):
        alert_reason(50, "red", 60, "amber", 0)


def test_the_weights_are_the_documented_defaults_of_dbt_project_yml() -> None:
    assert configured_weights() == {
        "agent_runs_trend": 20.0,
        "active_users_trend": 15.0,
        "agent_success_rate": 20.0,
        "budget_adherence": 15.0,
        "dmt_compliance_trend": 15.0,
        "data_freshness": 15.0,
    }


def test_incomplete_weights_are_refused_naming_what_is_wrong(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project.yml"
    project.write_text("vars:\n  health_weights: {agent_runs_trend: 1, budget: 2}\n")
    with pytest.raises(HealthConfigError, match=r"unknown: budget; missing: active_users_trend, agent_success_rate"):
        configured_weights(project)


def _day(**overrides: Any) -> dict[str, Any]:
    """A day of marts.fct_account_health_daily as the reader gets it (Decimals for numerics)."""
    day: dict[str, Any] = {
        "tenant_id": "acme",
        "tenant_name": "Acme",
        "score_date": date(2026, 11, 20),
        "runs_current": 4,
        "runs_previous": 8,
        "active_users_current": 1,
        "active_users_previous": 3,
        "finished_runs_current": 3,
        "succeeded_runs_current": 2,
        "budget_amount_usd": None,
        "projected_spend_usd": None,
        "projected_share_pct": None,
        "done_items_current": 0,
        "compliant_items_current": 0,
        "compliance_rate_current": None,
        "compliance_rate_previous": None,
        "last_load_at": datetime(2026, 11, 19, tzinfo=UTC),
        "hours_since_last_load": Decimal("36.00"),
        "agent_runs_trend_score": Decimal("50.00"),
        "active_users_trend_score": Decimal("33.33"),
        "agent_success_rate_score": Decimal("66.67"),
        "budget_adherence_score": None,
        "dmt_compliance_trend_score": None,
        "data_freshness_score": Decimal("75.00"),
        "health_score": 57,
        "health_band": "amber",
        "previous_day_score": 80,
        "previous_day_band": "green",
        "previous_period_score": 85,
    }
    return day | overrides


def test_the_alert_says_how_far_it_fell_and_lists_the_weakest_factors_first() -> None:
    title, body = message(_day(), "drop_and_band")
    assert title == "Acme's account health fell to 57 (amber)"
    assert body.splitlines()[0] == (
        "The health score of Acme on 2026-11-20 is 57 out of 100: down 23 points from 80 (green) the day "
        "before, from the green band to amber. A period earlier it was 85."
    )
    assert factor_lines(_day()) == [
        "- Active users trend: 33",
        "- Agent runs trend: 50",
        "- Agent success rate: 67",
        "- Data freshness: 75",
        "- Budget adherence: no data",
        "- DMT compliance trend: no data",
    ]


def test_factor_details_explain_each_score_and_its_renormalized_share() -> None:
    weights = {factor: weight for factor, weight in zip(FACTOR_LABELS, (20, 15, 20, 15, 15, 15), strict=True)}
    details = factor_details(_day(), weights)
    # weights of the four factors with data: 20 + 15 + 20 + 15 = 70
    assert [(d["factor"], d["score"], d["share_pct"]) for d in details] == [
        ("Agent runs trend", 50.0, 28.6),
        ("Active users trend", 33.33, 21.4),
        ("Agent success rate", 66.67, 28.6),
        ("Budget adherence", None, None),
        ("DMT compliance trend", None, None),
        ("Data freshness", 75.0, 21.4),
    ]
    assert [d["figures"] for d in details] == [
        "4 runs in the period, 8 in the one before",
        "1 person ran agents in the period, 3 in the one before",
        "2 of 3 finished runs succeeded",
        "no organisation budget",
        "no work item done in the period",
        "newest load 36.0 h before the end of the day",
    ]
    with_budget = factor_details(
        _day(
            budget_amount_usd=Decimal("400.00"),
            projected_spend_usd=Decimal("561.428571"),
            projected_share_pct=Decimal("140.36"),
            done_items_current=6,
            compliant_items_current=4,
            compliance_rate_current=Decimal("66.67"),
            compliance_rate_previous=Decimal("75.00"),
        )
    )
    assert [d["figures"] for d in with_budget][3:5] == [
        "projected month-end spend USD 561.43 of a USD 400.00 budget (140.4 %)",
        "4 of 6 items done were DMT compliant (66.7 %); 75.0 % in the period before",
    ]
    assert "share_pct" not in with_budget[0]


def test_a_usage_marts_run_asks_for_its_tenants_rescore_once() -> None:
    run = dg.DagsterRun(job_name="agent_usage_marts", run_id="run-1", tags={"dagster/partition": "acme"})
    request = rescore_request(run)
    assert isinstance(request, dg.RunRequest)
    assert (request.partition_key, request.run_key) == ("acme", "account-health:run-1")
    skipped = rescore_request(dg.DagsterRun(job_name="agent_usage_marts", run_id="run-2"))
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == "run run-2 has no tenant partition"
    assert summary({"b", "a"}, 1, DeliveryReport(sent=[1, 2])) == (
        "evaluated account health of a, b: 1 new alert(s); 2 email(s) sent, 0 to retry"
    )
    assert not_ready(["marts.fct_work_item_compliance"]) == (
        "marts.fct_work_item_compliance not built yet: sync a tenant once (`pulse sync --tenant T`, or a sync "
        "request) so that every mart exists, then account health is scored"
    )
