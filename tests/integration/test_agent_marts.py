"""Agent usage marts end to end: runs reported through MCP (the RunStore `pulse mcp` uses) →
raw → dbt (staging, int_agent_runs, marts/agents) for one tenant partition, every figure
computed by hand.

Tenant ``marts_ny`` lives in America/New_York (UTC-4 until 06:00 UTC on 1 November 2026,
then UTC-5). The build is measured at ``AS_OF`` = 2026-11-10 05:00 UTC, midnight local, so
November has exactly 21 days left. Prices (seed, per million tokens), claude-sonnet-4-5:
3.00 input, 15.00 output, 0.30 cache read, 3.75 cache write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from pulse import control
from pulse.budgets.store import set_budget
from pulse.db import admin_engine, reader_url, sqlalchemy_url
from pulse.mcp.runs import AgentIdentity, RunStore
from pulse.settings import Settings
from tests.conftest import run_dbt

TENANT = "marts_ny"
OTHER = "marts_other"
AS_OF = "2026-11-10 05:00:00+00"
ADA, BOB, CY = "ada@marts-ny.example", "bob@marts-ny.example", "cy@marts-ny.example"
SONNET = "claude-sonnet-4-5"

#: (user, run_id, team, status, started_at UTC, seconds or None, cost_usd reported or None, tokens)
RUNS: list[tuple[str, str, str, str, str, int | None, str | None, dict[str, int]]] = [
    # 1M in 3.00 + 100k out 1.50 + 200k cache reads 0.06 + 40k cache writes 0.15 = 4.71
    (
        ADA,
        "hand",
        "platform",
        "succeeded",
        "2026-11-04T14:00:00Z",
        120,
        None,
        {
            "input_tokens": 1_000_000,
            "output_tokens": 100_000,
            "cache_read_tokens": 200_000,
            "cache_write_tokens": 40_000,
        },
    ),
    (ADA, "late-oct", "Platform", "succeeded", "2026-11-01T03:30:00Z", 10, "2.00", {}),  # 23:30 on 31 Oct local
    (ADA, "early-nov", "platform", "failed", "2026-11-01T04:30:00Z", 30, "1.00", {}),  # 00:30 on 1 Nov local
    (BOB, "b1", "platform", "succeeded", "2026-11-04T15:00:00Z", 20, "0.71", {}),
    (BOB, "b2", "platform", "succeeded", "2026-11-04T16:00:00Z", 40, "1.00", {}),
    (BOB, "b3", "platform", "succeeded", "2026-11-04T17:00:00Z", 60, "0.29", {}),
    (CY, "c1", "Web Team", "running", "2026-11-05T17:00:00Z", None, None, {}),
    (CY, "c2", "web team", "succeeded", "2026-11-05T10:00:00Z", 60, "3.00", {}),
]


def _report(run: tuple[str, str, str, str, str, int | None, str | None, dict[str, int]]) -> dict[str, Any]:
    _, run_id, team, status, started, seconds, cost, tokens = run
    payload: dict[str, Any] = {
        "run_id": run_id,
        "agent_type": "coder",
        "model_name": SONNET,
        "status": status,
        "started_at": started,
        "team": team,
        **tokens,
    }
    if seconds is not None:
        payload["ended_at"] = (datetime.fromisoformat(started) + timedelta(seconds=seconds)).isoformat()
    if cost is not None:
        payload["cost_usd"] = cost
    return payload


def _cleanup(conn: sa.Connection) -> None:
    tenants = {"t": [TENANT, OTHER]}
    for table in ("fct_agent_runs", "fct_agent_usage_daily", "fct_agent_team_ranks_monthly"):
        if conn.execute(sa.text(f"select to_regclass('marts.{table}')")).scalar() is not None:
            conn.execute(sa.text(f"delete from marts.{table} where tenant_id = any(:t)"), tenants)
    for table in ("fct_agent_top_users_monthly", "fct_agent_spend_monthly", "fct_budget_utilization"):
        if conn.execute(sa.text(f"select to_regclass('marts.{table}')")).scalar() is not None:
            conn.execute(sa.text(f"delete from marts.{table} where tenant_id = any(:t)"), tenants)
    if conn.execute(sa.text("select to_regclass('intermediate.int_agent_runs')")).scalar() is not None:
        conn.execute(sa.text("delete from intermediate.int_agent_runs where tenant_id = any(:t)"), tenants)
    conn.execute(sa.text("delete from control.budget_thresholds where tenant_id = any(:t)"), tenants)
    conn.execute(sa.text("delete from control.budgets where tenant_id = any(:t)"), tenants)
    conn.execute(sa.text("delete from control.teams where tenant_id = any(:t)"), tenants)
    for tenant in (TENANT, OTHER):
        conn.execute(sa.text(f'drop schema if exists "raw_agent_mcp__{tenant}" cascade'))
    conn.execute(sa.text("delete from control.tenants where slug = any(:t)"), tenants)


@pytest.fixture(scope="module")
def built(settings: Settings) -> Iterator[dict[str, int]]:
    """The runs reported, budgets set and the marts built for the tenant's partition."""
    engine = admin_engine(settings)
    with engine.begin() as conn:
        _cleanup(conn)
        control.add_tenant(conn, TENANT, "Marts NY", actor="test", timezone="America/New_York")
        control.add_tenant(conn, OTHER, "Marts Other", actor="test")
        control.add_team(conn, TENANT, "platform", "Platform", actor="test")
        control.add_team(conn, TENANT, "web", "Web Team", actor="test")
        budgets = {
            "org": set_budget(conn, TENANT, "20", actor="test").budget_id,
            "platform": set_budget(conn, TENANT, "10", actor="test", team_slug="platform").budget_id,
        }
    store = RunStore(engine)
    for run in RUNS:
        store.record(AgentIdentity(TENANT, run[0]), _report(run))
    # Another tenant's run: never in marts_ny's figures, and invisible to marts_ny's readers.
    store.record(
        AgentIdentity(OTHER, "zed@other.example"),
        _report((ADA, "other", "platform", "succeeded", "2026-11-04T14:00:00Z", 5, "7.00", {})),
    )
    for tenant in (TENANT, OTHER):
        run_dbt(
            [
                "build",
                "--select",
                "+marts.agents",
                "--exclude",
                "test_type:unit",
                "--vars",
                json.dumps({"tenant_id": tenant, "as_of": AS_OF}),
            ]
        )
    try:
        yield budgets
    finally:
        with engine.begin() as conn:
            _cleanup(conn)


