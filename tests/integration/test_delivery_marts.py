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
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

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
from connectors.sandbox.work.world import WorkWorld
from pulse import control
from pulse.db import admin_engine
from pulse.settings import Settings
from tests import delivery_expectations as expect
from tests.conftest import run_dbt
from tests.work_expectations import Bounds

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
)
#: The delivery marts and what they read; the data tests of the models upstream are left to their own
#: tests (test_work_models.py, the staging tests), and unit tests run in every project build.
SELECT = (
    "staging.jira staging.clickup staging.azure_boards staging.azure_devops_git staging.github "
    "intermediate.work fct_work_item_compliance marts.delivery"
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
    server = SandboxServer(seed=13, scale=0.3, work_scale=0.3, history_days=56).start()
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
