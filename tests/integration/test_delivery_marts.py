"""The delivery marts (dbt_project/models/marts/delivery) over real loads of three tenants,
compared with what their sandbox worlds say happened:

* ``dm_a``: Jira + GitHub, with teams and a registered project, its calendar in a time zone
  where some of its pull requests open in another week than in UTC (Asia/Tokyo if the day's
  world has one there);
* ``dm_c``: ClickUp + GitHub (UTC);
* ``dm_f``: Azure Boards + Azure DevOps Git, with teams named after its projects' keys.

Expected values come from the worlds (tests/delivery_expectations.py), never from the
warehouse; only each sprint's window is read back, as test_work_models.py does. ClickUp keeps
no sprint history, so its sprints are not compared (as in test_work_models.py). The build runs
with ``as_of`` fixed, so open periods have a known end and a rebuild is identical.

The same warehouse serves the Sprint dashboard's reads (apps/streamlit/sprint_data.py) as an
org admin through the row-level-security reader role: their values against the worlds where
the expectations compute them, else against the marts read as admin; another tenant's user
refused; row-level security hiding every other tenant's row even when the query names it;
and bench/dashboard_queries.measure on three tenants.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from connectors.azure_boards import azure_boards_source, load_azure_boards
from connectors.azure_devops_git import azure_devops_git_source, load_azure_devops_git
from connectors.clickup import clickup_source, load_clickup
from connectors.github import github_source, load_github
from connectors.jira import jira_source, load_jira
from connectors.sandbox import SandboxServer
from connectors.sandbox import token_for as github_token
from connectors.sandbox.azure_common import project_name, pull_request_id
from connectors.sandbox.azure_git import payloads
from connectors.sandbox.github.world import PullRequest
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import DONE, IN_REVIEW, WorkWorld
from pulse import control
from pulse.db import admin_engine, reader_url
from pulse.settings import Settings
from tests import delivery_expectations as expect
from tests.conftest import run_dbt
from tests.work_expectations import Bounds

#: The sandbox world's day, fixed: a world is a function of its day, so today's world would
#: give the test other items (and maybe none of a case it needs) each day.
WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)

JIRA, CLICKUP, AZURE = "dm_a", "dm_c", "dm_f"
#: Candidate zones for dm_a, east and west of UTC: the first that moves a pull request to another week.
ZONES = ("Asia/Tokyo", "Pacific/Auckland", "Pacific/Honolulu", "Etc/GMT+12")
MARTS = (
    "dim_people",
    "dim_projects",
    "dim_teams",
    "dim_sprints",
    "fct_sprints",
    "fct_developer_sprints",
    "fct_pr_health",
    "fct_pull_requests",
    "fct_source_freshness",
)
#: The delivery marts and what they read, and the compliance marts (the Sprint dashboard shows the
#: sprint's open flags); the data tests of the models upstream are left to their own tests
#: (test_work_models.py, test_compliance_marts.py, the staging tests), and unit tests run in every
#: project build. fct_source_freshness reads the tenants' loads (staging.dlt_loads).
SELECT = (
    "staging.jira staging.clickup staging.azure_boards staging.azure_devops_git staging.github staging.dlt_loads "
    "intermediate.work marts.compliance marts.delivery"
)
NOT_THESE_TESTS = (
    "staging,resource_type:test",
    "intermediate,resource_type:test",
    "marts.compliance,resource_type:test",
    "resource_type:unit_test",
)


@dataclass
class Built:
    server: SandboxServer
    as_of: datetime
    timezone: str
    teams: dict[str, dict[str, str]]
    registered: dict[str, float]

    def work(self, tenant: str) -> WorkWorld:
        return self.server.work_world(tenant)


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def assert_close(got: dict[str, Any], want: dict[str, Any], what: str, places: int = 2) -> None:
    """Figures equal, numbers to the mart's rounding (``places`` decimals)."""
    assert got.keys() == want.keys(), what
    for key, value in want.items():
        if value is None or got[key] is None:
            assert got[key] == value, f"{what}: {key}"
        else:
            assert float(got[key]) == pytest.approx(value, abs=0.6 * 10**-places), f"{what}: {key}"