def _rows(settings: Settings, sql: str, **params: Any) -> list[dict[str, Any]]:
    with admin_engine(settings).connect() as conn:
        return [dict(row) for row in conn.execute(sa.text(sql), {"t": TENANT, **params}).mappings()]


def test_run_costs_count_cache_tokens_once_and_days_follow_the_tenant_zone(
    settings: Settings, built: dict[str, int]
) -> None:
    runs = {
        row["agent_run_id"]: row
        for row in _rows(settings, "select * from marts.fct_agent_runs where tenant_id = :t order by agent_run_id")
    }
    assert len(runs) == len(RUNS)
    hand = runs["agent_mcp:hand"]
    assert (hand["input_cost_usd"], hand["output_cost_usd"]) == (Decimal("3.000000"), Decimal("1.500000"))
    assert (hand["cache_read_cost_usd"], hand["cache_write_cost_usd"]) == (Decimal("0.060000"), Decimal("0.150000"))
    assert hand["cache_cost_usd"] == Decimal("0.210000")
    assert hand["cost_usd"] == Decimal("4.710000")
    assert hand["total_tokens"] == 1_340_000  # input excludes the cache: nothing counted twice
    assert (hand["duration_seconds"], hand["team_name"], hand["is_succeeded"]) == (Decimal("120.000"), "platform", True)
    # 03:30 UTC on 1 November is 23:30 on 31 October in New York; 04:30 UTC is 00:30 on 1 November.
    assert (runs["agent_mcp:late-oct"]["run_date"], runs["agent_mcp:late-oct"]["run_month"]) == (
        date(2026, 10, 31),
        date(2026, 10, 1),
    )
    assert (runs["agent_mcp:early-nov"]["run_date"], runs["agent_mcp:early-nov"]["run_month"]) == (
        date(2026, 11, 1),
        date(2026, 11, 1),
    )
    # Teams match by slug ('Platform' → platform) or by name ('web team' → Web Team).
    team_ids = {row["agent_run_id"]: row["team_id"] for row in runs.values()}
    assert team_ids["agent_mcp:late-oct"] == team_ids["agent_mcp:hand"] is not None
    assert team_ids["agent_mcp:c1"] == team_ids["agent_mcp:c2"] is not None
    assert team_ids["agent_mcp:c1"] != team_ids["agent_mcp:hand"]
    running = runs["agent_mcp:c1"]
    assert (running["is_running"], running["is_finished"], running["duration_seconds"]) == (True, False, None)
    assert runs["agent_mcp:early-nov"]["status"] == "failed"


