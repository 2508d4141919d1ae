"""Account health end to end in the warehouse: runs reported through MCP (the RunStore `pulse mcp`
uses), a dlt load ledger, a budget → dbt (staging, int_agent_runs, fct_agent_runs,
stg_dlt_loads__loads, fct_account_health_daily) with every figure computed by hand; the
mart's dbt unit tests; and who may read whose health, at the database, for every role.

Measured at ``AS_OF`` = 2026-11-20 12:00 UTC with the default weights (runs 20, users 15,
success 20, budget 15, DMT 15, freshness 15) and period (14 days). ``ah_acme`` (UTC):

- runs: 5 by ada on Nov 1 and 5 by bob on Nov 2 (the previous period), then ada alone: 2 on
  Nov 18, 2 on Nov 19 (one failed), 1 on Nov 20 at 09:00 (her 15:00 run is after AS_OF);
  every run reports USD 1.00; organisation budget USD 100;
- dlt loads (raw_github__ah_acme._dlt_loads): Nov 19 00:00 loaded, Nov 20 06:00 failed,
  Nov 20 13:00 after AS_OF; no work items, so DMT compliance has no data (weights over 85).

Nov 20: runs 5 vs 10 → 50; people 1 vs 2 → 50; success 4/5 → 80; budget: 15 spent + 5/7 ×
10 days left = 22.14 of 100 → 100; freshness 36 h → 75. (1000 + 750 + 1600 + 1500 + 1125) /
85 = 70.29 → 70 amber. Nov 19: 4 vs 10 → 40, 50, 3/4 → 75, budget 100, 24 h → 100:
6050 / 85 = 71.18 → 71. Nov 6 (a period before): 10 runs, none before → 100, no load yet →
100. ``ah_globex`` (Europe/Berlin) ran once on Nov 20 (100); ``ah_initech`` once, failed
(runs 100, people 100, success 0 → 3500 / 55 = 63.64 → 64).

Who sees what: Amy manages acme and globex, Gil initech; Dora is the account director, Pat a
platform admin; Olga (org admin) and Mia (member) are acme's own users.
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
from pulse.health.portfolio import declare_scope, history, portfolio
from pulse.mcp.runs import AgentIdentity, RunStore
from pulse.settings import Settings
from tests.conftest import run_dbt

ACME, GLOBEX, INITECH = "ah_acme", "ah_globex", "ah_initech"
TENANTS = (ACME, GLOBEX, INITECH)
AS_OF = "2026-11-20T12:00:00+00:00"
ADA, BOB = "ada@ah-acme.example", "bob@ah-acme.example"
AMY, GIL, DORA, PAT = "amy@ah-pulse.example", "gil@ah-pulse.example", "dora@ah-pulse.example", "pat@ah-pulse.example"
OLGA, MIA = "olga@ah-acme.example", "mia@ah-acme.example"
#: email → (name, [(role, tenant)])
PEOPLE: dict[str, tuple[str, list[tuple[str, str | None]]]] = {
    AMY: ("Amy Accounts", [("account_manager", ACME), ("account_manager", GLOBEX)]),
    GIL: ("Gil Accounts", [("account_manager", INITECH)]),
    DORA: ("Dora Director", [("account_director", None)]),
    PAT: ("Pat Platform", [("platform_admin", None)]),
    OLGA: ("Olga Admin", [("org_admin", ACME)]),
    MIA: ("Mia Member", [("member", ACME)]),
}
#: (tenant, user, run id, status, started_at UTC)
RUNS = [
    *[(ACME, ADA, f"p-ada-{i}", "succeeded", f"2026-11-01T1{i}:00:00Z") for i in range(5)],
    *[(ACME, BOB, f"p-bob-{i}", "succeeded", f"2026-11-02T1{i}:00:00Z") for i in range(5)],
    (ACME, ADA, "n18a", "succeeded", "2026-11-18T10:00:00Z"),
    (ACME, ADA, "n18b", "succeeded", "2026-11-18T11:00:00Z"),
    (ACME, ADA, "n19a", "succeeded", "2026-11-19T10:00:00Z"),
    (ACME, ADA, "n19b", "failed", "2026-11-19T11:00:00Z"),
    (ACME, ADA, "n20a", "succeeded", "2026-11-20T09:00:00Z"),
    (ACME, ADA, "n20-late", "succeeded", "2026-11-20T15:00:00Z"),
    (GLOBEX, "gus@ah-globex.example", "g1", "succeeded", "2026-11-20T08:00:00Z"),
    (INITECH, "ian@ah-initech.example", "i1", "failed", "2026-11-20T09:00:00Z"),
]
LOADS = [  # raw_github__ah_acme._dlt_loads: (load_id, status, inserted_at)
    ("1763510400.1", 0, "2026-11-19T00:00:00+00:00"),
    ("1763618400.2", 1, "2026-11-20T06:00:00+00:00"),
    ("1763643600.3", 0, "2026-11-20T13:00:00+00:00"),
]


def _cleanup(conn: sa.Connection) -> None:
    params = {"t": list(TENANTS)}
    for relation in (
        "marts.fct_account_health_daily",
        "marts.fct_agent_runs",
        "marts.fct_agent_usage_daily",
        "marts.fct_agent_team_ranks_monthly",
        "marts.fct_agent_top_users_monthly",
        "marts.fct_budget_utilization",
        "intermediate.int_agent_runs",
    ):
        if conn.execute(sa.text("select to_regclass(:r)"), {"r": relation}).scalar() is not None:
            conn.execute(sa.text(f"delete from {relation} where tenant_id = any(:t)"), params)
    for table in ("budget_thresholds", "budgets"):
        conn.execute(sa.text(f"delete from control.{table} where tenant_id = any(:t)"), params)
    conn.execute(sa.text("delete from control.users where email = any(:e)"), {"e": list(PEOPLE)})
    for tenant in TENANTS:
        conn.execute(sa.text(f'drop schema if exists "raw_agent_mcp__{tenant}" cascade'))
        conn.execute(sa.text(f'drop schema if exists "raw_github__{tenant}" cascade'))
    conn.execute(sa.text("delete from control.tenants where slug = any(:t)"), params)


@pytest.fixture(scope="module")
def built(settings: Settings) -> Iterator[str]:
    """The seed reported and loaded, then one dbt build of the health mart and its upstream."""
    engine = admin_engine(settings)
    with engine.begin() as conn:
        _cleanup(conn)
        control.add_tenant(conn, ACME, "Acme Health", actor="test")
        control.add_tenant(conn, GLOBEX, "Globex Health", actor="test", timezone="Europe/Berlin")
        control.add_tenant(conn, INITECH, "Initech Health", actor="test")
        for email, (name, grants) in PEOPLE.items():
            control.add_user(conn, email, name, actor="test")
            for role, tenant in grants:
                control.grant_role(conn, email, role, actor="test", tenant_id=tenant)
        set_budget(conn, ACME, "100", actor="test")
        conn.execute(sa.text(f'create schema "raw_github__{ACME}"'))
        # dlt's own ledger table, as every dlt dataset has it
        conn.execute(
            sa.text(
                f'create table "raw_github__{ACME}"._dlt_loads (load_id varchar not null, schema_name varchar, '
                "status bigint not null, inserted_at timestamptz not null, schema_version_hash varchar)"
            )
        )
        conn.execute(
            sa.text(
                f'insert into "raw_github__{ACME}"._dlt_loads (load_id, schema_name, status, inserted_at) '
                "values (:id, 'github', :status, :at)"
            ),
            [{"id": load_id, "status": status, "at": at} for load_id, status, at in LOADS],
        )
    store = RunStore(engine)
    for tenant, user, run_id, status, started in RUNS:
        store.record(
            AgentIdentity(tenant, user),
            {
                "run_id": run_id,
                "agent_type": "coder",
                "model_name": "claude-sonnet-4-5",
                "status": status,
                "started_at": started,
                "ended_at": (datetime.fromisoformat(started) + timedelta(minutes=1)).isoformat(),
                "cost_usd": "1.00",
            },
        )
    # The models up to the mart, then the mart with its data tests and its dbt unit tests.
    output = run_dbt(
        [
            "build",
            "--select",
            "+fct_account_health_daily,resource_type:model",
            "+fct_account_health_daily,resource_type:seed",
            "path:models/marts/accounts",
            "--indirect-selection",
            "empty",
            "--vars",
            json.dumps({"as_of": AS_OF}),
        ]
    )
    try:
        yield output
    finally:
        with engine.begin() as conn:
            _cleanup(conn)


def _day(settings: Settings, tenant: str, day: str) -> dict[str, Any]:
    with admin_engine(settings).connect() as conn:
        row = (
            conn.execute(
                sa.text("select * from marts.fct_account_health_daily where tenant_id = :t and score_date = :d"),
                {"t": tenant, "d": date.fromisoformat(day)},
            )
            .mappings()
            .one()
        )
    return dict(row)


def test_the_health_unit_tests_and_data_tests_pass_in_the_build(built: str) -> None:
    assert built.count(" PASS fct_account_health_daily::test_health_") == 6, built[-3000:]
    assert "ERROR=0" in built, built[-2000:]


def test_a_real_build_scores_every_factor_by_hand(settings: Settings, built: str) -> None:
    day = _day(settings, ACME, "2026-11-20")
    figures = {
        key: day[key]
        for key in day
        if key not in ("tenant_id", "score_date", "measured_at", "last_load_at", "settings_version")
    }
    assert figures == {
        "is_latest": True,
        "runs_current": 5,
        "runs_previous": 10,
        "agent_runs_trend_score": Decimal("50.00"),
        "active_users_current": 1,
        "active_users_previous": 2,
        "active_users_trend_score": Decimal("50.00"),
        "finished_runs_current": 5,
        "succeeded_runs_current": 4,
        "agent_success_rate_score": Decimal("80.00"),
        "budget_amount_usd": Decimal("100.00"),
        "month_to_date_spend_usd": Decimal("15.000000"),
        "projected_spend_usd": Decimal("22.142857"),
        "projected_share_pct": Decimal("22.14"),
        "budget_adherence_score": Decimal("100.00"),
        "done_items_current": 0,
        "compliant_items_current": 0,
        "compliance_rate_current": None,
        "done_items_previous": 0,
        "compliant_items_previous": 0,
        "compliance_rate_previous": None,
        "dmt_compliance_trend_score": None,
        "done_items_day": 0,
        "compliant_items_day": 0,
        "hours_since_last_load": Decimal("36.00"),
        "data_freshness_score": Decimal("75.00"),
        "factors_with_data": 5,
        "factors_without_data": "dmt_compliance_trend",
        "weighted_score": Decimal("70.29"),
        "health_score": 70,
        "health_band": "amber",
        "previous_period_score": 100,
        "previous_period_band": "green",
        "score_change": -30,
        "previous_day_score": 71,
        "previous_day_band": "amber",
    }
    assert day["last_load_at"] == datetime.fromisoformat("2026-11-19T00:00:00+00:00")
    assert day["measured_at"] == datetime.fromisoformat(AS_OF)
    yesterday = _day(settings, ACME, "2026-11-19")
    assert (yesterday["agent_runs_trend_score"], yesterday["agent_success_rate_score"]) == (
        Decimal("40.00"),
        Decimal("75.00"),
    )
    assert (yesterday["data_freshness_score"], yesterday["health_score"]) == (Decimal("100.00"), 71)
    # a past day is measured at its end (the tenant's midnight), the current day at AS_OF
    assert yesterday["measured_at"] == datetime.fromisoformat("2026-11-20T00:00:00+00:00")
    # the settings fingerprint: the same vars, but the tenants' time zones differ
    assert yesterday["settings_version"] == day["settings_version"]
    assert _day(settings, GLOBEX, "2026-11-20")["settings_version"] != day["settings_version"]
    before = _day(settings, ACME, "2026-11-06")
    assert (before["health_score"], before["data_freshness_score"], before["is_latest"]) == (100, None, False)
    with admin_engine(settings).connect() as conn:
        days = conn.execute(
            sa.text(
                "select tenant_id, min(score_date), max(score_date), count(*) from marts.fct_account_health_daily"
                " where tenant_id = any(:t) group by tenant_id order by tenant_id"
            ),
            {"t": list(TENANTS)},
        ).all()
    assert [tuple(row) for row in days] == [
        (ACME, date(2026, 11, 1), date(2026, 11, 20), 20),  # from the first run to AS_OF's day
        (GLOBEX, date(2026, 11, 20), date(2026, 11, 20), 1),
        (INITECH, date(2026, 11, 20), date(2026, 11, 20), 1),
    ]
    assert (
        _day(settings, GLOBEX, "2026-11-20")["health_score"],
        _day(settings, INITECH, "2026-11-20")["health_score"],
    ) == (
        100,
        64,
    )


# -- who sees whose health: row-level security as the app's reader role ------------------------


@pytest.fixture(scope="module")
def reader(settings: Settings, built: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(sqlalchemy_url(reader_url(settings)))
    yield engine
    engine.dispose()


def _seen_as(reader: sa.Engine, email: str) -> tuple[list[str], set[str]]:
    """(tenants the database declared for ``email``, this module's tenants whose rows it then sees)."""
    with reader.begin() as conn:
        declared = declare_scope(conn, email)
        seen = set(
            conn.execute(
                sa.text("select distinct tenant_id from marts.fct_account_health_daily where tenant_id = any(:t)"),
                {"t": list(TENANTS)},
            ).scalars()
        )
    return [tenant for tenant in declared if tenant in TENANTS], seen


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        (AMY, {ACME, GLOBEX}),  # her assigned tenants only
        (GIL, {INITECH}),
        (DORA, {ACME, GLOBEX, INITECH}),  # the account director: every tenant
        (PAT, {ACME, GLOBEX, INITECH}),  # platform admins too
        (OLGA, set()),  # a tenant's own org admin: not platform staff
        (MIA, set()),
        ("nobody@ah-pulse.example", set()),
    ],
)
def test_each_role_sees_exactly_its_tenants_health(reader: sa.Engine, email: str, expected: set[str]) -> None:
    declared, seen = _seen_as(reader, email)
    assert set(declared) == expected
    assert seen == expected


