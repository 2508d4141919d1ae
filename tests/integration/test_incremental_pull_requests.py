"""The per-pull-request models built incrementally (dbt_project/macros/incremental_pull_requests.sql)
give exactly what a rebuild of every pull request gives, while rebuilding only the pull requests
that changed.

Two tenants (Jira + GitHub, Azure Boards + Azure DevOps Git) are loaded from the sandbox and built,
with one Jira issue's key hidden (renamed in the raw table), so the old pull request naming it
links to nothing. The sandbox moves a day on (pull requests get reviews, pushes and merges, a new
one opens; work items move and appear), the tenants are loaded again, the issue gets its key back
in a new load (as a newly created item would), and the models are built again incrementally.
The rows must equal those of a rebuild (var rebuild, its batch joined to the views as a large
batch is) and of a build in full (which reads the staging views whole, where the incremental
build reads its batch's rows by key, through indexes), the old pull request must now link to the
issue, and only the pull requests loaded since, or naming or linked to an item loaded since, may
have been rewritten (fct_pull_requests: exactly those int_pull_requests_unified rewrote). A
changed GitHub login → email mapping (people) rebuilds the tenant.

fct_pr_health is built by week (dbt_project/macros/incremental_pr_health.sql): it too must equal
its builds in full, rewriting only the weeks of the pull requests int_pull_requests_unified
rewrote; a pull request moved to another week leaves its old week, and a tenant's new time zone
moves all its weeks. A tenant gone (its raw data, or from the control plane) leaves the models and
the ledger.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from connectors.azure_boards import azure_boards_source, load_azure_boards
from connectors.azure_devops_git import azure_devops_git_source, load_azure_devops_git
from connectors.github import github_source, load_github
from connectors.jira import jira_source, load_jira
from connectors.sandbox import SandboxServer
from connectors.sandbox import token_for as github_token
from connectors.sandbox.azure_git import payloads
from connectors.sandbox.tools import token_for
from pulse import control
from pulse.db import admin_engine
from pulse.dbt import DBT_PROJECT_DIR, dbt_env
from pulse.settings import Settings
from tests.incremental_builds import build_at, index_definitions, plan_without_scans, query, tenant_rows

WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)
GITHUB, AZURE = "ipr_a", "ipr_f"  # Jira + GitHub; Azure Boards + Azure DevOps Git
TENANTS = (GITHUB, AZURE)
MODELS = (
    "int_pull_request_refs",
    "int_pull_request_work_items",
    "int_pull_requests_unified",
    "int_git_moments",
    "fct_pull_requests",
)
SELECTION = "+fct_pull_requests +int_git_moments +fct_pr_health"
WEEKLY = "fct_pr_health"  # built by week, not by pull request
HIDDEN_KEY = "ZZHIDDEN-1"


@dataclass
class Builds:
    hidden_issue: str  # work_item_uid
    naming_pull_request: str
    reloaded: set[str]  # pull requests with a raw row loaded after the first build
    item_linked: set[str]  # pull requests naming or linked to a work item loaded after it
    incremental: dict[str, set[tuple[Any, ...]]]
    rebuilt: dict[str, set[tuple[Any, ...]]]
    refreshed: dict[str, set[tuple[Any, ...]]]  # built in full
    rewritten: dict[str, set[str]]  # pull requests whose rows the incremental build rewrote
    weekly: dict[str, set[tuple[Any, ...]]]  # fct_pr_health's rows: incremental, rebuilt, refreshed
    rewritten_weeks: set[tuple[Any, ...]]  # fct_pr_health's rows the incremental build rewrote
    rewritten_pull_request_weeks: set[tuple[Any, ...]]  # the rows of the pull requests rewritten


def relation(model: str) -> str:
    return f"{'marts' if model.startswith('fct_') else 'intermediate'}.{model}"


def rows_of(db_url: str, model: str) -> set[tuple[Any, ...]]:
    return tenant_rows(db_url, relation(model), TENANTS)


def row_versions(db_url: str, model: str) -> set[tuple[str, str]]:
    """(pull request, row version): a row deleted and inserted again gets a new xmin."""
    rows = query(
        db_url, f"select pull_request_id, xmin::text from {relation(model)} where tenant_id = any(%s)", list(TENANTS)
    )
    return {(row[0], row[1]) for row in rows}


def week_versions(db_url: str) -> set[tuple[Any, ...]]:
    """fct_pr_health's (row key, row version) of the module's tenants."""
    rows = query(
        db_url,
        f"select tenant_id, source_system, repository, week_start, xmin::text from marts.{WEEKLY} "
        "where tenant_id = any(%s)",
        list(TENANTS),
    )
    return set(rows)


def weeks_of(db_url: str, pull_requests: set[str]) -> set[tuple[Any, ...]]:
    """The fct_pr_health rows (row keys) the pull requests of int_pull_requests_unified are counted in."""
    return set(
        query(
            db_url,
            "select pull_requests.tenant_id, pull_requests.source_system, "
            "coalesce(pull_requests.repository, '(unknown)'), "
            "date_trunc('week', pull_requests.opened_at at time zone tenants.timezone)::date "
            "from intermediate.int_pull_requests_unified as pull_requests "
            "inner join control.tenants as tenants on tenants.slug = pull_requests.tenant_id "
            "where pull_requests.tenant_id = any(%s) and pull_requests.pull_request_id = any(%s) "
            "and pull_requests.opened_at is not null",
            list(TENANTS),
            sorted(pull_requests),
        )
    )


def build(as_of: datetime, **extra: object) -> None:
    build_at(SELECTION, as_of, cautious=True, **extra)


def load_all(server: SandboxServer, db_url: str, pipelines: str) -> None:
    jira = {"email": "pulse@ipr.example", "token": token_for("jira", GITHUB)}
    load_jira(GITHUB, db_url, jira_source(f"{server.url}/jira", jira, {}), pipelines_dir=pipelines)
    github = github_source(server.url, github_token(GITHUB), f"{GITHUB}-eng")
    load_github(GITHUB, db_url, github, pipelines_dir=pipelines)
    azure_url, azure = f"{server.url}/azure/{AZURE}-eng", {"token": token_for("azure", AZURE)}
    load_azure_boards(AZURE, db_url, azure_boards_source(azure_url, azure, {}), pipelines_dir=pipelines)
    git = azure_devops_git_source(azure_url, azure, {"project": payloads.git_project(server.work_world(AZURE))})
    load_azure_devops_git(AZURE, db_url, git, pipelines_dir=pipelines)


def raw_git_loads(tenant: str) -> str:
    """(pull_request_id, _dlt_load_id) of every raw git row of the tenant."""
    host, tables = (
        ("github", {"pull_requests": "id", "reviews": "pull_request_id", "commits": "pull_request_id"})
        if tenant == GITHUB
        else (
            "azure_devops_git",
            {"pull_requests": "id", "reviewers": "pull_request_id", "commits": "pull_request_id",
             "pull_request_work_items": "pull_request_id"},
        )
    )  # fmt: skip
    return " union all ".join(
        f"select '{host}:' || {column}::text as pull_request_id, _dlt_load_id from raw_{host}__{tenant}.{table}"
        for table, column in tables.items()
    )


def execute(db_url: str, sql: str, *params: Any) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql, params)


def record_load(db_url: str, schema: str) -> None:
    """Record a completed dlt load in ``schema``'s _dlt_loads, as a load of changed rows would."""
    execute(
        db_url,
        f"insert into {schema}._dlt_loads (load_id, schema_name, status, inserted_at) "
        "select to_char(extract(epoch from clock_timestamp()), 'FM9999999999.000000'), 'github', 0, now()",
    )