def test_daily_usage_rates_and_duration_percentiles(settings: Settings, built: dict[str, int]) -> None:
    daily = _rows(
        settings,
        "select * from marts.fct_agent_usage_daily where tenant_id = :t order by usage_date, user_email, status",
    )
    by_key = {(row["usage_date"], row["user_email"], row["status"]): row for row in daily}
    assert len(daily) == 6
    bob = by_key[(date(2026, 11, 4), BOB, "succeeded")]
    # 20, 40 and 60 s: mean 40, p50 40, p90 at 1 + 0.9 × 2 = 2.8 → 40 + 0.8 × 20 = 56
    assert (bob["runs"], bob["finished_runs"], bob["succeeded_runs"]) == (3, 3, 3)
    assert (bob["mean_duration_seconds"], bob["p50_duration_seconds"], bob["p90_duration_seconds"]) == (
        Decimal("40.000"),
        Decimal("40.000"),
        Decimal("56.000"),
    )
    assert (bob["cost_usd"], bob["success_rate"], bob["team_name"]) == (
        Decimal("2.000000"),
        Decimal("1.0000"),
        "Platform",  # the control team's name, whatever the casing the run reported
    )
    ada_failed = by_key[(date(2026, 11, 1), ADA, "failed")]
    assert (ada_failed["success_rate"], ada_failed["cost_usd"]) == (Decimal("0.0000"), Decimal("1.000000"))
    ada_hand = by_key[(date(2026, 11, 4), ADA, "succeeded")]
    assert (ada_hand["total_tokens"], ada_hand["cache_cost_usd"], ada_hand["cost_usd"]) == (
        1_340_000,
        Decimal("0.210000"),
        Decimal("4.710000"),
    )
    assert by_key[(date(2026, 10, 31), ADA, "succeeded")]["cost_usd"] == Decimal("2.000000")
    cy_running = by_key[(date(2026, 11, 5), CY, "running")]
    assert (cy_running["running_runs"], cy_running["success_rate"], cy_running["p50_duration_seconds"]) == (
        1,
        None,
        None,
    )


def test_team_ranks_and_top_users_per_local_month(settings: Settings, built: dict[str, int]) -> None:
    ranks = {
        (row["usage_month"], row["team_name"], row["user_email"]): row
        for row in _rows(settings, "select * from marts.fct_agent_team_ranks_monthly where tenant_id = :t")
    }
    november = date(2026, 11, 1)
    ada, bob = ranks[(november, "Platform", ADA)], ranks[(november, "Platform", BOB)]
    # November, team platform: bob 3 runs (2.00), ada 2 runs (4.71 + 1.00 = 5.71, 1.34M tokens)
    assert (bob["runs"], bob["runs_rank"], bob["cost_rank"], bob["team_people"]) == (3, 1, 2, 2)
    assert (ada["runs"], ada["runs_rank"], ada["cost_rank"], ada["tokens_rank"]) == (2, 2, 1, 1)
    assert ada["cost_usd"] == Decimal("5.710000")
    # Ada's late-October run is October locally, ranked on its own.
    october = ranks[(date(2026, 10, 1), "Platform", ADA)]
    assert (october["runs"], october["runs_rank"], october["team_people"]) == (1, 1, 1)
    # Runs say 'platform', 'Platform', 'Web Team', 'web team': ranked within the two control teams.
    assert {key[1] for key in ranks} == {"Platform", "Web Team"}
    assert ranks[(november, "Web Team", CY)]["runs"] == 2

    top = _rows(
        settings,
        "select measure, measure_rank, user_email, cost_usd from marts.fct_agent_top_users_monthly "
        "where tenant_id = :t and usage_month = :m order by measure, measure_rank, user_email",
        m=november,
    )
    by_cost = [(row["measure_rank"], row["user_email"], row["cost_usd"]) for row in top if row["measure"] == "cost"]
    assert by_cost == [(1, ADA, Decimal("5.710000")), (2, CY, Decimal("3.000000")), (3, BOB, Decimal("2.000000"))]
    by_runs = [(row["measure_rank"], row["user_email"]) for row in top if row["measure"] == "runs"]
    assert by_runs == [(1, BOB), (2, ADA), (2, CY)]  # ada and cy tie on 2 runs: both 2nd


