"""fct_account_health_daily built incrementally (dbt_project/macros/incremental_health.sql) gives
exactly what a rebuild of every day gives, while rebuilding only each tenant's recent days.

Two tenants are loaded from the sandbox: one (Europe/Berlin, an organisation budget) from its
agent platform and Jira, one (UTC) from its agent platform only, and built at WORLD_DAY 06:00.
The sandbox moves a day on (runs finish and start, work items move, new dlt loads), the tenants
are loaded again and the mart built incrementally at AS_OF. Its rows must equal a
rebuild of every day (var rebuild) at the same as_of, and the incremental build must have
rewritten only the days from the one that was current at the first build on (a row rewritten
gets a new xmin). A changed budget or weights rebuild a tenant whole, again equal to a rebuild.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from connectors.agent_platform import agent_platform_source, load_agent_platform
from connectors.jira import jira_source, load_jira
from connectors.sandbox import SandboxServer
from connectors.sandbox.agent_platform import token_for
from connectors.sandbox.tools import token_for as tool_token_for
from pulse import control
from pulse.budgets.store import set_budget
from pulse.db import admin_engine
from pulse.settings import Settings
from tests.incremental_builds import build_at, query, tenant_rows

# dlt stamps each load with the real clock, and the mart counts only the loads up to as_of.
# So this world's day follows the real one: it is the day before the tests were collected,
# first built that day at 06:00 (before any load) and then at noon two days later, after
# every load of the module even when the run crosses midnight.
WORLD_DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
FIRST_AS_OF = WORLD_DAY + timedelta(hours=6)
AS_OF = WORLD_DAY + timedelta(days=2, hours=12)
MIXED, AGENTS = "inc_h1", "inc_h2"
TENANTS = (MIXED, AGENTS)
BERLIN = ZoneInfo("Europe/Berlin")
MART = "marts.fct_account_health_daily"
MODEL = "fct_account_health_daily"
DEFAULT_WEIGHTS = {
    "agent_runs_trend": 20,
    "active_users_trend": 15,
    "agent_success_rate": 20,
    "budget_adherence": 15,
    "dmt_compliance_trend": 15,
    "data_freshness": 15,
}


@dataclass
class Builds:
    before: set[tuple[Any, ...]]
    incremental: set[tuple[Any, ...]]
    rebuilt: set[tuple[Any, ...]]
    #: tenant → the days the incremental build rewrote (a new xmin) or added
    rewritten: dict[str, list[date]]
    #: tenant → the day that was current at the first build
    first_latest: dict[str, date]
    #: tenant → every day of the incremental build
    days: dict[str, list[date]]


def row_versions(db_url: str) -> dict[tuple[str, date], str]:
    """(tenant, day) → the row's xmin: a row deleted and inserted again gets a new one."""
    found = query(
        db_url, f"select tenant_id, score_date, xmin::text from {MART} where tenant_id = any(%s)", list(TENANTS)
    )
    return {(tenant, day): xmin for tenant, day, xmin in found}


def days_of(db_url: str, tenant: str) -> list[date]:
    return [day for (day,) in query(db_url, f"select score_date from {MART} where tenant_id = %s order by 1", tenant)]


def rewritten_days(old: dict[tuple[str, date], str], new: dict[tuple[str, date], str]) -> dict[str, list[date]]:
    return {
        tenant: sorted(day for (owner, day), xmin in new.items() if owner == tenant and old.get((owner, day)) != xmin)
        for tenant in TENANTS
    }


def load_all(server: SandboxServer, db_url: str, pipelines: str) -> None:
    for tenant in TENANTS:
        load_agent_platform(
            tenant, db_url, agent_platform_source(server.url, token_for(tenant)), pipelines_dir=pipelines
        )
    load_jira(
        MIXED,
        db_url,
        jira_source(f"{server.url}/jira", {"email": "pulse@inc.example", "token": tool_token_for("jira", MIXED)}, {}),
        pipelines_dir=pipelines,
    )