@pytest.fixture(scope="module")
def builds(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    server = SandboxServer(now=WORLD_DAY, seed=29, scale=0.3, work_scale=0.6, history_days=84).start()
    pipelines = str(tmp_path_factory.mktemp("incremental_pull_requests"))
    try:
        with admin_engine(settings).begin() as conn:
            for tenant in TENANTS:
                control.add_tenant(conn, tenant, f"Incremental PRs {tenant}", actor="test")
        load_all(server, db_url, pipelines)
        # An issue a closed pull request names in its title: hidden (its key renamed) until after
        # the first build.
        issue_id, key, naming = query(
            db_url,
            f"select issues.id::text, issues.key, 'github:' || prs.id::text from raw_jira__{GITHUB}.issues as issues "
            f"inner join raw_github__{GITHUB}.pull_requests as prs on prs.state = 'closed' "
            "and lower(prs.title) ~ ('(^|[^a-z0-9])' || lower(issues.key) || '($|[^0-9a-z])') "
            "order by prs.created_at, issues.id limit 1",
        )[0]
        execute(db_url, f"update raw_jira__{GITHUB}.issues set key = %s where id::text = %s", HIDDEN_KEY, issue_id)
        # The models may already hold other test modules' tenants: these are built whole.
        build(WORLD_DAY + timedelta(hours=6))
        before = {model: row_versions(db_url, model) for model in MODELS}
        weeks_before = week_versions(db_url)
        assert not query(
            db_url,
            "select from intermediate.int_pull_request_work_items where tenant_id = %s and pull_request_id = %s "
            "and work_item_uid = %s",
            GITHUB,
            naming,
            f"jira:{issue_id}",
        )
        watermarks = dict(
            query(
                db_url,
                "select tenant_id, loaded_at from intermediate.pull_request_builds "
                "where model = 'int_pull_requests_unified' and tenant_id = any(%s)",
                list(TENANTS),
            )
        )
        item_watermarks = dict(
            query(
                db_url,
                "select tenant_id, items_loaded_at from intermediate.pull_request_builds "
                "where model = 'int_pull_request_work_items' and tenant_id = any(%s)",
                list(TENANTS),
            )
        )

        server.advance(days=1, touches_per_tenant=8)
        load_all(server, db_url, pipelines)
        # The issue appears in a load after the build (as a new item would).
        execute(
            db_url,
            f"update raw_jira__{GITHUB}.issues set key = %s, "
            f"_dlt_load_id = (select max(load_id) from raw_jira__{GITHUB}._dlt_loads) where id::text = %s",
            key,
            issue_id,
        )
        reloaded = {
            row[0]
            for tenant in TENANTS
            for row in query(
                db_url,
                f"select distinct pull_request_id from ({raw_git_loads(tenant)}) as loads "
                "where to_timestamp(_dlt_load_id::double precision) > %s",
                watermarks[tenant],
            )
        }

        as_of = WORLD_DAY + timedelta(days=2)
        build(as_of)
        incremental = {model: rows_of(db_url, model) for model in MODELS}
        after = {model: row_versions(db_url, model) for model in MODELS}
        rewritten = {model: {pr for pr, _ in after[model] - before[model]} for model in MODELS}
        weekly = {"incremental": rows_of(db_url, WEEKLY)}
        rewritten_weeks = {row[:4] for row in week_versions(db_url) - weeks_before}
        rewritten_pull_request_weeks = weeks_of(db_url, rewritten["int_pull_requests_unified"])
        # Pull requests that name, tool-link or link to a work item loaded since the first build.
        item_linked = {
            row[0]
            for tenant in TENANTS
            for row in query(
                db_url,
                "select refs.pull_request_id from intermediate.int_pull_request_refs as refs "
                "inner join intermediate.int_work_items__unioned as items on items.tenant_id = refs.tenant_id "
                "and refs.ref in (lower(items.work_item_key), lower(items.work_item_id)) "
                "where refs.tenant_id = %s and items.loaded_at > %s "
                "union select links.pull_request_id from intermediate.int_pull_request_work_items as links "
                "inner join intermediate.int_work_items__unioned as items on items.tenant_id = links.tenant_id "
                "and items.work_item_uid = links.work_item_uid where links.tenant_id = %s and items.loaded_at > %s",
                tenant,
                item_watermarks[tenant],
                tenant,
                item_watermarks[tenant],
            )
        }
        # (every pull request again, its rows read by joining the batch to the views, as a batch
        # too large to read by key is: the incremental build above read by key)
        build(as_of, rebuild=True, pull_requests_read_by_key_up_to=0)
        rebuilt = {model: rows_of(db_url, model) for model in MODELS}
        weekly["rebuilt"] = rows_of(db_url, WEEKLY)
        build_at(SELECTION, as_of, cautious=True, full_refresh=True)
        refreshed = {model: rows_of(db_url, model) for model in MODELS}
        weekly["refreshed"] = rows_of(db_url, WEEKLY)
        yield Builds(
            f"jira:{issue_id}",
            naming,
            reloaded,
            item_linked,
            incremental,
            rebuilt,
            refreshed,
            rewritten,
            weekly,
            rewritten_weeks,
            rewritten_pull_request_weeks,
        )
    finally:
        server.stop()


@pytest.mark.parametrize("model", MODELS)
def test_an_incremental_build_equals_a_rebuild_of_every_pull_request(builds: Builds, model: str) -> None:
    tenant = 1 if model == "fct_pull_requests" else 0  # the mart's key comes first
    assert {row[tenant] for row in builds.incremental[model]} == set(TENANTS), model
    assert builds.incremental[model] == builds.rebuilt[model]
    assert builds.incremental[model] == builds.refreshed[model]


# Each staging view an incremental build reads by pull request key (rows_of_batch_pull_requests),
# with a raw table of each host it reads.
GIT, AZURE_GIT = f"raw_github__{GITHUB}", f"raw_azure_devops_git__{AZURE}"
KEY_READS = {
    "intermediate.int_pull_requests__unioned": (f"{GIT}.pull_requests", f"{AZURE_GIT}.pull_requests"),
    "intermediate.int_pull_request_reviews_unified": (f"{GIT}.reviews", f"{AZURE_GIT}.reviewers"),
    "staging.stg_github__commits": (f"{GIT}.commits",),
    "staging.stg_azure_devops_git__commits": (f"{AZURE_GIT}.commits",),
    "staging.stg_azure_devops_git__pull_request_work_items": (f"{AZURE_GIT}.pull_request_work_items",),
}


@pytest.mark.parametrize("view", KEY_READS)
def test_a_staging_view_is_read_by_pull_request_key_through_an_index(builds: Builds, db_url: str, view: str) -> None:
    """The raw copies' pull request key indexes (pull_request_key_expressions) index the very
    expression the views compute: a read of one pull request's rows through the view scans no
    raw table whole. Were a view's key written otherwise, every pull request of a batch would read
    its tables whole."""
    for table in KEY_READS[view]:
        schema, name = table.split(".")
        tenant = GITHUB if schema == GIT else AZURE
        [(pull_request,)] = query(
            db_url,
            "select min(pull_request_id) from intermediate.int_pull_requests_unified where tenant_id = %s",
            tenant,
        )
        plan = plan_without_scans(
            db_url, f"select * from {view} where tenant_id = %s and pull_request_id = %s", tenant, pull_request
        )
        assert f"Seq Scan on {name}" not in plan, plan
        assert f"{name}_pull_request_key" in plan, plan
        if view == "intermediate.int_pull_requests__unioned" and tenant == AZURE:
            # Azure's latest vote, comment and commit of the pull request: by its id (azure_activity_indexes)
            assert "reviewers_pull_request_id" in plan and "commits_pull_request_id" in plan, plan
            assert "Seq Scan on reviewers" not in plan and "Seq Scan on commits" not in plan, plan


# The staging views whose column rules read the rows sharing a new row's unique key by an index
# of the raw copies (unique_key_indexes, dbt_project/macros/tested_loads.sql): the key column,
# the raw table and its index on the key as the view computes it.
UNIQUE_KEY_READS = {
    "staging.stg_github__pull_requests": ("pull_request_id", "pull_requests", "pull_requests_pull_request_key"),
    "staging.stg_github__reviews": ("review_id", "reviews", "reviews_review_key"),
}


@pytest.mark.parametrize("view", UNIQUE_KEY_READS)
def test_a_view_is_read_by_its_unique_key_through_an_index(builds: Builds, db_url: str, view: str) -> None:
    """A view's pre-hook indexed its raw copies on the key it computes (index_unique_keys): a
    read of one key's rows scans no raw table whole. Were the view's key written otherwise than
    the index, its test would read every row of every tenant at every build."""
    column, table, index = UNIQUE_KEY_READS[view]
    [(key,)] = query(db_url, f"select min({column}) from {view} where tenant_id = %s", GITHUB)
    plan = plan_without_scans(db_url, f"select * from {view} where tenant_id = %s and {column} = %s", GITHUB, key)
    assert f"Seq Scan on {table}" not in plan and index in plan, plan


def test_an_old_pull_request_links_to_an_item_created_since(builds: Builds) -> None:
    assert builds.naming_pull_request not in builds.reloaded
    links = {row[1:3] for row in builds.incremental["int_pull_request_work_items"]}
    assert (builds.naming_pull_request, builds.hidden_issue) in links
    unified = {row[1]: row for row in builds.incremental["int_pull_requests_unified"]}
    assert builds.naming_pull_request in builds.rewritten["int_pull_requests_unified"]
    assert unified[builds.naming_pull_request][-2] >= 1  # linked_work_items


def test_the_item_lookups_have_an_index_each(builds: Builds, db_url: str) -> None:
    # int_pull_request_work_items' pre-hook finds the pull requests naming or linked to an item
    # loaded since by these (ensure_indexes); the unique indexes start with the pull request
    assert index_definitions(db_url, "intermediate.int_pull_request_refs") == [
        "(tenant_id, kind, ref)",
        "UNIQUE (tenant_id, pull_request_id, found_in, kind, ref)",
    ]
    assert index_definitions(db_url, "intermediate.int_pull_request_work_items") == [
        "(tenant_id, work_item_uid)",
        "UNIQUE (tenant_id, pull_request_id, work_item_uid)",
    ]


def test_only_changed_pull_requests_were_rewritten(builds: Builds) -> None:
    unified = {row[1] for row in builds.incremental["int_pull_requests_unified"]}
    assert len(unified) >= 100
    # advance(8 touches) updates 8 pull requests of a tenant and opens one (a connector may
    # land a few more again: its incremental window overlaps the last load's)
    assert 2 <= len(builds.reloaded & unified) <= len(unified) / 10, builds.reloaded
    for model in MODELS:
        assert builds.rewritten[model] <= builds.reloaded | builds.item_linked, model
    # every reloaded pull request's rows were rewritten (its text: only the pull request rows)
    assert builds.reloaded & unified <= builds.rewritten["int_pull_requests_unified"]
    assert builds.naming_pull_request in builds.rewritten["int_pull_request_work_items"]
    assert builds.naming_pull_request not in builds.rewritten["int_pull_request_refs"]
    assert len(builds.rewritten["int_pull_requests_unified"]) <= len(unified) / 5
    # the mart follows int_pull_requests_unified pull request by pull request
    assert builds.rewritten["fct_pull_requests"] == builds.rewritten["int_pull_requests_unified"]


def test_a_changed_login_mapping_rebuilds_the_tenant(builds: Builds, db_url: str) -> None:
    """A GitHub login's commits now carry another email (stg_github__users maps the login to
    it): every pull request that login authored shows the new email after an incremental build."""
    login, _, authored = query(
        db_url,
        "select author_login, author_person_id, count(*) from intermediate.int_pull_requests_unified "
        "where tenant_id = %s and author_person_id is not null group by author_login, author_person_id "
        "order by count(*) desc, author_login limit 1",
        GITHUB,
    )[0]
    commits = f"raw_github__{GITHUB}.commits"
    emails = query(db_url, f"select _dlt_id, author_email from {commits} where author_login = %s", login)
    execute(db_url, f"update {commits} set author_email = 'moved@ipr.example' where author_login = %s", login)
    # raw data changes through a load, which ends by recording itself (stg_github__users counts a
    # tenant's commits again only then)
    record_load(db_url, f"raw_github__{GITHUB}")
    try:
        build(WORLD_DAY + timedelta(days=2))
        shown = dict(
            query(
                db_url,
                "select author_person_id, count(*) from intermediate.int_pull_requests_unified "
                "where tenant_id = %s and author_login = %s group by author_person_id",
                GITHUB,
                login,
            )
        )
        assert shown == {"moved@ipr.example": authored}
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn, conn.cursor() as cursor:
            restore = [(email, dlt_id) for dlt_id, email in emails]
            cursor.executemany(f"update {commits} set author_email = %s where _dlt_id = %s", restore)
        record_load(db_url, f"raw_github__{GITHUB}")


def test_pr_health_by_week_equals_its_builds_in_full(builds: Builds) -> None:
    incremental = builds.weekly["incremental"]
    assert {row[0] for row in incremental} == set(TENANTS)
    assert incremental == builds.weekly["rebuilt"]
    assert incremental == builds.weekly["refreshed"]


def test_pr_health_rewrote_only_the_weeks_of_rebuilt_pull_requests(builds: Builds) -> None:
    # the sandbox moves no pull request to another week: the week each was counted in before is
    # the week it is in now
    assert builds.rewritten_pull_request_weeks
    assert builds.rewritten_weeks == builds.rewritten_pull_request_weeks
    assert len(builds.rewritten_weeks) <= len(builds.weekly["incremental"]) / 3


def week_rows(db_url: str, tenant: str) -> dict[tuple[Any, ...], int]:
    """fct_pr_health's pull requests opened per (source system, repository, week) of a tenant."""
    rows = query(
        db_url,
        f"select source_system, repository, week_start, prs_opened from marts.{WEEKLY} where tenant_id = %s",
        tenant,
    )
    return {row[:3]: row[3] for row in rows}


def shift_opening(db_url: str, raw_id: str, days: int) -> None:
    """Move a GitHub pull request's opening by ``days``, as a new dlt load of it would: the raw row
    stamped with a load recorded as completed."""
    schema, load_id = f"raw_github__{GITHUB}", f"{datetime.now(UTC).timestamp():.6f}"
    execute(
        db_url,
        f"update {schema}.pull_requests set created_at = created_at + %s * interval '1 day', _dlt_load_id = %s "
        "where id::text = %s",
        days,
        load_id,
        raw_id,
    )
    execute(
        db_url,
        f"insert into {schema}._dlt_loads (load_id, schema_name, status, inserted_at) values (%s, 'github', 0, now())",
        load_id,
    )


def test_a_pull_request_moved_to_another_week_leaves_its_old_week(builds: Builds, db_url: str) -> None:
    """A pull request whose opening moved two weeks back (as a host's correction would): by week,
    its old week counts one fewer and its new week one more, as a build in full has it."""
    # a pull request of a week of two or more, so that its old week keeps a row
    pull_request_id, repository, old_week, opened_at, timezone = query(
        db_url,
        "select pull_requests.pull_request_id, weeks.repository, weeks.week_start, pull_requests.opened_at, "
        "tenants.timezone from intermediate.int_pull_requests_unified as pull_requests "
        "inner join control.tenants as tenants on tenants.slug = pull_requests.tenant_id "
        f"inner join marts.{WEEKLY} as weeks on weeks.tenant_id = pull_requests.tenant_id "
        "and weeks.source_system = pull_requests.source_system "
        "and weeks.repository = coalesce(pull_requests.repository, '(unknown)') "
        "and weeks.week_start = date_trunc('week', pull_requests.opened_at at time zone tenants.timezone)::date "
        "where pull_requests.tenant_id = %s and pull_requests.source_system = 'github' and weeks.prs_opened >= 2 "
        "order by pull_requests.opened_at desc, pull_requests.pull_request_id limit 1",
        GITHUB,
    )[0]
    moved = (opened_at - timedelta(days=14)).astimezone(ZoneInfo(timezone)).date()
    new_week = moved - timedelta(days=moved.weekday())
    assert new_week < old_week
    before = week_rows(db_url, GITHUB)
    raw_id = pull_request_id.removeprefix("github:")
    shift_opening(db_url, raw_id, days=-14)
    try:
        build(WORLD_DAY + timedelta(days=2))
        after = week_rows(db_url, GITHUB)
        expected = dict(before)
        expected[("github", repository, old_week)] -= 1
        expected[("github", repository, new_week)] = before.get(("github", repository, new_week), 0) + 1
        assert after == expected
        by_week = rows_of(db_url, WEEKLY)
        build_at(WEEKLY, WORLD_DAY + timedelta(days=2), full_refresh=True)
        assert by_week == rows_of(db_url, WEEKLY)
    finally:
        shift_opening(db_url, raw_id, days=14)
        build(WORLD_DAY + timedelta(days=2))
    assert week_rows(db_url, GITHUB) == before


def test_a_new_time_zone_moves_every_week_of_the_tenant(builds: Builds, db_url: str) -> None:
    """A tenant's time zone changed (to UTC-11, where Monday mornings in UTC are Sundays): its
    weeks are counted anew, every one of its rows rewritten, as a build in full counts them."""
    timezone = query(db_url, "select timezone from control.tenants where slug = %s", GITHUB)[0][0]
    versions = {row for row in week_versions(db_url) if row[0] == GITHUB}
    before = rows_of(db_url, WEEKLY)
    execute(db_url, "update control.tenants set timezone = 'Pacific/Pago_Pago' where slug = %s", GITHUB)
    try:
        build(WORLD_DAY + timedelta(days=2))
        by_week = rows_of(db_url, WEEKLY)
        assert by_week != before
        assert not versions & {row for row in week_versions(db_url) if row[0] == GITHUB}
        # the other tenant's rows stayed
        assert {row for row in by_week if row[0] == AZURE} == {row for row in before if row[0] == AZURE}
        build_at(WEEKLY, WORLD_DAY + timedelta(days=2), full_refresh=True)
        assert by_week == rows_of(db_url, WEEKLY)
    finally:
        execute(db_url, "update control.tenants set timezone = %s where slug = %s", timezone, GITHUB)
        build(WORLD_DAY + timedelta(days=2))
    assert rows_of(db_url, WEEKLY) == before


def test_after_one_partition_is_built_in_full_the_others_are_counted_whole(builds: Builds, db_url: str) -> None:
    """A build in full of one tenant's partition leaves the table with that tenant's rows only;
    the next build counts the other tenants whole again (their ledger went with their rows)."""
    before = rows_of(db_url, WEEKLY)
    build_at(WEEKLY, WORLD_DAY + timedelta(days=2), full_refresh=True, tenant_id=AZURE)
    assert {row[0] for row in rows_of(db_url, WEEKLY)} == {AZURE}
    build(WORLD_DAY + timedelta(days=2))
    assert rows_of(db_url, WEEKLY) == before


#: The relationships tests of pull requests' children that read new children by the parent's key
#: (relationships_key_index): child view → (parent view, tenant, raw schema, raw child table).
KEY_RELATIONSHIPS = {
    "stg_github__reviews": ("stg_github__pull_requests", GITHUB, f"raw_github__{GITHUB}", "reviews"),
    "stg_azure_devops_git__reviews": (
        "stg_azure_devops_git__pull_requests", AZURE, f"raw_azure_devops_git__{AZURE}", "reviewers",
    ),
    "stg_azure_devops_git__pull_request_work_items": (
        "stg_azure_devops_git__pull_requests", AZURE, f"raw_azure_devops_git__{AZURE}", "pull_request_work_items",
    ),
}  # fmt: skip


def relationships_test(name: str) -> tuple[int, str, str]:
    """`dbt test` of one relationships test: (exit code, output, its SQL as run)."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "test", "--select", name, "--project-dir", str(DBT_PROJECT_DIR)],
        env={**os.environ, **dbt_env()}, capture_output=True, text=True,
    )  # fmt: skip
    results = json.loads((DBT_PROJECT_DIR / "target" / "run_results.json").read_text())["results"]
    [compiled] = [
        result["compiled_code"] for result in results if result["unique_id"].startswith(f"test.pulse.{name}.")
    ]
    return done.returncode, done.stdout, compiled


@pytest.mark.parametrize("child", KEY_RELATIONSHIPS)
def test_a_relationships_test_reads_new_children_by_the_parents_key(builds: Builds, db_url: str, child: str) -> None:
    """The test of every review's (or work item link's) pull request reads only the children
    loaded since it last passed, each probing the pull requests' key index
    (postgres__test_relationships), and still fails on a new child of a pull request that is
    not there."""
    parent, tenant, schema, table = KEY_RELATIONSHIPS[child]
    name = f"relationships_{child}_pull_request_id__pull_request_id__ref_{parent}_"
    code, output, sql = relationships_test(name)
    assert code == 0, output
    assert "left join lateral" in sql and "loaded.loaded_at > tested.loaded_at" in sql
    plan = plan_without_scans(db_url, sql)
    assert "pull_requests_pull_request_key" in plan, plan
    assert "Seq Scan" not in plan, plan
    marked = query(
        db_url,
        "select tenant_id from control.tested_loads where test_id like %s and tenant_id = any(%s)",
        f"test.pulse.{name}.%",
        list(TENANTS),
    )
    assert {row[0] for row in marked} == {tenant}  # the tenant with the source

    children, load_id = f"{schema}.{table}", f"{datetime.now(UTC).timestamp():.6f}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"create temporary table orphan as select * from {children} limit 1")
        renumbered = "id = -1, " if table == "reviews" else ""
        conn.execute(
            f"update orphan set {renumbered}pull_request_id = -1, _dlt_id = 'orphan', _dlt_load_id = %s", [load_id]
        )
        conn.execute(f"insert into {children} select * from orphan")
    try:
        code, output, _ = relationships_test(name)
        assert code == 1
        assert "Got 1 result" in output, output
    finally:
        execute(db_url, f"delete from {children} where _dlt_id = 'orphan'")
    code, output, _ = relationships_test(name)
    assert code == 0, output


def ledger_tenants(db_url: str) -> set[str]:
    rows = query(
        db_url,
        "select distinct tenant_id from intermediate.pr_health_members where tenant_id = any(%s)",
        list(TENANTS),
    )
    return {row[0] for row in rows}


def test_gone_tenants_lose_their_rows_and_their_ledger(builds: Builds, db_url: str) -> None:
    """Last in the module (it removes its tenants). A tenant whose raw data is gone leaves every
    per-pull-request model, fct_pr_health and its ledger; so does a tenant gone from the control
    plane, whose raw data is still there (only the mart is built then, so its own check of the
    control plane is what removes them). The other tenant's rows stay as they were."""
    before = {model: rows_of(db_url, model) for model in (*MODELS, WEEKLY)}
    assert ledger_tenants(db_url) == set(TENANTS)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"drop schema raw_azure_boards__{AZURE} cascade")
        conn.execute(f"drop schema raw_azure_devops_git__{AZURE} cascade")
    # (the build creates again the staging views the drops took with them)
    build(WORLD_DAY + timedelta(days=2))
    for model in (*MODELS, WEEKLY):
        tenant = 1 if model == "fct_pull_requests" else 0
        kept = {row for row in before[model] if row[tenant] == GITHUB}
        assert kept, model
        assert rows_of(db_url, model) == kept, model
    assert ledger_tenants(db_url) == {GITHUB}

    execute(db_url, "delete from control.tenants where slug = %s", GITHUB)
    build_at(WEEKLY, WORLD_DAY + timedelta(days=2), cautious=True)
    assert rows_of(db_url, WEEKLY) == set()
    assert ledger_tenants(db_url) == set()