def test_budget_utilization_month_to_date_and_projection(settings: Settings, built: dict[str, int]) -> None:
    rows = {
        (row["budget_id"], row["period_start"]): row
        for row in _rows(settings, "select * from marts.fct_budget_utilization where tenant_id = :t")
    }
    november, october = date(2026, 11, 1), date(2026, 10, 1)
    assert set(rows) == {(b, p) for b in built.values() for p in (october, november)}
    org = rows[(built["org"], november)]
    # 4.71 + 1.00 + 2.00 + 3.00 (the running run costs 0) = 10.71 of 20 → 53.55 %.
    # Last 7 days (from 05:00 UTC on 3 November): 4.71 + 2.00 + 3.00 = 9.71 → × 21 / 7 = 29.13.
    assert (org["month_to_date_spend_usd"], org["share_used_pct"]) == (Decimal("10.710000"), Decimal("53.55"))
    assert (org["trailing_7d_spend_usd"], org["projected_spend_usd"]) == (Decimal("9.710000"), Decimal("39.840000"))
    assert (org["projected_share_pct"], org["is_current_period"], org["scope"]) == (
        Decimal("199.20"),
        True,
        "organization",
    )
    team = rows[(built["platform"], november)]
    # platform: 4.71 + 1.00 + 2.00 = 7.71 of 10 → 77.10 %; last 7 days 6.71 → × 3 = 20.13 → 27.84
    assert (team["month_to_date_spend_usd"], team["share_used_pct"]) == (Decimal("7.710000"), Decimal("77.10"))
    assert (team["projected_spend_usd"], team["projected_share_pct"]) == (Decimal("27.840000"), Decimal("278.40"))
    assert (team["team_name"], team["period_end"]) == ("Platform", date(2026, 11, 30))
    assert rows[(built["org"], october)]["share_used_pct"] == Decimal("10.00")  # 2.00 of 20
    assert rows[(built["platform"], october)]["projected_spend_usd"] == Decimal("2.000000")  # the month is over


def test_monthly_spend_per_team_in_the_tenant_zone(settings: Settings, built: dict[str, int]) -> None:
    rows = _rows(
        settings,
        "select spend.spend_month, teams.slug, spend.runs, spend.cost_usd from marts.fct_agent_spend_monthly as spend "
        "left join control.teams as teams on teams.team_id = spend.team_id where spend.tenant_id = :t",
    )
    # late-oct is 23:30 on 31 October in New York; platform's November: 4.71 + 1.00 + 0.71 + 1.00
    # + 0.29 = 7.71 over 5 runs; the web team's: c2 3.00 and the running c1 (0) over 2.
    assert {(row["spend_month"], row["slug"]): (row["runs"], row["cost_usd"]) for row in rows} == {
        (date(2026, 10, 1), "platform"): (1, Decimal("2.000000")),
        (date(2026, 11, 1), "platform"): (5, Decimal("7.710000")),
        (date(2026, 11, 1), "web"): (2, Decimal("3.000000")),
    }


def test_the_reader_role_sees_only_the_declared_tenant(settings: Settings, built: dict[str, int]) -> None:
    engine = sa.create_engine(sqlalchemy_url(reader_url(settings)), poolclass=sa.NullPool)
    count = sa.text(
        "select (select count(*) from marts.fct_agent_runs where tenant_id = any(:both)), "
        "(select count(*) from marts.fct_budget_utilization where tenant_id = any(:both)), "
        "(select count(*) from marts.fct_agent_usage_daily where tenant_id = any(:both)), "
        "(select count(*) from marts.fct_agent_spend_monthly where tenant_id = any(:both))"
    )
    both = {"both": [TENANT, OTHER]}
    with engine.begin() as conn:
        assert conn.execute(count, both).one() == (0, 0, 0, 0)  # nothing declared, nothing visible
    with engine.begin() as conn:
        conn.execute(sa.text("select set_config('pulse.tenant_ids', :t, true)"), {"t": OTHER})
        assert conn.execute(count, both).one() == (1, 0, 1, 1)
    with engine.begin() as conn:
        conn.execute(sa.text("select set_config('pulse.tenant_ids', :t, true)"), {"t": TENANT})
        assert conn.execute(count, both).one() == (len(RUNS), 4, 6, 3)
    engine.dispose()


def test_the_marts_unit_tests_pass(settings: Settings, built: dict[str, int]) -> None:
    output = run_dbt(["test", "--select", "marts.agents,test_type:unit"])
    assert output.count(" PASS fct_") == 7 and "ERROR=0" in output, output[-2000:]