def test_a_tenant_scope_declared_for_dashboards_shows_no_health(reader: sa.Engine) -> None:
    """Without the account-health scope, declaring a tenant (as data.scoped does) shows nothing."""
    with reader.begin() as conn:
        conn.execute(sa.text("select set_config('pulse.tenant_ids', :t, true)"), {"t": ACME})
        assert conn.execute(sa.text("select count(*) from marts.fct_account_health_daily")).scalar_one() == 0
        # ... while the tenant's other marts are visible in the same transaction
        assert conn.execute(sa.text("select count(*) from marts.fct_agent_runs")).scalar_one() == 16
    with reader.begin() as conn:  # nothing declared: nothing visible
        assert conn.execute(sa.text("select count(*) from marts.fct_account_health_daily")).scalar_one() == 0


def test_the_scope_ends_with_the_transaction_and_the_reader_cannot_write(reader: sa.Engine) -> None:
    with reader.begin() as conn:
        assert set(declare_scope(conn, AMY)) >= {ACME, GLOBEX}
    with reader.begin() as conn:
        assert conn.execute(sa.text("select count(*) from marts.fct_account_health_daily")).scalar_one() == 0
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), reader.begin() as conn:
        declare_scope(conn, DORA)
        conn.execute(sa.text("update marts.fct_account_health_daily set health_score = 100"))


def test_the_portfolio_reads_the_latest_day_worst_first_with_the_account_managers(reader: sa.Engine) -> None:
    with reader.begin() as conn:
        declare_scope(conn, DORA)
        accounts = [row for row in portfolio(conn, DORA) if row["tenant_id"] in TENANTS]
        acme_days = history(conn, ACME, date(2026, 11, 18))
    assert [
        (row["tenant_id"], row["health_score"], row["health_band"], row["account_managers"]) for row in accounts
    ] == [
        (INITECH, 64, "amber", f"Gil Accounts <{GIL}>"),
        (ACME, 70, "amber", f"Amy Accounts <{AMY}>"),
        (GLOBEX, 100, "green", f"Amy Accounts <{AMY}>"),
    ]
    assert [(row["score_date"], row["health_score"]) for row in acme_days] == [
        (date(2026, 11, 18), 66),  # 2 runs vs 10 → 20, 50, 100, budget 100, no load yet: 4650 / 70
        (date(2026, 11, 19), 71),
        (date(2026, 11, 20), 70),
    ]
    with reader.begin() as conn:
        declare_scope(conn, AMY)
        assert history(conn, INITECH, date(2026, 11, 1)) == []  # not hers: not visible