@pytest.fixture(scope="module")
def built(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    server = SandboxServer(seed=13, scale=0.3, work_scale=0.3, history_days=56, now=WORLD_DAY).start()
    pipelines = str(tmp_path_factory.mktemp("delivery_marts"))
    try:
        work, prs = server.work_world(JIRA), list(server.world(JIRA).pull_requests())
        utc = expect.pr_health(prs, "UTC").keys()
        timezone = next((zone for zone in ZONES if expect.pr_health(prs, zone).keys() != utc), None)
        assert timezone is not None, "no candidate zone moves one of dm_a's pull requests to another week"
        # Teams (slug → name): dm_a's are named as its Jira projects begin ("Data" owns "Data team"),
        # dm_f's by slug as its Azure projects are named ("iam" owns "IAM"); "nobody" owns nothing.
        teams = {
            JIRA: {p.team: p.team.capitalize() for p in work.projects} | {"nobody": "Nobody"},
            AZURE: {p.key.lower(): p.team.capitalize() for p in server.work_world(AZURE).projects},
        }
        registered = {work.projects[0].key: 90.0}
        with admin_engine(settings).begin() as conn:
            control.add_tenant(conn, JIRA, "Delivery marts Jira", actor="test", timezone=timezone)
            control.add_tenant(conn, CLICKUP, "Delivery marts ClickUp", actor="test")
            control.add_tenant(conn, AZURE, "Delivery marts Azure", actor="test")
            for tenant, named in teams.items():
                for slug, name in named.items():
                    control.add_team(conn, tenant, slug, name, actor="test")
            for key, threshold in registered.items():
                control.add_project(conn, JIRA, key, key, actor="test", dmt_coverage_threshold=threshold)
        jira = {"email": "pulse@dm.example", "token": token_for("jira", JIRA)}
        load_jira(JIRA, db_url, jira_source(f"{server.url}/jira", jira, {}), pipelines_dir=pipelines)
        clickup = {"token": token_for("clickup", CLICKUP)}
        load_clickup(CLICKUP, db_url, clickup_source(f"{server.url}/clickup", clickup, {}), pipelines_dir=pipelines)
        azure_url, azure = f"{server.url}/azure/{AZURE}-eng", {"token": token_for("azure", AZURE)}
        load_azure_boards(AZURE, db_url, azure_boards_source(azure_url, azure, {}), pipelines_dir=pipelines)
        git_config = {"project": payloads.git_project(server.work_world(AZURE))}
        load_azure_devops_git(
            AZURE, db_url, azure_devops_git_source(azure_url, azure, git_config), pipelines_dir=pipelines
        )
        for tenant in (JIRA, CLICKUP):
            source = github_source(server.url, github_token(tenant), f"{tenant}-eng")
            load_github(tenant, db_url, source, pipelines_dir=pipelines)
        as_of = datetime.now(UTC).replace(microsecond=0)
        variables = json.dumps({"as_of": as_of.isoformat()})
        run_dbt(["build", "--select", SELECT, "--exclude", *NOT_THESE_TESTS, "--vars", variables])
        yield Built(server, as_of, timezone, teams, registered)
    finally:
        server.stop()


def windows(db_url: str, tenant: str) -> dict[str, tuple[str, Bounds]]:
    """Each sprint's (project, window) as fct_sprints has it, by the tool's sprint id."""
    rows = query(
        db_url,
        "select sprints.sprint_id, facts.project_key, facts.start_at, facts.window_end_at "
        "from marts.fct_sprints as facts inner join marts.dim_sprints as sprints "
        "on sprints.tenant_id = facts.tenant_id and sprints.sprint_uid = facts.sprint_uid "
        "where facts.tenant_id = %s",
        tenant,
    )
    return {row[0]: (row[1], Bounds(start=row[2], end=max(row[2], row[3]))) for row in rows}


def sprint_key(tenant: str, sprint_name: str, keys: dict[str, Any], sprint_id: int) -> str:
    if tenant == AZURE:
        return next(k for k in keys if k.endswith(f"\\{sprint_name}"))
    return str(sprint_id)


def loaded_pull_requests(built: Built, db_url: str, tenant: str) -> dict[int, PullRequest]:
    """The GitHub-world pull requests the tenant's git host served, by world id."""
    github = built.server.world(tenant)
    loaded = {
        row[0]
        for row in query(db_url, "select pull_request_id from marts.fct_pull_requests where tenant_id = %s", tenant)
    }
    prefix = "azure_devops_git" if built.work(tenant).git_host == "azure_devops" else "github"

    def key(pr: PullRequest) -> str:
        return f"{prefix}:{pull_request_id(github, pr) if prefix == 'azure_devops_git' else pr.id}"

    return {pr.id: pr for pr in github.pull_requests() if key(pr) in loaded}


@pytest.mark.parametrize("tenant", [JIRA, AZURE])
def test_sprint_figures_match_the_world(built: Built, db_url: str, tenant: str) -> None:
    work = built.work(tenant)
    prs = loaded_pull_requests(built, db_url, tenant)
    # Azure DevOps keeps each reviewer's latest vote only, so review timings follow GitHub's history
    # on the GitHub tenant alone (see the report of this test's author); merges count on both.
    reviews = tenant != AZURE
    names = [
        "committed_points", "completed_points", "say_do_ratio", "throughput", "completed_stories",
        "completed_bugs", "completed_tasks", "post_release_defects", "defect_density", "mean_cycle_time_days",
        "scope_items", "blocked_days_total", "prs_merged",
        *(["share_reviewed", "mean_hours_to_first_review"] if reviews else []),
    ]  # fmt: skip
    got = {
        row[0]: dict(zip(names, row[1:], strict=True))
        for row in query(
            db_url,
            f"select sprints.sprint_id, {', '.join(names)} from marts.fct_sprints as facts "
            "inner join marts.dim_sprints as sprints "
            "on sprints.tenant_id = facts.tenant_id and sprints.sprint_uid = facts.sprint_uid "
            "where facts.tenant_id = %s",
            tenant,
        )
    }
    bounds = windows(db_url, tenant)
    assert len(got) == len(work.sprints)
    exercised: dict[str, float] = dict.fromkeys(("completed", "defects", "blocked", "prs", "partial_say_do"), 0.0)
    for sprint in work.sprints:
        key = sprint_key(tenant, sprint.name, got, sprint.id)
        want = expect.sprint_figures(work, sprint.id, bounds[key][1], built.as_of, prs, reviews=reviews)
        assert_close(got[key], want, f"{tenant} {sprint.name}")
        exercised["completed"] += want["completed_points"] or 0
        exercised["defects"] += want["post_release_defects"] or 0
        exercised["blocked"] += want["blocked_days_total"] or 0
        exercised["prs"] += want["prs_merged"] or 0
        exercised["partial_say_do"] += 0 < (want["say_do_ratio"] or 0) < 1
    # The comparison means something only if the world exercised every measure.
    assert all(value > 0 for value in exercised.values()), exercised


def test_developer_sprint_figures_match_the_world(built: Built, db_url: str) -> None:
    work, github = built.work(JIRA), built.server.world(JIRA)
    names = (
        "items_completed, points_completed, commits, prs_authored, prs_merged, prs_reviewed, "
        "mean_review_turnaround_hours, defects_attributed"
    )
    columns = [c.strip() for c in names.split(",")]
    rows = query(
        db_url,
        f"select sprints.sprint_id, facts.person_id, {names} from marts.fct_developer_sprints as facts "
        "inner join marts.dim_sprints as sprints "
        "on sprints.tenant_id = facts.tenant_id and sprints.sprint_uid = facts.sprint_uid "
        "where facts.tenant_id = %s",
        JIRA,
    )
    got: dict[str, dict[str, dict[str, Any]]] = {}
    for sprint_id, person, *values in rows:
        got.setdefault(sprint_id, {})[person] = dict(zip(columns, values, strict=True))
    exercised: set[str] = set()
    for sprint_id, (project_key, bounds) in windows(db_url, JIRA).items():
        want = expect.developer_figures(work, github, int(sprint_id), project_key, bounds)
        assert got.get(sprint_id, {}).keys() == want.keys(), sprint_id
        for person, figures in want.items():
            assert_close(got[sprint_id][person], figures, f"{sprint_id} {person}")
            exercised |= {k for k, v in figures.items() if v}
    assert exercised == set(columns)


def test_pr_health_follows_each_tenants_calendar(built: Built, db_url: str) -> None:
    names = (
        "prs_opened, prs_reviewed, prs_merged, merged_without_review, share_reviewed, "
        "p50_hours_to_first_review, p90_hours_to_first_review, mean_reviews_per_pr, mean_reviewers_per_pr"
    )
    columns = [c.strip() for c in names.split(",")]
    for tenant, timezone in ((JIRA, built.timezone), (CLICKUP, "UTC")):
        got = {
            (row[0], row[1]): dict(zip(columns, row[2:], strict=True))
            for row in query(
                db_url,
                f"select repository, week_start, {names} from marts.fct_pr_health where tenant_id = %s",
                tenant,
            )
        }
        want = expect.pr_health(built.server.world(tenant).pull_requests(), timezone)
        assert got.keys() == want.keys(), tenant
        for key, figures in want.items():
            assert_close(got[key], figures, f"{tenant} {key}")


def test_dimensions_carry_teams_projects_and_people(built: Built, db_url: str) -> None:
    work = built.work(JIRA)
    for tenant, named in built.teams.items():
        teams = {
            row[0]: row[1]
            for row in query(db_url, "select team_slug, project_keys from marts.dim_teams where tenant_id = %s", tenant)
        }
        names = {p.key: p.name if tenant == JIRA else project_name(p) for p in built.work(tenant).projects}
        want = {slug: ", ".join(keys) for slug, keys in expect.team_projects(names, named).items()}
        assert teams == want, tenant
        assert sorted(key for keys in teams.values() if keys for key in keys.split(", ")) == sorted(
            p.key for p in built.work(tenant).projects
        ), tenant

    registered = {
        row[0]: (row[1], row[2], float(row[3]))
        for row in query(
            db_url,
            "select project_key, project_name, is_registered, dmt_coverage_threshold from marts.dim_projects "
            "where tenant_id = %s",
            JIRA,
        )
    }
    assert registered == {
        p.key: (p.name, p.key in built.registered, built.registered.get(p.key, 80.0)) for p in work.projects
    }
    for tenant in (JIRA, CLICKUP, AZURE):
        people = {
            row[0] for row in query(db_url, "select person_id from marts.dim_people where tenant_id = %s", tenant)
        }
        assert {p.email for p in built.work(tenant).people} <= people, tenant


def test_azure_pull_requests_reach_fct_pull_requests(built: Built, db_url: str) -> None:
    github = built.server.world(AZURE)
    want = {
        f"azure_devops_git:{pull_request_id(github, pr)}": (
            "merged" if pr.merged_at else ("open" if pr.closed_at is None else "closed"),
            pr.merged_at is not None,
        )
        for pr in github.pull_requests()
    }
    got = {
        row[0]: (row[1], row[2])
        for row in query(
            db_url,
            "select pull_request_id, state, is_merged from marts.fct_pull_requests "
            "where tenant_id = %s and source_type = 'azure_devops_git'",
            AZURE,
        )
    }
    assert len(want) >= 10
    assert got == want


#: The sources each tenant loaded (built's loads).
LOADED = {JIRA: ("github", "jira"), CLICKUP: ("clickup", "github"), AZURE: ("azure_boards", "azure_devops_git")}


def test_source_freshness_is_each_source_s_newest_completed_load(built: Built, db_url: str) -> None:
    # Derived here from each raw dataset's own _dlt_loads: the completed loads (status 0), the
    # newest by the id's number.
    for tenant, sources in LOADED.items():
        want = {}
        for source in sources:
            loads = query(db_url, f"select load_id, status, inserted_at from raw_{source}__{tenant}._dlt_loads")
            completed = [load for load in loads if load[1] == 0]
            newest = max(completed, key=lambda load: Decimal(load[0]))
            want[source] = (newest[0], newest[2], len(completed))
        got = {
            row[0]: row[1:]
            for row in query(
                db_url,
                "select source_type, last_load_id, last_loaded_at, completed_loads"
                " from marts.fct_source_freshness where tenant_id = %s",
                tenant,
            )
        }
        assert got == want, tenant


def test_source_freshness_shows_the_reader_only_its_declared_tenant(built: Built, settings: Settings) -> None:
    def seen(declared: str | None) -> set[tuple[str, str]]:
        with psycopg.connect(reader_url(settings)) as conn, conn.transaction():
            if declared is not None:
                conn.execute("select set_config('pulse.tenant_ids', %s, true)", (declared,))
            rows = conn.execute(
                "select tenant_id, source_type from marts.fct_source_freshness where tenant_id = any(%s)",
                (list(LOADED),),
            ).fetchall()
        return set(rows)

    assert seen(JIRA) == {(JIRA, source) for source in LOADED[JIRA]}
    assert seen(f"{AZURE},{CLICKUP}") == {(tenant, source) for tenant in (AZURE, CLICKUP) for source in LOADED[tenant]}
    assert seen(None) == set()


def checksums(db_url: str, tenant: str) -> dict[str, str]:
    sql = "select coalesce(md5(string_agg(t::text, '|' order by t::text)), '') from marts.{} as t where tenant_id = %s"
    return {mart: query(db_url, sql.format(mart), tenant)[0][0] for mart in MARTS}


def test_rebuilding_a_partition_for_the_same_moment_gives_identical_marts(built: Built, db_url: str) -> None:
    before = {tenant: checksums(db_url, tenant) for tenant in (AZURE, JIRA)}
    assert all(before[AZURE].values()) and all(before[JIRA].values())
    run_dbt(
        [
            "run",
            "--select",
            "marts.delivery",
            "--vars",
            json.dumps({"as_of": built.as_of.isoformat(), "tenant_id": AZURE}),
        ]
    )
    after = {tenant: checksums(db_url, tenant) for tenant in (AZURE, JIRA)}
    assert after == before


# -- the Sprint dashboard's reads (apps/streamlit/sprint_data.py) ------------------------------

APP_DIR = Path(__file__).resolve().parents[2] / "apps" / "streamlit"
BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
LEAD = "sprint-dashboard@dm-a.example"  # org admin of dm_a
OUTSIDER = "sprint-dashboard@dm-f.example"  # org admin of dm_f only
USER_OF = {JIRA: LEAD, AZURE: OUTSIDER}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


@pytest.fixture(scope="module")
def dashboard(built: Built, settings: Settings) -> Iterator[ModuleType]:
    """apps/streamlit/sprint_data.py, imported the way Streamlit imports it, and two org admins."""
    with admin_engine(settings).begin() as conn:
        for tenant, email in USER_OF.items():
            control.add_user(conn, email, f"Sprint dashboard {tenant}", actor="test")
            control.grant_role(conn, email, "org_admin", tenant_id=tenant, actor="test")
    sys.path.insert(0, str(APP_DIR))
    sys.path.insert(0, str(BENCH_DIR))
    try:
        module = importlib.import_module("sprint_data")
        module.clear()
        yield module
    finally:
        sys.path.remove(str(APP_DIR))
        sys.path.remove(str(BENCH_DIR))
        bench = [f"dashboard-bench@{tenant.replace('_', '-')}.bench.example" for tenant in (JIRA, CLICKUP, AZURE)]
        with admin_engine(settings).begin() as conn:
            conn.execute(
                sa.text("delete from control.users where email = any(:emails)"), {"emails": [*USER_OF.values(), *bench]}
            )


def sprint_uids(db_url: str, tenant: str) -> dict[str, str]:
    """dim_sprints' sprint_uid by the tool's sprint id."""
    rows = query(db_url, "select sprint_id, sprint_uid from marts.dim_sprints where tenant_id = %s", tenant)
    return {row[0]: row[1] for row in rows}


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_the_picker_lists_projects_with_their_teams_and_sprints(
    built: Built, db_url: str, dashboard: ModuleType
) -> None:
    for tenant, email in USER_OF.items():
        work = built.work(tenant)
        names = {p.key: p.name if tenant == JIRA else project_name(p) for p in work.projects}
        owned = expect.team_projects(names, built.teams[tenant])
        counts = Counter(sprint.project_key for sprint in work.sprints)
        want = sorted(
            (
                name,
                key,
                ", ".join(sorted(built.teams[tenant][slug] for slug, keys in owned.items() if key in keys)),
                counts[key],
            )
            for key, name in names.items()
        )
        frame = dashboard.projects(email, tenant)
        got = list(frame[["project_name", "project_key", "teams", "sprints"]].itertuples(index=False, name=None))
        assert got == want, tenant
        assert all(teams for _, _, teams, _ in got), "every project of the worlds has a team"

        uids = sprint_uids(db_url, tenant)
        for project in work.projects:
            listed = dashboard.sprints(email, tenant, project.key)
            ordered = sorted((s for s in work.sprints if s.project_key == project.key), key=lambda s: s.start)
            assert list(listed["sprint_name"]) == [s.name for s in reversed(ordered)], (tenant, project.key)
            keys = [sprint_key(tenant, s.name, uids, s.id) for s in reversed(ordered)]
            assert list(listed["sprint_uid"]) == [uids[key] for key in keys]
            # the state the tool reports: as of the sandbox's clock (the world's day), not the
            # build's as_of (the real clock), which passed a planned sprint's start on 2026-12-07
            states = [s.state(built.server.now) for s in reversed(ordered)]
            assert list(listed["state"]) == states, (tenant, project.key)
    assert dashboard.sprints(LEAD, JIRA, "NO-SUCH-PROJECT").empty


@pytest.mark.parametrize("tenant", [JIRA, AZURE])
def test_sprint_headline_matches_the_world_and_the_mart(
    built: Built, db_url: str, dashboard: ModuleType, tenant: str
) -> None:
    work, email = built.work(tenant), USER_OF[tenant]
    prs = loaded_pull_requests(built, db_url, tenant)
    bounds, uids = windows(db_url, tenant), sprint_uids(db_url, tenant)
    columns = [field.name for field in dataclasses.fields(dashboard.SprintHeadline)]
    mart_columns = [name for name in columns if name not in ("board_id", "end_at")]
    for sprint in work.sprints:
        key = sprint_key(tenant, sprint.name, uids, sprint.id)
        headline = dashboard.sprint_headline(email, tenant, uids[key])
        assert headline is not None, sprint.name
        assert (headline.sprint_name, headline.project_key) == (sprint.name, sprint.project_key)
        assert tenant != JIRA or headline.end_at == sprint.end  # Azure keeps whole days
        want = expect.sprint_figures(work, sprint.id, bounds[key][1], built.as_of, prs, reviews=tenant != AZURE)
        assert_close({name: getattr(headline, name) for name in want}, want, f"{tenant} {sprint.name}")
        (row,) = query(
            db_url,
            f"select {', '.join(mart_columns)} from marts.fct_sprints where tenant_id = %s and sprint_uid = %s",
            tenant,
            uids[key],
        )
        for name, value in zip(mart_columns, row, strict=True):
            exact = value is None or isinstance(value, int | str | datetime)
            assert getattr(headline, name) == (value if exact else float(value)), f"{sprint.name} {name}"
    assert dashboard.sprint_headline(email, tenant, "jira:0") is None


def test_trend_is_the_last_sprints_of_the_project_and_board(built: Built, db_url: str, dashboard: ModuleType) -> None:
    work = built.work(JIRA)
    prs = loaded_pull_requests(built, db_url, JIRA)
    bounds, uids = windows(db_url, JIRA), sprint_uids(db_url, JIRA)
    project = work.projects[0]
    ordered = sorted((s for s in work.sprints if s.project_key == project.key), key=lambda s: s.start)
    assert len(ordered) >= 5, "the world has enough sprints to cut the trend short"

    def trend(chosen: int, *last: int) -> Any:
        return dashboard.sprint_trend(LEAD, JIRA, uids[str(ordered[chosen].id)], *last)

    assert list(trend(3, 3)["sprint_name"]) == [s.name for s in ordered[1:4]]
    assert list(trend(3)["sprint_name"]) == [s.name for s in ordered[:4]]  # fewer than 12 exist
    assert list(trend(len(ordered) - 1)["sprint_name"]) == [s.name for s in ordered]  # a future one: all before it
    assert list(trend(0, 1)["sprint_name"]) == [ordered[0].name]
    figures = trend(len(ordered) - 1).set_index("sprint_name")
    for sprint in ordered:
        want = expect.sprint_figures(work, sprint.id, bounds[str(sprint.id)][1], built.as_of, prs)
        got = figures.loc[sprint.name]
        for name in ("committed_points", "completed_points", "say_do_ratio", "throughput"):
            if want[name] is None:
                assert pd_isna(got[name]), f"{sprint.name} {name}"
            else:
                assert float(got[name]) == pytest.approx(want[name], abs=0.00006), f"{sprint.name} {name}"
    with pytest.raises(ValueError, match="at least one sprint"):
        dashboard.sprint_trend(LEAD, JIRA, uids[str(ordered[0].id)], 0)


def pd_isna(value: Any) -> bool:
    return bool(pd.isna(value))


def test_developer_breakdown_matches_the_world(built: Built, db_url: str, dashboard: ModuleType) -> None:
    work, github = built.work(JIRA), built.server.world(JIRA)
    names = {person.email: person.name for person in work.people}
    uids = sprint_uids(db_url, JIRA)
    columns = [
        "items_completed", "points_completed", "commits", "prs_authored", "prs_merged", "prs_reviewed",
        "mean_review_turnaround_hours", "defects_attributed",
    ]  # fmt: skip
    exercised: set[str] = set()
    for sprint_id, (project_key, bounds) in windows(db_url, JIRA).items():
        want = expect.developer_figures(work, github, int(sprint_id), project_key, bounds)
        frame = dashboard.sprint_developers(LEAD, JIRA, uids[sprint_id])
        got = {row["person_id"]: row for row in frame.to_dict("records")}
        assert got.keys() == want.keys(), sprint_id
        for person, figures in want.items():
            row = got[person]
            assert_close({name: None if pd_isna(row[name]) else row[name] for name in columns}, figures, person)
            assert row["display_name"] == names.get(person, row["display_name"])
            exercised |= {name for name, value in figures.items() if value}
        points = list(frame["points_completed"])
        assert points == sorted(points, reverse=True), "by points completed"
    assert exercised == set(columns)


@pytest.fixture(scope="module")
def resolved_flag(built: Built, settings: Settings, db_url: str) -> tuple[str, str]:
    """A critical flag of a dm_a sprint item resolved by hand, the flags mart rebuilt (same as_of)."""
    ((uid, flag_type),) = query(
        db_url,
        "select flags.work_item_uid, flags.flag_type from marts.fct_compliance_flags as flags "
        "inner join marts.fct_work_item_compliance as items "
        "on items.tenant_id = flags.tenant_id and items.work_item_uid = flags.work_item_uid "
        "where flags.tenant_id = %s and flags.is_open and flags.severity = 'critical' and items.sprint_uid is not null "
        "order by flags.work_item_uid, flags.flag_type limit 1",
        JIRA,
    )
    with admin_engine(settings).begin() as conn:
        control.resolve_compliance_flag(
            conn, JIRA, uid, flag_type, note="Linked in the release", actor="lead@dm.example"
        )
    variables = json.dumps({"as_of": built.as_of.isoformat(), "tenant_id": JIRA})
    run_dbt(["run", "--select", "fct_compliance_flags", "--vars", variables])
    assert query(
        db_url,
        "select is_open, resolution from marts.fct_compliance_flags "
        "where tenant_id = %s and work_item_uid = %s and flag_type = %s",
        JIRA,
        uid,
        flag_type,
    ) == [(False, "manual")]
    return uid, flag_type


@pytest.mark.parametrize("tenant", [JIRA, AZURE])
def test_open_flags_of_the_sprints_items_critical_first(
    built: Built, db_url: str, dashboard: ModuleType, resolved_flag: tuple[str, str], tenant: str
) -> None:
    work, email = built.work(tenant), USER_OF[tenant]
    open_flags: dict[str, list[tuple[Any, ...]]] = {}
    for row in query(
        db_url,
        "select flags.work_item_uid, items.sprint_uid, flags.work_item_key, flags.flag_type, flags.severity, "
        "flags.message, flags.opened_at from marts.fct_compliance_flags as flags "
        "inner join marts.fct_work_item_compliance as items "
        "on items.tenant_id = flags.tenant_id and items.work_item_uid = flags.work_item_uid "
        "where flags.tenant_id = %s and flags.is_open",
        tenant,
    ):
        open_flags.setdefault(row[1], []).append((row[2], row[3], row[4], row[5], row[6]))
    uids = sprint_uids(db_url, tenant)
    seen = Counter[str]()
    listed: set[tuple[str, str]] = set()
    for sprint in work.sprints:
        uid = uids[sprint_key(tenant, sprint.name, uids, sprint.id)]
        frame = dashboard.sprint_open_flags(email, tenant, uid)
        listed |= set(frame[["work_item_uid", "flag_type"]].itertuples(index=False, name=None))
        got = list(frame[["work_item_key", "flag_type", "severity", "message", "opened_at"]].itertuples(index=False))
        assert sorted(map(tuple, got)) == sorted(open_flags.get(uid, [])), sprint.name
        order = [(SEVERITY_RANK[row.severity], row.opened_at) for row in got]
        assert order == sorted(order), "critical first, then warning, then info; oldest first"
        in_sprint_now = {
            (item.key if tenant == JIRA else str(item.id))
            for item in work.items
            if item.sprint_id == sprint.id and item.status in (DONE, IN_REVIEW) and item.type != "epic"
        }
        assert {row.work_item_key for row in got} <= in_sprint_now, sprint.name
        seen.update(row.severity for row in got)
    assert seen["critical"] and seen["warning"], seen
    assert resolved_flag not in listed, "a flag resolved by hand is not open"


def test_pr_health_covers_the_repositories_the_sprints_people_work_in(
    built: Built, db_url: str, dashboard: ModuleType
) -> None:
    work, github = built.work(JIRA), built.server.world(JIRA)
    who = expect.people(work, github)
    prs = list(github.pull_requests())
    uids = sprint_uids(db_url, JIRA)
    names = [
        "prs_opened", "prs_reviewed", "prs_merged", "merged_without_review", "share_reviewed",
        "p50_hours_to_first_review", "p90_hours_to_first_review", "mean_reviews_per_pr", "mean_reviewers_per_pr",
    ]  # fmt: skip
    rows, narrowed = 0, 0
    for sprint_id, (project_key, bounds) in windows(db_url, JIRA).items():
        members = expect.developer_figures(work, github, int(sprint_id), project_key, bounds).keys()
        in_window = [pr for pr in prs if bounds.start <= pr.created_at < bounds.end]
        repositories = {pr.repo.full_name for pr in in_window if who.of_login(pr.author.login) in members}
        first_week = monday(bounds.start.astimezone(UTC).date())
        last_day = (bounds.end - timedelta(microseconds=1)).astimezone(UTC).date()
        want = {
            key: figures
            for key, figures in expect.pr_health(
                [pr for pr in prs if pr.repo.full_name in repositories], built.timezone
            ).items()
            if first_week <= key[1] <= last_day
        }
        frame = dashboard.sprint_pr_health(LEAD, JIRA, uids[sprint_id])
        got = {
            (row["repository"], row["week_start"]): {name: None if pd_isna(row[name]) else row[name] for name in names}
            for row in frame.to_dict("records")
        }
        assert got.keys() == want.keys(), sprint_id
        for key, figures in want.items():
            assert_close(got[key], figures, f"{sprint_id} {key}")
        assert list(frame["week_start"]) == sorted(frame["week_start"])
        rows += len(got)
        narrowed += len(repositories) < len({pr.repo.full_name for pr in in_window})
    assert rows and narrowed, "the world exercises the team's repositories and leaves others out"

    # Azure DevOps authors are people by email: a sprint has PR health exactly when its people
    # opened a pull request in its window (dm_f's calendar is UTC, so their weeks are the sprint's).
    authored = dict(
        query(
            db_url,
            "select sprint_uid, sum(prs_authored) from marts.fct_developer_sprints where tenant_id = %s "
            "group by sprint_uid",
            AZURE,
        )
    )
    for uid, count in authored.items():
        frame = dashboard.sprint_pr_health(OUTSIDER, AZURE, uid)
        assert frame.empty == (count == 0), uid
        assert set(frame["source_system"]) <= {"azure_devops_git"}
    assert any(count for count in authored.values())


def test_another_tenants_user_is_refused_every_read(db_url: str, dashboard: ModuleType) -> None:
    data = importlib.import_module("data")
    uid = next(iter(sprint_uids(db_url, JIRA).values()))
    reads = [
        lambda email: dashboard.projects(email, JIRA),
        lambda email: dashboard.sprints(email, JIRA, "DATA"),
        lambda email: dashboard.sprint_headline(email, JIRA, uid),
        lambda email: dashboard.sprint_trend(email, JIRA, uid),
        lambda email: dashboard.sprint_developers(email, JIRA, uid),
        lambda email: dashboard.sprint_open_flags(email, JIRA, uid),
        lambda email: dashboard.sprint_pr_health(email, JIRA, uid),
    ]
    for read in reads:
        with pytest.raises(data.TenantAccessError, match=f"{OUTSIDER} has no grant for tenant {JIRA}"):
            read(OUTSIDER)
        with pytest.raises(data.TenantAccessError, match=f"has no grant for tenant {JIRA}"):
            read("nobody@dm.example")
        assert read(LEAD) is not None


def test_row_level_security_hides_other_tenants_even_when_the_query_names_them(
    db_url: str, dashboard: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reads name their tenant; underneath, the database shows only the declared one."""
    data = importlib.import_module("data")
    uids = list(sprint_uids(db_url, AZURE).values())
    real_scoped = data.scoped

    def reads() -> list[Any]:
        results: list[Any] = [dashboard.uncached(dashboard.projects)(LEAD, AZURE)]
        results.append(dashboard.uncached(dashboard.sprints)(LEAD, AZURE, "DATA"))
        for uid in uids:
            for name in ("sprint_trend", "sprint_developers", "sprint_open_flags", "sprint_pr_health"):
                results.append(dashboard.uncached(getattr(dashboard, name))(LEAD, AZURE, uid))
            results.append(dashboard.uncached(dashboard.sprint_headline)(LEAD, AZURE, uid))
        return results

    # LEAD may read dm_a only: the transaction declares dm_a, the queries ask for dm_f's rows.
    monkeypatch.setattr(data, "scoped", lambda tenant_ids, *, email, bind=None: real_scoped([JIRA], email=email))
    hidden = reads()
    assert all(result is None or result.empty for result in hidden)
    # Declared for dm_f (as dm_f's own admin), the same queries do find rows: the test can see them.
    monkeypatch.setattr(data, "scoped", lambda tenant_ids, *, email, bind=None: real_scoped([AZURE], email=OUTSIDER))
    shown = reads()
    assert all(result is not None for result in shown)
    assert sum(len(result) for result in shown if not isinstance(result, dashboard.SprintHeadline)) > 100


def test_measure_times_every_read_of_the_dashboard_through_the_reader_role(
    settings: Settings, db_url: str, dashboard: ModuleType
) -> None:
    bench = importlib.import_module("dashboard_queries")
    tenants = [JIRA, CLICKUP, AZURE]
    figures = bench.measure(db_url, reader_url(settings), tenants, readers=2, rounds=3, seed=7)
    assert (figures["readers"], figures["rounds"], figures["views"], figures["tenants"]) == (2, 3, 6, 3)
    assert figures["queries"] == 6 * len(bench.QUERIES) == figures["overall"]["count"]
    assert {name: row["count"] for name, row in figures["per_query"].items()} == dict.fromkeys(bench.QUERIES, 6)
    assert figures["view"]["count"] == 6
    assert figures["tenants_without_sprints"] == []
    for row in (*figures["per_query"].values(), figures["overall"], figures["view"]):
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert figures["meets_goal"] == (figures["overall"]["p95_ms"] < 200)

    def changes() -> list[tuple[Any, ...]]:
        sql = "select action, count(*) from control.audit_log where actor = %s group by action order by action"
        return query(db_url, sql, "bench:dashboard_queries")

    made = changes()
    again = bench.measure(db_url, reader_url(settings), [AZURE, JIRA], readers=1, rounds=1)
    assert again["queries"] == len(bench.QUERIES)
    assert changes() == made, "the users exist: a second run changes nothing"
    grants = query(
        db_url,
        "select u.email, g.role, g.tenant_id from control.users as u join control.role_grants as g "
        "on g.user_id = u.user_id where u.email like %s order by g.tenant_id",
        "dashboard-bench@%",
    )
    assert grants == [(bench.bench_email(tenant), "org_admin", tenant) for tenant in sorted(tenants)]
    with pytest.raises(control.ControlError, match="No tenant 'dm_missing'"):
        bench.measure(db_url, reader_url(settings), ["dm_missing"], readers=1, rounds=1)