@pytest.fixture(scope="module")
def builds(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    server = SandboxServer(now=WORLD_DAY, seed=41, scale=0.3, work_scale=0.3, history_days=56).start()
    pipelines = str(tmp_path_factory.mktemp("incremental_health"))
    try:
        with admin_engine(settings).begin() as conn:
            control.add_tenant(conn, MIXED, "Incremental health 1", actor="test", timezone="Europe/Berlin")
            control.add_tenant(conn, AGENTS, "Incremental health 2", actor="test")
            set_budget(conn, MIXED, "500", actor="test")
        load_all(server, db_url, pipelines)
        # The mart may already hold other test modules' tenants: these are built whole, as
        # tenants it has no row of.
        build_at(f"+{MODEL}", FIRST_AS_OF, cautious=True)
        before = tenant_rows(db_url, MART, TENANTS)
        first_versions = row_versions(db_url)
        first_latest = dict(
            query(
                db_url,
                f"select tenant_id, score_date from {MART} where tenant_id = any(%s) and is_latest",
                list(TENANTS),
            )
        )

        server.advance(days=1, touches_per_tenant=8)
        load_all(server, db_url, pipelines)

        build_at(f"+{MODEL}", AS_OF, cautious=True)
        incremental = tenant_rows(db_url, MART, TENANTS)
        rewritten = rewritten_days(first_versions, row_versions(db_url))
        days = {tenant: days_of(db_url, tenant) for tenant in TENANTS}
        build_at(MODEL, AS_OF, rebuild=True, cautious=True)
        rebuilt = tenant_rows(db_url, MART, TENANTS)
        yield Builds(before, incremental, rebuilt, rewritten, first_latest, days)
    finally:
        server.stop()


def test_an_incremental_build_equals_a_rebuild_of_every_day(builds: Builds) -> None:
    assert {row[0] for row in builds.incremental} == set(TENANTS)
    assert builds.incremental == builds.rebuilt


def test_the_tenants_have_every_factor_to_rebuild(db_url: str, builds: Builds) -> None:
    # the mixed tenant has items done, a budget, runs and loads: every factor has data some day
    with_data = query(
        db_url,
        f"select count(*) filter (where dmt_compliance_trend_score is not null),"
        f" count(*) filter (where budget_adherence_score is not null),"
        f" count(*) filter (where data_freshness_score is not null), count(*)"
        f" from {MART} where tenant_id = %s",
        MIXED,
    )[0]
    assert all(count > 0 for count in with_data), with_data
    for tenant in TENANTS:
        assert len(builds.days[tenant]) >= 50, (tenant, len(builds.days[tenant]))


def test_the_incremental_build_rewrote_only_the_days_from_the_one_current_before(builds: Builds) -> None:
    for tenant in TENANTS:
        rewritten = builds.rewritten[tenant]
        days = builds.days[tenant]
        # a suffix of the days, from the day that was current at the first build on at the latest
        assert rewritten == days[len(days) - len(rewritten) :], tenant
        assert rewritten[0] <= builds.first_latest[tenant] < rewritten[-1], (tenant, rewritten)
        assert rewritten[-1] == (AS_OF.astimezone(BERLIN if tenant == MIXED else UTC)).date()
        # the day moved runs, items and loads of the last two days only
        assert len(rewritten) <= 5, (tenant, rewritten)
    # rows that changed value: only rewritten days
    changed = builds.incremental - builds.before
    assert changed
    assert {(row[0], row[1]) for row in changed} <= {
        (tenant, day) for tenant, days in builds.rewritten.items() for day in days
    }


def test_past_days_are_measured_at_their_end_and_the_current_day_at_as_of(db_url: str, builds: Builds) -> None:
    measured = dict(query(db_url, f"select score_date, measured_at from {MART} where tenant_id = %s", MIXED))
    current = AS_OF.astimezone(BERLIN).date()
    assert measured.pop(current) == AS_OF
    assert measured
    for day, at in measured.items():
        assert at == datetime.combine(day + timedelta(days=1), datetime.min.time(), BERLIN), day


def _build_and_compare(db_url: str, **variables: object) -> dict[str, list[date]]:
    """Build the mart incrementally at AS_OF with ``variables``, then rebuild it: the rows must be
    equal. Returns the days the incremental build rewrote per tenant."""
    old = row_versions(db_url)
    build_at(MODEL, AS_OF, cautious=True, **variables)
    incremental = tenant_rows(db_url, MART, TENANTS)
    rewritten = rewritten_days(old, row_versions(db_url))
    build_at(MODEL, AS_OF, rebuild=True, cautious=True, **variables)
    assert incremental == tenant_rows(db_url, MART, TENANTS)
    return rewritten


def done_verdicts(db_url: str, tenant: str) -> dict[str, tuple[datetime, bool]]:
    """item → (done_at, is_dmt_compliant) of the tenant's done items in the compliance mart."""
    found = query(
        db_url,
        "select work_item_uid, done_at, is_dmt_compliant from marts.fct_work_item_compliance"
        " where tenant_id = %s and dmt_stage = 'done'",
        tenant,
    )
    return {item: (done_at, compliant) for item, done_at, compliant in found}


def test_an_old_item_whose_compliance_changed_rebuilds_from_its_day(db_url: str, builds: Builds) -> None:
    # A project's coverage threshold moves past an old item's coverage, as its only rule that
    # fails or would: fct_work_item_compliance judges the project's items again (no load), logs the moments
    # done of those whose verdict changed (intermediate.work_item_done_changes); the health mart
    # rebuilds from the earliest one's day.
    with psycopg.connect(db_url, autocommit=True) as conn:
        # compliant (the threshold rises above its coverage) or failing coverage only (the
        # threshold falls to its coverage)
        found = conn.execute(
            "select project_key, dmt_coverage_pct, is_dmt_compliant from marts.fct_work_item_compliance"
            " where tenant_id = %s and dmt_stage = 'done' and not has_valid_exception and done_at < %s"
            "  and dmt_coverage_pct < 99 and (is_dmt_compliant or failed_rules = 'coverage')"
            " order by done_at desc limit 1",
            (MIXED, WORLD_DAY - timedelta(days=7)),
        ).fetchone()
        assert found is not None
        project, coverage, compliant = found
        before = done_verdicts(db_url, MIXED)
        conn.execute(
            "insert into control.projects (tenant_id, key, name, dmt_coverage_threshold) values (%s, %s, %s, %s)"
            " on conflict (tenant_id, key) do update set dmt_coverage_threshold = excluded.dmt_coverage_threshold",
            (MIXED, project, project, coverage + 1 if compliant else coverage),
        )
    try:
        old = row_versions(db_url)
        build_at("fct_work_item_compliance", AS_OF, cautious=True)
        after = done_verdicts(db_url, MIXED)
        flipped = [item for item in before if before[item] != after.get(item)]
        assert flipped
        # the log holds each flipped item's moment done as the row was and as it is (the same
        # moment: only the verdict moved), and nothing of the items judged alike again
        logged = query(
            db_url,
            "select done_at, whole_tenant from intermediate.work_item_done_changes where tenant_id = %s",
            MIXED,
        )
        assert sorted(logged) == sorted((before[item][0], False) for item in flipped for _ in range(2))
        build_at(MODEL, AS_OF, cautious=True)
        left = query(db_url, "select count(*) from intermediate.work_item_done_changes where tenant_id = %s", MIXED)
        assert left == [(0,)]  # taken by the health mart
        done_date = min(before[item][0].astimezone(BERLIN).date() for item in flipped)
        assert done_date < (WORLD_DAY - timedelta(days=7)).date() + timedelta(days=1)
        rewritten = rewritten_days(old, row_versions(db_url))
        incremental = tenant_rows(db_url, MART, TENANTS)
        build_at(MODEL, AS_OF, rebuild=True, cautious=True)
        assert incremental == tenant_rows(db_url, MART, TENANTS)
        assert rewritten[MIXED] == [day for day in days_of(db_url, MIXED) if day >= done_date]
        assert rewritten[AGENTS] == [AS_OF.date()]
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("delete from control.projects where tenant_id = %s and key = %s", (MIXED, project))
        build_at(f"fct_work_item_compliance {MODEL}", AS_OF, cautious=True)


def test_a_budget_change_rebuilds_the_tenant_whole(settings: Settings, db_url: str, builds: Builds) -> None:
    with admin_engine(settings).begin() as conn:
        set_budget(conn, MIXED, "40", actor="test")
    rewritten = _build_and_compare(db_url)
    everything = days_of(db_url, MIXED)
    assert rewritten[MIXED] == everything
    # nothing changed for the other tenant: its current day only
    assert rewritten[AGENTS] == [AS_OF.date()]
    assert query(db_url, f"select distinct budget_amount_usd::text from {MART} where tenant_id = %s", MIXED) == [
        ("40.00",)
    ]


def test_changed_weights_rebuild_every_tenant_whole(db_url: str, builds: Builds) -> None:
    weights = {**DEFAULT_WEIGHTS, "data_freshness": 40}
    rewritten = _build_and_compare(db_url, health_weights=weights)
    for tenant in TENANTS:
        everything = days_of(db_url, tenant)
        assert rewritten[tenant] == everything, tenant
    # and back: whole again
    rewritten = _build_and_compare(db_url)
    assert len(rewritten[AGENTS]) == len(builds.days[AGENTS])


def test_a_tenant_gone_from_control_loses_its_rows(db_url: str, builds: Builds) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("delete from control.tenants where slug = %s", (AGENTS,))
    build_at(MODEL, AS_OF, cautious=True)
    left = query(db_url, f"select distinct tenant_id from {MART} where tenant_id = any(%s)", list(TENANTS))
    assert left == [(MIXED,)]
