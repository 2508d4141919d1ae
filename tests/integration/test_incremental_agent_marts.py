"""The agent models built incrementally (dbt_project/macros/incremental_runs.sql) give exactly
what a rebuild of every run gives, while rebuilding only the runs that changed and the days and
months they touch.

Two tenants are loaded from the sandbox's agent platform (one also has Claude Code telemetry and
a team in control.teams, one has budgets) and built; the sandbox moves a day on (running and
queued runs finish, new ones start), Claude Code events arrive for an old and a new prompt, the
tenants are loaded again and the models built again incrementally with a later as_of. The rows
must equal those of a rebuild of every run (var rebuild) with the same as_of, and the
incremental build must have rebuilt only the reloaded runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from connectors.agent_platform import agent_platform_source, load_agent_platform
from connectors.sandbox import SandboxServer
from connectors.sandbox.agent_platform import token_for
from pulse import control
from pulse.budgets.store import set_budget
from pulse.db import admin_engine
from pulse.settings import Settings
from pulse.telemetry.store import ConnectionPool, TelemetryStore
from tests.incremental_builds import build_at, query, tenant_rows

WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)
PLATFORM, MIXED = "inc_ag1", "inc_ag2"
TENANTS = (PLATFORM, MIXED)
#: Every agent model and the schema it is in.
MODELS = {
    "int_agent_runs": "intermediate",
    "fct_agent_runs": "marts",
    "fct_agent_usage_daily": "marts",
    "fct_agent_team_ranks_monthly": "marts",
    "fct_agent_top_users_monthly": "marts",
    "fct_agent_spend_monthly": "marts",
    "fct_budget_utilization": "marts",
}
#: The models built per changed run or group (fct_budget_utilization is rebuilt whole).
INCREMENTAL = tuple(model for model in MODELS if model != "fct_budget_utilization")
SELECTION = "+marts.agents"


@dataclass
class Builds:
    first_watermark: dict[str, datetime]
    reloaded: dict[str, int]
    runs: dict[str, int]
    before: dict[str, set[tuple[Any, ...]]]
    incremental: dict[str, set[tuple[Any, ...]]]
    rebuilt: dict[str, set[tuple[Any, ...]]]
    #: fct_agent_spend_monthly's (tenant, month) groups the incremental build wrote, and those
    #: with a run it rebuilt in fct_agent_runs
    spend_months_written: set[tuple[Any, ...]]
    spend_months_of_rebuilt_runs: set[tuple[Any, ...]]


def rows_of(db_url: str, model: str) -> set[tuple[Any, ...]]:
    return tenant_rows(db_url, f"{MODELS[model]}.{model}", TENANTS)


def spend_row_versions(db_url: str) -> set[tuple[Any, ...]]:
    """(tenant, month, the row's version: xmin and team) of fct_agent_spend_monthly's rows."""
    rows = query(
        db_url,
        "select tenant_id, spend_month, xmin::text || ':' || coalesce(team_id::text, '-') "
        "from marts.fct_agent_spend_monthly where tenant_id = any(%s)",
        list(TENANTS),
    )
    return {tuple(row) for row in rows}


def build(as_of: datetime, **extra: object) -> None:
    build_at(SELECTION, as_of, **extra)


def load_all(server: SandboxServer, db_url: str, pipelines: str) -> None:
    for tenant in TENANTS:
        source = agent_platform_source(server.url, token_for(tenant))
        load_agent_platform(tenant, db_url, source, pipelines_dir=pipelines)


def claude_code_event(prompt: str, name: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """One stored OTLP log record of a Claude Code prompt (the receiver's columns)."""
    return {
        "event_id": f"{prompt}:{name}:{at.isoformat()}",
        "event_name": name,
        "event_at": at,
        "session_id": f"session-{prompt}",
        "prompt_id": prompt,
        "user_id": "u-ada",
        "user_email": "ada@inc-ag2.example",
        "organization_id": "org",
        "team": "agents",
        "model": "claude-sonnet-4-5" if name == "api_request" else None,
        "cost_usd": 0.25 if name == "api_request" else None,
        "input_tokens": 1000 if name == "api_request" else None,
        "output_tokens": 200 if name == "api_request" else None,
        "cache_read_tokens": 0 if name == "api_request" else None,
        "cache_creation_tokens": 0 if name == "api_request" else None,
        "duration_ms": 1500 if name == "api_request" else None,
        "success": None,
        "tool_name": None,
        "status_code": None,
        "error": None,
        "request_id": None,
        "attributes": {},
        "resource": {},
        **fields,
    }


def raw_reloaded(db_url: str, tenant: str, since: datetime) -> int:
    """Runs of ``tenant`` loaded after ``since``: platform rows and Claude Code prompts."""
    platform = query(
        db_url,
        f"select count(*) from raw_agent_platform__{tenant}.runs "
        "where to_timestamp(_dlt_load_id::double precision) > %s",
        since,
    )[0][0]
    prompts = query(
        db_url,
        "select count(distinct prompt_id) from raw_claude_code__inc_ag2.otel_events where received_at > %s",
        since,
    )[0][0]
    return int(platform) + (int(prompts) if tenant == MIXED else 0)


@pytest.fixture(scope="module")
def builds(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    server = SandboxServer(now=WORLD_DAY, seed=31, scale=0.3, history_days=56).start()
    pipelines = str(tmp_path_factory.mktemp("incremental_agents"))
    pool = ConnectionPool(db_url, size=2)
    telemetry = TelemetryStore(pool)
    try:
        with admin_engine(settings).begin() as conn:
            for tenant in TENANTS:
                control.add_tenant(conn, tenant, f"Incremental {tenant}", actor="test", timezone="Europe/Berlin")
            control.add_team(conn, MIXED, "agents", "Agents", actor="test")
            set_budget(conn, PLATFORM, "500", actor="test")
        load_all(server, db_url, pipelines)
        asked = WORLD_DAY - timedelta(days=3, hours=2)
        telemetry.write_events(
            MIXED,
            [
                claude_code_event("p-old", "user_prompt", asked),
                claude_code_event("p-old", "api_request", asked + timedelta(seconds=5)),
                claude_code_event("p-kept", "user_prompt", WORLD_DAY - timedelta(days=2)),
                claude_code_event("p-kept", "api_request", WORLD_DAY - timedelta(days=2) + timedelta(seconds=5)),
            ],
        )
        # The models may already hold other test modules' tenants: these are built whole, as
        # tenants the models have no row of.
        build(WORLD_DAY + timedelta(hours=6))
        first_watermark = dict(
            query(
                db_url,
                "select tenant_id, max(source_loaded_at) from intermediate.int_agent_runs "
                "where tenant_id = any(%s) group by tenant_id",
                list(TENANTS),
            )
        )
        before = {model: rows_of(db_url, model) for model in MODELS}

        server.advance(days=1)
        load_all(server, db_url, pipelines)
        # A late event of an old prompt (one more API request, hours later: the run's end moves
        # and it costs more) and a new prompt.
        telemetry.write_events(
            MIXED,
            [
                claude_code_event("p-old", "api_request", WORLD_DAY - timedelta(days=3) + timedelta(hours=1)),
                claude_code_event("p-new", "user_prompt", WORLD_DAY + timedelta(days=1)),
                claude_code_event("p-new", "api_request", WORLD_DAY + timedelta(days=1, seconds=5)),
            ],
        )
        reloaded = {tenant: raw_reloaded(db_url, tenant, first_watermark[tenant]) for tenant in TENANTS}
        runs = {
            tenant: int(query(db_url, f"select count(*) from raw_agent_platform__{tenant}.runs")[0][0])
            for tenant in TENANTS
        }

        as_of = WORLD_DAY + timedelta(days=2)
        written_before = spend_row_versions(db_url)
        build(as_of)
        incremental = {model: rows_of(db_url, model) for model in MODELS}
        written = {(tenant, month) for tenant, month, version in spend_row_versions(db_url) - written_before}
        of_rebuilt_runs = {
            (tenant, month)
            for tenant in TENANTS
            for (month,) in query(
                db_url,
                "select distinct run_month from marts.fct_agent_runs where tenant_id = %s and source_loaded_at > %s",
                tenant,
                first_watermark[tenant],
            )
        }
        build(as_of, rebuild=True)
        rebuilt = {model: rows_of(db_url, model) for model in MODELS}
        yield Builds(first_watermark, reloaded, runs, before, incremental, rebuilt, written, of_rebuilt_runs)
    finally:
        pool.close()
        server.stop()


@pytest.mark.parametrize("model", list(MODELS))
def test_an_incremental_build_equals_a_rebuild_of_every_run(builds: Builds, model: str) -> None:
    assert builds.incremental[model], f"{model} has no rows of the test tenants"
    assert builds.incremental[model] == builds.rebuilt[model]


def test_the_day_reloaded_a_few_runs_of_each_tenant(builds: Builds) -> None:
    for tenant in TENANTS:
        assert builds.runs[tenant] >= 100, builds.runs
        # advance(): the queued and running runs finish and two start; MIXED: two prompts.
        assert 2 <= builds.reloaded[tenant] <= builds.runs[tenant] / 10, (tenant, builds.reloaded)


def test_only_the_reloaded_runs_got_a_newer_watermark(builds: Builds, db_url: str) -> None:
    for model in ("int_agent_runs", "fct_agent_runs"):
        schema = MODELS[model]
        for tenant in TENANTS:
            newer = query(
                db_url,
                f"select count(*) from {schema}.{model} where tenant_id = %s and source_loaded_at > %s",
                tenant,
                builds.first_watermark[tenant],
            )[0][0]
            assert newer == builds.reloaded[tenant], (model, tenant)


def test_the_monthly_spend_rewrote_only_the_months_of_rebuilt_runs(builds: Builds) -> None:
    # A month's sum moves with any of its runs, so the rows are few and most of them change:
    # what matters is that the months without a rebuilt run were left as they were.
    assert builds.spend_months_of_rebuilt_runs, "no run was rebuilt"
    assert builds.spend_months_written == builds.spend_months_of_rebuilt_runs
    months = {(row[0], row[1]) for row in builds.incremental["fct_agent_spend_monthly"]}
    assert months - builds.spend_months_written, "every month had a rebuilt run: the test shows nothing"


def test_the_incremental_build_changed_few_rows(builds: Builds) -> None:
    for model in (model for model in INCREMENTAL if model != "fct_agent_spend_monthly"):
        changed = len(builds.incremental[model] - builds.before[model])
        assert changed < len(builds.incremental[model]) / 4, (model, changed)
    # every reloaded run is a changed row of fct_agent_runs (its status, end or cost moved)
    assert len(builds.incremental["fct_agent_runs"] - builds.before["fct_agent_runs"]) >= 2


def test_the_moved_claude_code_prompt_is_one_run_with_both_requests(builds: Builds, db_url: str) -> None:
    cost, ended_at = query(
        db_url,
        "select cost_usd, ended_at from marts.fct_agent_runs where tenant_id = %s and agent_run_id = %s",
        MIXED,
        "claude_code:prompt:p-old",
    )[0]
    assert str(cost) == "0.500000"
    assert ended_at == WORLD_DAY - timedelta(days=3) + timedelta(hours=1, seconds=1.5)


def test_a_renamed_team_and_a_moved_time_zone_are_rebuilt(builds: Builds, settings: Settings, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update control.teams set name = 'Agent Crew' where tenant_id = %s and slug = 'agents'", (MIXED,))
        conn.execute("update control.tenants set timezone = 'Asia/Tokyo' where slug = %s", (PLATFORM,))
    as_of = WORLD_DAY + timedelta(days=2)
    build(as_of)
    incremental = {model: rows_of(db_url, model) for model in MODELS}
    build(as_of, rebuild=True)
    for model in MODELS:
        assert incremental[model] == rows_of(db_url, model), model
    teams = query(
        db_url,
        "select distinct team_name from marts.fct_agent_usage_daily where tenant_id = %s and team_id is not null",
        MIXED,
    )
    assert teams == [("Agent Crew",)]


def test_a_corrected_price_and_an_added_team_are_rebuilt(builds: Builds, settings: Settings, db_url: str) -> None:
    """Neither loads a run again: the build notices them from the versions it recorded per
    tenant (macros/agent_run_versions.sql), int_agent_runs' prices and fct_agent_runs' teams."""
    team_name, model_name = query(
        db_url,
        "select team_name, model_name from marts.fct_agent_runs where tenant_id = %s and team_id is null "
        "and team_name is not null and input_cost_usd > 0 and model_name is not null "
        "group by team_name, model_name order by count(*) desc limit 1",
        PLATFORM,
    )[0]
    costs = "select agent_run_id, input_cost_usd from marts.fct_agent_runs where tenant_id = %s and model_name = %s"
    before = query(db_url, costs, PLATFORM, model_name)
    price = (
        "update reference.model_prices set input_usd_per_mtok = input_usd_per_mtok + %s "
        "where starts_with(%s, model_name)"
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        control_team = "insert into control.teams (tenant_id, slug, name) values (%s, 'added', %s)"
        conn.execute(control_team, (PLATFORM, team_name))
        conn.execute(price, (1, model_name))
    try:
        # the models only: the seed would put the price back
        as_of, models = WORLD_DAY + timedelta(days=2), f"{SELECTION},resource_type:model"
        build_at(models, as_of)
        incremental = {model: rows_of(db_url, model) for model in MODELS}
        build_at(models, as_of, rebuild=True)
        for model in MODELS:
            assert incremental[model] == rows_of(db_url, model), model
        after = dict(query(db_url, costs, PLATFORM, model_name))
        assert any(after[run] != cost for run, cost in before), "the corrected price re-priced no run"
        named = query(
            db_url,
            "select count(*) filter (where team_id is null), count(*) from marts.fct_agent_runs "
            "where tenant_id = %s and team_name = %s",
            PLATFORM,
            team_name,
        )[0]
        assert named[0] == 0 and named[1] > 0, named
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(price, (-1, model_name))


def test_a_tenant_whose_raw_data_is_gone_loses_its_rows(builds: Builds, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("drop schema raw_agent_platform__inc_ag1 cascade")
    build(WORLD_DAY + timedelta(days=2))
    for model in INCREMENTAL:
        left = query(
            db_url,
            f"select distinct tenant_id from {MODELS[model]}.{model} where tenant_id = any(%s)",
            list(TENANTS),
        )
        assert set(left) == {(MIXED,)}, model
