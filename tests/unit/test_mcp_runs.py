"""pulse.mcp.runs: argument validation and the usage arithmetic, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from pulse.mcp.runs import AgentIdentity, RunError, UsageFigures, validate_run

ANA = AgentIdentity("mcp_unit", "ana@example.test", "Ana")
GOOD: dict[str, Any] = {
    "agent_type": "claude_code",
    "status": "running",
    "started_at": "2025-06-01T09:00:00+02:00",
    "model_name": "claude-sonnet-4",
}


def test_a_minimal_report_gets_a_run_id_and_keeps_its_payload() -> None:
    report = validate_run(GOOD, ANA)
    assert uuid.UUID(report.run_id).version == 4
    assert report.started_at == datetime(2025, 6, 1, 7, 0, tzinfo=UTC)
    assert (report.status, report.agent_type, report.model_name) == ("running", "claude_code", "claude-sonnet-4")
    assert (report.input_tokens, report.cost_usd, report.ended_at, report.team) == (None, None, None, None)
    assert report.payload == GOOD


def test_a_full_report_is_parsed_exactly() -> None:
    arguments = {
        **GOOD,
        "run_id": " r-1 ",
        "status": "failed",
        "ended_at": "2025-06-01T07:30:00Z",
        "model_version": "20250514",
        "input_tokens": 10,
        "output_tokens": 2.0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 3,
        "cost_usd": 0.1,
        "error_category": "timeout",
        "error_message": "took too long",
        "team": "core",
        "user_email": "ANA@example.test",
    }
    report = validate_run(arguments, ANA)
    assert report.run_id == "r-1"
    assert report.ended_at == datetime(2025, 6, 1, 7, 30, tzinfo=timezone(timedelta(0)))
    assert (report.input_tokens, report.output_tokens, report.cache_read_tokens, report.cache_write_tokens) == (
        10,
        2,
        0,
        3,
    )
    assert report.cost_usd == Decimal("0.1")
    assert (report.error_category, report.error_message, report.team, report.model_version) == (
        "timeout",
        "took too long",
        "core",
        "20250514",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "done"}, "status 'done' is not one of queued, running, succeeded, failed, cancelled."),
        ({"status": None}, "status is required."),
        ({"input_tokens": -1}, "input_tokens must not be negative, got -1."),
        ({"output_tokens": 1.5}, "output_tokens must be a whole number, got 1.5."),
        ({"cache_read_tokens": True}, "cache_read_tokens must be a whole number, got True."),
        ({"cache_write_tokens": "7"}, "cache_write_tokens must be a whole number, got '7'."),
        ({"cost_usd": -0.01}, "cost_usd must not be negative, got -0.01."),
        ({"cost_usd": "cheap"}, "cost_usd must be a number, got 'cheap'."),
        ({"cost_usd": float("nan")}, "cost_usd must be a finite number, got nan."),
        ({"started_at": "2025-06-01 09:00"}, "started_at 2025-06-01 09:00 has no time zone"),
        ({"started_at": "June 1st"}, "started_at 'June 1st' is not an ISO 8601 timestamp"),
        ({"started_at": 1717225200}, "started_at must be an ISO 8601 timestamp string, got int."),
        ({"ended_at": "2025-06-01T06:59:59Z"}, "ended_at (2025-06-01T06:59:59+00:00) is before started_at"),
        ({"model_name": ""}, "model_name must not be empty."),
        ({"agent_type": 3}, "agent_type must be a string, got int."),
        ({"run_id": "x" * 201}, "run_id is 201 characters long; the limit is 200."),
        ({"user_email": "ben@example.test"}, "user_email must be the token's own user"),
        ({"tenant_id": "other"}, "Unknown argument(s): tenant_id;"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RunError) as refused:
        validate_run({**GOOD, **change}, ANA)
    assert message in str(refused.value)


def test_usage_figures_add_up_and_rate_finished_runs_only() -> None:
    claude = UsageFigures(runs=3, succeeded=1, failed=1, input_tokens=100, cost_usd=Decimal("0.10"))
    codex = UsageFigures(runs=1, succeeded=1, output_tokens=5, cost_usd=Decimal("0.05"), runs_without_cost=1)
    total = UsageFigures()
    total.add(claude)
    total.add(codex)
    figures = total.as_dict()
    assert figures == {
        "runs": 4,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
        "in_progress": 1,
        "success_rate_pct": 66.7,
        "input_tokens": 100,
        "output_tokens": 5,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": 0.15,
        "runs_without_cost": 1,
    }
    assert UsageFigures(runs=2).as_dict()["success_rate_pct"] is None
