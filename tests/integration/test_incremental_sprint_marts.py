"""The sprint marts built incrementally by changed sprints (dbt_project/macros/incremental_sprints.sql)
give exactly what a rebuild of every sprint gives, while rebuilding only some sprints.

Two tenants are loaded from the sandbox, work items and git alike (Jira + GitHub, Azure Boards +
Azure DevOps Git) and built; the sandbox moves a day on (items change status, new items appear,
pull requests are reviewed, merged and opened), the tenants are loaded again (incremental loads)
and the marts are built again incrementally with a later as_of. Their rows must equal those of a
rebuild of every sprint (var rebuild) with the same as_of, and the incremental build must have
rebuilt fewer sprints than there are, but some, and written no row but those it rebuilt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
from pulse.settings import Settings
from tests.conftest import run_dbt
from tests.incremental_builds import build_at, plan_without_scans, query, tenant_rows

WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)
JIRA, AZURE = "isp_a", "isp_f"
TENANTS = (JIRA, AZURE)
MARTS = ("fct_sprints", "fct_developer_sprints")
SELECTION = "+fct_sprints +fct_developer_sprints +dim_sprints +dim_people +fct_source_freshness"


@dataclass
class Builds:
    before: dict[str, set[tuple[Any, ...]]]
    incremental: dict[str, set[tuple[Any, ...]]]
    rebuilt: dict[str, set[tuple[Any, ...]]]
    #: rows each mart inserted in the incremental build and in the rebuild (every tenant's)
    inserted: dict[str, int]
    inserted_by_rebuild: dict[str, int]
    #: each tenant's newest completed git load (fct_source_freshness) after the first build and after the day's
    git_loaded_at: list[dict[str, datetime]]
    #: rows of each mart (of every tenant) the incremental build wrote: new or rewritten since the first build
    written: dict[str, int]
    #: int_people's rows of the tenants after the incremental build and after the rebuild
    people: tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]


def rows_of(db_url: str, mart: str) -> set[tuple[Any, ...]]:
    return tenant_rows(db_url, f"marts.{mart}", TENANTS)


def build(as_of: datetime, **variables: object) -> dict[str, int]:
    """``dbt build`` of the marts and what they read at ``as_of``; the rows each mart inserted."""
    output = run_dbt(
        [
            "build",
            "--select",
            SELECTION,
            "--exclude",
            "test_type:unit",
            "--vars",
            json.dumps({"as_of": as_of.isoformat(), **variables}),
        ]
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)
    inserted = {}
    for mart in MARTS:
        found = re.search(rf"OK created sql incremental model marts\.{mart} \.+ \[INSERT 0 (\d+)", output)
        assert found, output[-3000:]
        inserted[mart] = int(found.group(1))
    return inserted


def assert_equal_to_a_rebuild(db_url: str, as_of: datetime) -> dict[str, set[tuple[Any, ...]]]:
    """The sprint marts' rows as an incremental build at ``as_of`` left them, asserted equal to
    those of a rebuild of every sprint at the same ``as_of`` (which this runs)."""
    incremental = {mart: rows_of(db_url, mart) for mart in MARTS}
    build(as_of, rebuild=True)
    for mart in MARTS:
        assert incremental[mart] == rows_of(db_url, mart), mart
    return incremental


def load_all(server: SandboxServer, db_url: str, pipelines: str) -> None:
    jira = {"email": "pulse@isp.example", "token": token_for("jira", JIRA)}
    load_jira(JIRA, db_url, jira_source(f"{server.url}/jira", jira, {}), pipelines_dir=pipelines)
    load_github(JIRA, db_url, github_source(server.url, github_token(JIRA), f"{JIRA}-eng"), pipelines_dir=pipelines)
    azure_url, azure = f"{server.url}/azure/{AZURE}-eng", {"token": token_for("azure", AZURE)}
    load_azure_boards(AZURE, db_url, azure_boards_source(azure_url, azure, {}), pipelines_dir=pipelines)
    git_config = {"project": payloads.git_project(server.work_world(AZURE))}
    load_azure_devops_git(AZURE, db_url, azure_devops_git_source(azure_url, azure, git_config), pipelines_dir=pipelines)


def git_watermarks(db_url: str) -> dict[str, datetime]:
    return dict(
        query(
            db_url,
            "select tenant_id, max(last_loaded_at) from marts.fct_source_freshness"
            " where tenant_id = any(%s) and source_type in ('github', 'azure_devops_git') group by tenant_id",
            list(TENANTS),
        )
    )


def row_versions(db_url: str, mart: str) -> set[tuple[str, str]]:
    """Each row's place and writing transaction: a row written again (updated, or deleted and
    inserted) gets others, a row left alone keeps both."""
    return {(str(place), str(xmin)) for place, xmin in query(db_url, f"select ctid, xmin from marts.{mart}")}


@pytest.fixture(scope="module")
def builds(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    server = SandboxServer(now=WORLD_DAY, seed=29, scale=0.3, work_scale=0.4, history_days=70).start()
    pipelines = str(tmp_path_factory.mktemp("incremental_sprints"))
    try:
        with admin_engine(settings).begin() as conn:
            for tenant in TENANTS:
                control.add_tenant(conn, tenant, f"Incremental sprints {tenant}", actor="test")
        load_all(server, db_url, pipelines)
        # The marts may already hold other test modules' tenants: ours are new to them, built whole.
        build(WORLD_DAY + timedelta(hours=6))
        before = {mart: rows_of(db_url, mart) for mart in MARTS}
        watermarks = [git_watermarks(db_url)]
        versions = {mart: row_versions(db_url, mart) for mart in MARTS}

        server.advance(days=1, touches_per_tenant=8)
        load_all(server, db_url, pipelines)

        as_of = WORLD_DAY + timedelta(days=2)
        inserted = build(as_of)
        incremental = {mart: rows_of(db_url, mart) for mart in MARTS}
        written = {mart: len(row_versions(db_url, mart) - versions[mart]) for mart in MARTS}
        people = tenant_rows(db_url, "intermediate.int_people", TENANTS)
        watermarks.append(git_watermarks(db_url))
        inserted_by_rebuild = build(as_of, rebuild=True)
        rebuilt = {mart: rows_of(db_url, mart) for mart in MARTS}
        people_rebuilt = tenant_rows(db_url, "intermediate.int_people", TENANTS)
        yield Builds(
            before, incremental, rebuilt, inserted, inserted_by_rebuild, watermarks, written, (people, people_rebuilt)
        )
    finally:
        server.stop()


@pytest.mark.parametrize("mart", MARTS)
def test_an_incremental_build_equals_a_rebuild_of_every_sprint(builds: Builds, mart: str) -> None:
    for tenant in TENANTS:
        assert any(row[0] == tenant for row in builds.incremental[mart]), (mart, tenant)
    assert builds.incremental[mart] == builds.rebuilt[mart]


@pytest.mark.parametrize("mart", MARTS)
def test_the_incremental_build_rebuilt_some_sprints_not_all(builds: Builds, mart: str) -> None:
    # The rebuild inserts every row of every tenant; the incremental build the rows of the
    # sprints whose inputs changed in the day (and the running and future ones): some, not all.
    assert builds.inserted_by_rebuild[mart] >= len(builds.rebuilt[mart])
    assert 0 < builds.inserted[mart] < builds.inserted_by_rebuild[mart], (mart, builds.inserted)


def test_the_day_changed_rows(builds: Builds) -> None:
    # The day's loads changed figures the incremental build had to pick up (the rows differ from
    # the day before), so the equality above is not that of two unchanged tables.
    changed = builds.incremental["fct_sprints"] - builds.before["fct_sprints"]
    assert changed
    assert builds.incremental["fct_developer_sprints"] - builds.before["fct_developer_sprints"]


def test_the_git_freshness_moved_with_the_day_s_git_load(builds: Builds) -> None:
    first, second = builds.git_loaded_at
    for tenant in TENANTS:
        assert first[tenant] is not None and second[tenant] > first[tenant], tenant


@pytest.mark.parametrize("mart", MARTS)
def test_the_incremental_build_wrote_only_the_rows_it_inserted(builds: Builds, mart: str) -> None:
    # The rows of the sprints not rebuilt are left as they were, not stamped anew: a day's build
    # writes what changed, not the history (the marts once rewrote every row of a tenant whose
    # git load moved, to stamp it).
    assert builds.written[mart] == builds.inserted[mart], (mart, builds.written, builds.inserted)


def test_commits_read_by_window_count_as_a_build_in_full_does(builds: Builds, db_url: str) -> None:
    """An incremental build of fct_developer_sprints reads the commits of its batch's windows, window
    by window: each tenant's raw commits are indexed on their authoring time (its pre-hook,
    index_raw_load_ids), which a read of the staging view by time uses. Its rows, commits counted
    and all, are those of a build in full, which reads every commit (`rebuild: true`, compared
    above, still runs the incremental path: it rebuilds every sprint, reading window by window)."""
    window = (WORLD_DAY - timedelta(days=14), WORLD_DAY)
    for view, tenant in (("stg_github__commits", JIRA), ("stg_azure_devops_git__commits", AZURE)):
        plan = plan_without_scans(
            db_url,
            f"select commit_sha, author_email, author_login from staging.{view}"
            " where tenant_id = %s and authored_at >= %s and authored_at < %s",
            tenant,
            *window,
        )
        assert "commits_authored_at" in plan and "Seq Scan on commits" not in plan, plan
    counted = dict(
        query(
            db_url,
            "select tenant_id, sum(commits) from marts.fct_developer_sprints"
            " where tenant_id = any(%s) group by tenant_id",
            list(TENANTS),
        )
    )
    assert all(counted.get(tenant, 0) > 0 for tenant in TENANTS), counted
    incremental = rows_of(db_url, "fct_developer_sprints")
    build_at("fct_developer_sprints", WORLD_DAY + timedelta(days=2), full_refresh=True)
    assert rows_of(db_url, "fct_developer_sprints") == incremental


def test_whole_reads_of_github_commits_and_reviews_read_an_index(builds: Builds, db_url: str) -> None:
    """stg_github__users counts every commit of a tenant by login and email, and
    fct_developer_sprints reads every review: each from an index of the raw rows holding the
    columns the read needs (index_raw_load_ids' `covering`), not the raw rows with their payloads.
    Once a table's pages are all visible (a vacuum; autovacuum's work on a table loaded long enough
    ago), the planner answers each read from its index alone (told not to scan the rows or visit
    them by bitmap, as this world's tables are small enough for a scan to win)."""
    reads = {
        "commits": (
            "commits_authors",
            "select author_login, author_email, max(author_name), count(*)"
            " from staging.stg_github__commits where tenant_id = %s and author_login is not null"
            " and author_email is not null and author_email not like '%%noreply.github.com'"
            " group by author_login, author_email",
        ),
        "reviews": (
            "reviews_activity",
            "select tenant_id, pull_request_id, source_system, reviewer_email, reviewer_login, submitted_at,"
            " first_activity_at from intermediate.int_pull_request_reviews_unified where tenant_id = %s",
        ),
    }
    for table, (index, sql) in reads.items():
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"vacuum analyze raw_github__{JIRA}.{table}")
            conn.execute("set enable_seqscan = off")
            conn.execute("set enable_bitmapscan = off")
            plan = "\n".join(row[0] for row in conn.execute(f"explain {sql}", [JIRA]))
        assert f"Index Only Scan using {index}" in plan, plan


def test_people_built_incrementally_equal_a_rebuild(builds: Builds) -> None:
    incremental, rebuilt = builds.people
    assert {row[0] for row in incremental} == set(TENANTS)
    assert incremental == rebuilt


def test_people_are_derived_anew_only_for_a_tenant_loaded_since(builds: Builds, db_url: str) -> None:
    # int_people derives a tenant anew when a load of it completed since (its loads_version):
    # with its rows spoiled, a new load of the Azure tenant restores its rows, while the Jira
    # tenant, not loaded since, keeps what it has.
    people, loads = "intermediate.int_people", f"raw_azure_boards__{AZURE}._dlt_loads"
    as_of = (WORLD_DAY + timedelta(days=2)).isoformat()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"update {people} set display_name = 'stale' where tenant_id = any(%s)", [list(TENANTS)])
        conn.execute(
            f"insert into {loads} (load_id, schema_name, status, inserted_at)"
            f" select (max(load_id)::numeric + 1)::text, max(schema_name), 0, now() from {loads}"
        )
    try:
        run_dbt(["run", "--select", "int_people", "--vars", json.dumps({"as_of": as_of})])
        stale = dict(
            query(
                db_url,
                f"select tenant_id, bool_and(display_name = 'stale') from {people}"
                " where tenant_id = any(%s) group by tenant_id",
                list(TENANTS),
            )
        )
        assert stale == {JIRA: True, AZURE: False}
        # (its rows but their fingerprint, the last column, are the rebuild's)
        restored = {row[:-1] for row in tenant_rows(db_url, people, [AZURE])}
        assert restored == {row[:-1] for row in builds.people[1] if row[0] == AZURE}
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"delete from {loads} where load_id = (select max(load_id) from {loads})")
        run_dbt(["run", "--select", "int_people", "--vars", json.dumps({"as_of": as_of, "rebuild": True})])


def test_dmt_figures_follow_a_change_that_loads_nothing(builds: Builds, db_url: str) -> None:
    # A project's coverage threshold (control.projects) changes DMT verdicts without a load:
    # fct_work_item_compliance rebuilds the items of that project and logs those whose verdict
    # changed, and the marts rebuild those items' sprints.
    as_of = WORLD_DAY + timedelta(days=2)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into control.projects (tenant_id, key, name, dmt_coverage_threshold)"
            " select distinct tenant_id, project_key, project_key, 0 from marts.fct_sprints"
            " where tenant_id = %s and project_key is not null",
            [AZURE],
        )
    try:
        build(as_of)
        incremental = assert_equal_to_a_rebuild(db_url, as_of)
        assert incremental["fct_sprints"] != builds.rebuilt["fct_sprints"]
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("delete from control.projects where tenant_id = %s", [AZURE])


def test_a_mart_built_with_the_retired_git_stamp_loses_it_and_builds_on(builds: Builds, db_url: str) -> None:
    # A warehouse built before the stamp moved to fct_source_freshness has a git_loaded_at
    # column on both marts (and, before the marts logged what changed, inputs_version); the next
    # incremental build drops them (schema-change failure otherwise) and keeps every row.
    as_of = WORLD_DAY + timedelta(days=2)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for mart in MARTS:
            conn.execute(f"alter table marts.{mart} add column git_loaded_at timestamp with time zone")
            conn.execute(f"alter table marts.{mart} add column inputs_version text")
            conn.execute(f"update marts.{mart} set git_loaded_at = now() where tenant_id = any(%s)", [list(TENANTS)])
    build(as_of)
    for mart in MARTS:
        columns = query(
            db_url,
            "select column_name from information_schema.columns where table_schema = 'marts' and table_name = %s",
            mart,
        )
        assert not {("git_loaded_at",), ("inputs_version",)} & set(columns) and len(columns) > 10, mart
    assert_equal_to_a_rebuild(db_url, as_of)


def new_load(conn: psycopg.Connection[Any], schema: str) -> str:
    """Record a completed dlt load in raw schema ``schema``, later than every other; its id."""
    loads = f"{schema}._dlt_loads"
    load_id = conn.execute(f"select (max(load_id)::numeric + 1)::text from {loads}").fetchone()[0]
    conn.execute(
        f"insert into {loads} (load_id, schema_name, status, inserted_at)"
        f" select %s, max(schema_name), 0, now() from {loads}",
        [load_id],
    )
    return str(load_id)


def logged_moments(db_url: str, tenant: str) -> dict[str, set[datetime | None]]:
    """The moments int_git_moments logged for each sprint mart of ``tenant``, not taken yet."""
    logged: dict[str, set[datetime | None]] = {}
    for consumer, moment in query(
        db_url, "select consumer, moment from intermediate.git_moment_changes where tenant_id = %s", tenant
    ):
        logged.setdefault(consumer, set()).add(moment)
    return logged


def merge_and_first_review(db_url: str, pull_request: object) -> tuple[datetime | None, datetime | None]:
    """(merged_at, first_review_at) of a GitHub pull request of the Jira tenant."""
    merged_at, first_review_at = query(
        db_url,
        "select merged_at, first_review_at from intermediate.int_pull_requests_unified"
        " where tenant_id = %s and pull_request_id = %s",
        JIRA,
        f"github:{pull_request}",
    )[0]
    return merged_at, first_review_at


def moments_of_a_moved_review(
    db_url: str, pull_request: object, before: tuple[datetime | None, datetime | None], moved: set[datetime]
) -> set[datetime]:
    """What int_git_moments logs when a review of ``pull_request`` moved (``moved``: its moment
    before and after): both, and the merge when the move changed the first review
    (fct_sprints' hours to first review count at the merge). ``before``: merge_and_first_review
    before the move."""
    merged_at, first_review_at = before
    if merge_and_first_review(db_url, pull_request)[1] != first_review_at and merged_at is not None:
        return moved | {merged_at}
    return moved


def test_git_facts_loaded_again_unchanged_log_nothing_and_a_moved_review_logs_its_own_moments(
    builds: Builds, db_url: str
) -> None:
    # A GitHub pull request loaded again with every row unchanged (its raw rows carry a new load)
    # gives int_git_moments the same facts: nothing is logged for the sprint marts, so none of
    # its sprints is rebuilt. Moving its latest review later logs that review's moment before
    # and after (its reviewer's first review is the same or moves between the two), not the
    # other reviews'; and its merge when the move changed its first review.
    as_of = WORLD_DAY + timedelta(days=2)
    schema = f"raw_github__{JIRA}"
    pull_request, reviews = query(
        db_url,
        f"select pull_request_id, array_agg(submitted_at::timestamptz order by submitted_at) from {schema}.reviews"
        " where submitted_at is not null and state <> 'PENDING'"
        " group by pull_request_id having count(*) >= 2 order by pull_request_id limit 1",
    )[0]
    selection = "int_pull_request_refs int_pull_request_work_items int_pull_requests_unified int_git_moments"
    with psycopg.connect(db_url, autocommit=True) as conn:
        load_id = new_load(conn, schema)
        for table, key in (("pull_requests", "id"), ("reviews", "pull_request_id"), ("commits", "pull_request_id")):
            conn.execute(f"update {schema}.{table} set _dlt_load_id = %s where {key} = %s", [load_id, pull_request])
    build_at(selection, as_of)
    assert logged_moments(db_url, JIRA) == {}

    moved_to = as_of - timedelta(hours=1)
    before = merge_and_first_review(db_url, pull_request)
    with psycopg.connect(db_url, autocommit=True) as conn:
        load_id = new_load(conn, schema)
        conn.execute(
            f"update {schema}.reviews set submitted_at = %s, _dlt_load_id = %s"
            f" where id = (select min(id) from {schema}.reviews where pull_request_id = %s and submitted_at = %s)",
            [moved_to, load_id, pull_request, reviews[-1]],
        )
    build_at(selection, as_of)
    expected = moments_of_a_moved_review(db_url, pull_request, before, {reviews[-1], moved_to})
    assert logged_moments(db_url, JIRA) == {"fct_sprints": expected, "fct_developer_sprints": expected}

    build(as_of)
    assert logged_moments(db_url, JIRA) == {}
    assert_equal_to_a_rebuild(db_url, as_of)


def reviewed(db_url: str, tenant: str) -> dict[tuple[str, str], int]:
    """(sprint, person) → pull requests reviewed, of fct_developer_sprints' rows of ``tenant``."""
    rows = query(
        db_url,
        "select sprint_uid, person_id, prs_reviewed from marts.fct_developer_sprints where tenant_id = %s",
        tenant,
    )
    return {(sprint, person): count for sprint, person, count in rows}


def test_a_vote_changed_in_place_rebuilds_the_sprint_of_the_old_vote(builds: Builds, db_url: str) -> None:
    # An Azure reviewer's row holds only their current vote. A vote cast again later (a new
    # load, the row changed in place) leaves the closed sprint that held the old one: the row
    # that int_git_moments replaces still has the old moment, so that sprint is rebuilt, with
    # one pull request reviewed fewer for the reviewer.
    as_of = WORLD_DAY + timedelta(days=2)
    schema = f"raw_azure_devops_git__{AZURE}"
    row_id, sprint, person = query(
        db_url,
        f"select reviewers._dlt_id, sprints.sprint_uid, sprints.person_id from {schema}.reviewers as reviewers"
        " inner join intermediate.int_pull_requests_unified as pull_requests"
        "   on pull_requests.tenant_id = %s"
        "   and pull_requests.pull_request_id = 'azure_devops_git:' || reviewers.pull_request_id"
        " inner join marts.fct_developer_sprints as sprints"
        "   on sprints.tenant_id = %s and sprints.person_id = lower(reviewers.unique_name)"
        "   and reviewers.voted_at::timestamptz >= sprints.start_at"
        "   and reviewers.voted_at::timestamptz < sprints.window_end_at"
        " where reviewers.vote::integer <> 0 and sprints.prs_reviewed > 0 and sprints.window_end_at < %s"
        "   and pull_requests.author_person_id is distinct from lower(reviewers.unique_name)"
        " order by reviewers.voted_at, reviewers._dlt_id limit 1",
        AZURE,
        AZURE,
        as_of - timedelta(days=3),
    )[0]
    before = reviewed(db_url, AZURE)
    with psycopg.connect(db_url, autocommit=True) as conn:
        load_id = new_load(conn, schema)
        conn.execute(
            f"update {schema}.reviewers set voted_at = %s, _dlt_load_id = %s where _dlt_id = %s",
            [as_of - timedelta(hours=1), load_id, row_id],
        )
    build(as_of)
    assert reviewed(db_url, AZURE)[(sprint, person)] == before[(sprint, person)] - 1
    assert_equal_to_a_rebuild(db_url, as_of)


def test_a_second_review_in_the_batch_keeps_the_first_review_before_it(builds: Builds, db_url: str) -> None:
    # An incremental build reads the reviews of the pull requests reviewed since its batch's
    # earliest window, with every older review of them: a person's first review of a pull request
    # counts at their earliest review. A reviewer reviews again, inside their running sprint, a
    # pull request they first reviewed before every sprint of the batch (and nobody reviewed
    # since): the running sprint counts it reviewed, one more, but not its turnaround, which
    # belongs to the first review's sprint. Read without the older review, the second review would
    # be their first and its turnaround would be counted.
    as_of = WORLD_DAY + timedelta(days=2)
    schema = f"raw_github__{JIRA}"
    picked = """
        with
        running as (
            select sprint_uid, person_id from marts.fct_developer_sprints
            where tenant_id = %(tenant)s and window_end_at = %(as_of)s
        ),
        batch_start as (
            select min(start_at) as from_at from marts.fct_sprints
            where tenant_id = %(tenant)s and window_end_at >= %(as_of)s - interval '2 days'
        ),
        reviews as (
            select
                reviews.pull_request_id, reviews.review_id, reviews.reviewer_login, reviews.submitted_at,
                coalesce(by_email.person_id, by_login.person_id) as person_id
            from intermediate.int_pull_request_reviews_unified as reviews
            left join intermediate.int_people as by_email
                on by_email.tenant_id = reviews.tenant_id and by_email.person_id = reviews.reviewer_email
            left join intermediate.int_people as by_login
                on by_login.tenant_id = reviews.tenant_id and by_login.github_login = reviews.reviewer_login
            where reviews.tenant_id = %(tenant)s and reviews.source_system = 'github'
        )
        select running.sprint_uid, running.person_id, reviews.review_id, reviews.pull_request_id
        from running
        inner join reviews on reviews.person_id = running.person_id
        inner join intermediate.int_pull_requests_unified as pull_requests
            on pull_requests.tenant_id = %(tenant)s and pull_requests.pull_request_id = reviews.pull_request_id
        where reviews.submitted_at < (select from_at from batch_start)
          and pull_requests.author_person_id is distinct from running.person_id
          and pull_requests.author_login is distinct from reviews.reviewer_login
          and not exists (
              select from reviews as later
              where later.pull_request_id = reviews.pull_request_id
                and later.submitted_at >= (select from_at from batch_start)
          )
        order by reviews.submitted_at, reviews.review_id, running.sprint_uid
        limit 1
    """
    with psycopg.connect(db_url) as conn:
        found = conn.execute(picked, {"tenant": JIRA, "as_of": as_of}).fetchone()
    assert found, "the world has no reviewer of a running sprint with a review before the batch"
    sprint, person, review, pull_request = found
    figures = (
        "select prs_reviewed, mean_review_turnaround_hours from marts.fct_developer_sprints"
        " where tenant_id = %s and sprint_uid = %s and person_id = %s"
    )
    reviewed_before, turnaround_before = query(db_url, figures, JIRA, sprint, person)[0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        load_id = new_load(conn, schema)
        conn.execute(f"create temp table again as select * from {schema}.reviews where id = %s", [review.split(":")[1]])
        conn.execute(
            f"update again set id = (select max(id) + 1 from {schema}.reviews), _dlt_id = md5(random()::text),"
            " submitted_at = %s, _dlt_load_id = %s",
            [as_of - timedelta(hours=1), load_id],
        )
        conn.execute(f"insert into {schema}.reviews select * from again")
    build(as_of)
    assert query(db_url, figures, JIRA, sprint, person)[0] == (reviewed_before + 1, turnaround_before), pull_request
    assert_equal_to_a_rebuild(db_url, as_of)


def test_a_tenant_logged_whole_compares_every_fact_and_logs_only_the_moved_ones(builds: Builds, db_url: str) -> None:
    # int_pull_requests_unified built in full logs every tenant whole for int_git_moments, which
    # then rebuilds those tenants' facts and compares all of them with the ones they replace
    # (keep_logged_rows, tenant by tenant). A review moved in the raw table without a new load
    # reaches the facts only through that whole-tenant path: its moments before and after are
    # logged for the sprint marts, and nothing of the other tenant, whose facts are unchanged.
    as_of = WORLD_DAY + timedelta(days=2)
    schema = f"raw_github__{JIRA}"
    review_id, pull_request, submitted_at = query(
        db_url,
        f"select id, pull_request_id, submitted_at::timestamptz from {schema}.reviews"
        " where submitted_at is not null and state <> 'PENDING' and pull_request_id in ("
        f"   select pull_request_id from {schema}.reviews where submitted_at is not null and state <> 'PENDING'"
        "   group by pull_request_id having count(*) >= 2)"
        " order by pull_request_id desc, submitted_at desc, id desc limit 1",
    )[0]
    before = merge_and_first_review(db_url, pull_request)
    build(as_of)  # every entry logged so far taken
    assert logged_moments(db_url, JIRA) == {} and logged_moments(db_url, AZURE) == {}
    moved_to = as_of - timedelta(hours=2)
    variables = json.dumps({"as_of": as_of.isoformat()})
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"update {schema}.reviews set submitted_at = %s where id = %s", [moved_to, review_id])
    try:
        run_dbt(["build", "--select", "int_pull_requests_unified", "--full-refresh", "--vars", variables])
        build_at("int_git_moments", as_of)
        expected = moments_of_a_moved_review(db_url, pull_request, before, {submitted_at, moved_to})
        assert logged_moments(db_url, JIRA) == {"fct_sprints": expected, "fct_developer_sprints": expected}
        assert logged_moments(db_url, AZURE) == {}
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"update {schema}.reviews set submitted_at = %s where id = %s", [submitted_at, review_id])
        run_dbt(["build", "--select", "int_pull_requests_unified", "--full-refresh", "--vars", variables])
        build(as_of)
    assert_equal_to_a_rebuild(db_url, as_of)


def load_jira_issue_again(db_url: str, issue_id: str, **columns: object) -> str:
    """Load the Jira tenant's issue ``issue_id`` again: its raw row, with ``columns`` changed in
    place, under a new completed load; the load's id."""
    schema = f"raw_jira__{JIRA}"
    assignments = "".join(f"{column} = %s, " for column in columns)
    with psycopg.connect(db_url, autocommit=True) as conn:
        load_id = new_load(conn, schema)
        conn.execute(
            f"update {schema}.issues set {assignments}_dlt_load_id = %s where id::text = %s",
            [*columns.values(), load_id, issue_id],
        )
    return load_id


def test_an_item_of_a_closed_sprint_loaded_again_rebuilds_that_sprint(builds: Builds, db_url: str) -> None:
    # A Jira item of a closed sprint loaded again, unchanged: its scope rows carry the newer load
    # (int_sprint_scope logs the sprint, though nothing the items' log reads changed), so the
    # sprint is rebuilt with the newer source_loaded_at, as a rebuild has it.
    as_of = WORLD_DAY + timedelta(days=2)
    build(as_of)
    item_id, sprint = query(
        db_url,
        "select split_part(scope.work_item_uid, ':', 2), scope.sprint_uid"
        " from intermediate.int_sprint_scope as scope"
        " inner join marts.fct_sprints as sprints"
        "   on sprints.tenant_id = scope.tenant_id and sprints.sprint_uid = scope.sprint_uid"
        " where scope.tenant_id = %s and sprints.window_end_at < %s"
        # (every sprint of the item closed: none is rebuilt for its window)
        "   and not exists (select from intermediate.int_sprint_scope as other"
        "     inner join marts.fct_sprints as open on open.tenant_id = other.tenant_id"
        "       and open.sprint_uid = other.sprint_uid and open.window_end_at >= %s"
        "     where other.tenant_id = scope.tenant_id and other.work_item_uid = scope.work_item_uid)"
        " order by scope.sprint_uid, scope.work_item_uid limit 1",
        JIRA,
        as_of - timedelta(days=3),
        as_of - timedelta(days=3),
    )[0]
    load_id = load_jira_issue_again(db_url, item_id)
    build(as_of)
    loaded_at = query(
        db_url,
        "select source_loaded_at from marts.fct_sprints where tenant_id = %s and sprint_uid = %s",
        JIRA,
        sprint,
    )[0][0]
    # (the load's moment as staging reads a load id, to the microsecond PostgreSQL rounds to)
    assert loaded_at == query(db_url, "select to_timestamp(%s::double precision)", load_id)[0][0]
    assert_equal_to_a_rebuild(db_url, as_of)


def test_blocked_periods_rebuilt_without_the_scope_rebuild_the_sprints_holding_the_item(
    builds: Builds, db_url: str
) -> None:
    # fct_sprints counts the blocked time of its scope items. A build of some assets only (as a
    # data engineer may run in Dagster) can rebuild an item's blocked periods without its scope
    # rows: int_work_item_blocked_periods then logs the item, and the sprints holding it are
    # rebuilt. Here the mart first reads spoiled periods of an item (none left), then the item is
    # loaded again and only the periods and the mart are built: its sprint's blocked time is back.
    as_of = WORLD_DAY + timedelta(days=2)
    build(as_of)
    item_uid, sprint, blocked_days = query(
        db_url,
        "select periods.work_item_uid, sprints.sprint_uid, sprints.blocked_days_total"
        " from intermediate.int_work_item_blocked_periods as periods"
        " inner join intermediate.int_sprint_scope as scope"
        "   on scope.tenant_id = periods.tenant_id and scope.work_item_uid = periods.work_item_uid"
        " inner join marts.fct_sprints as sprints"
        "   on sprints.tenant_id = scope.tenant_id and sprints.sprint_uid = scope.sprint_uid"
        " where periods.tenant_id = %s and sprints.window_end_at < %s"
        "   and periods.blocked_from < sprints.window_end_at"
        "   and coalesce(periods.blocked_until, %s) > sprints.start_at"
        " order by sprints.sprint_uid, periods.work_item_uid limit 1",
        JIRA,
        as_of - timedelta(days=3),
        as_of,
    )[0]
    variables = {"as_of": as_of.isoformat()}
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "delete from intermediate.int_work_item_blocked_periods where tenant_id = %s and work_item_uid = %s",
            [JIRA, item_uid],
        )
    run_dbt(["run", "--select", "fct_sprints", "--vars", json.dumps({**variables, "rebuild": True})])

    def blocked() -> Any:
        return query(
            db_url,
            "select blocked_days_total from marts.fct_sprints where tenant_id = %s and sprint_uid = %s",
            JIRA,
            sprint,
        )[0][0]

    assert blocked() < blocked_days
    load_jira_issue_again(db_url, item_uid.split(":", 1)[1])
    run_dbt(
        [
            "run",
            "--select",
            "+int_work_item_blocked_periods",
            "fct_sprints",
            "--exclude",
            "int_sprint_scope",
            "--vars",
            json.dumps(variables),
        ]
    )
    assert blocked() == blocked_days
    build(as_of)
    assert_equal_to_a_rebuild(db_url, as_of)


def defects(db_url: str, tenant: str) -> dict[str, int]:
    """fct_sprints' post-release defects of ``tenant``, per sprint."""
    return dict(
        query(db_url, "select sprint_uid, post_release_defects from marts.fct_sprints where tenant_id = %s", tenant)
    )


def test_a_bug_linked_to_another_story_moves_its_defect_to_that_story_s_sprint(builds: Builds, db_url: str) -> None:
    # A Jira bug's "caused by" link moves from a story completed in one closed sprint to a story
    # completed in another (its row loaded again). int_work_items_unified logs the bug and its
    # story before and after, so both stories' sprints are rebuilt: the old one counts a defect
    # fewer, the new one a defect more, and the marts equal a rebuild.
    as_of = WORLD_DAY + timedelta(days=2)
    build(as_of)
    bug_id, old_sprint, new_story_id, new_sprint = query(
        db_url,
        "select split_part(bug.work_item_uid, ':', 2), old.sprint_uid,"
        "   split_part(story.work_item_uid, ':', 2), new.sprint_uid"
        " from intermediate.int_work_items_unified as bug"
        " inner join intermediate.int_sprint_scope as old"
        "   on old.tenant_id = bug.tenant_id and old.work_item_uid = bug.caused_by_uid and old.is_completed"
        " inner join intermediate.int_sprint_scope as new"
        "   on new.tenant_id = bug.tenant_id and new.is_completed and new.sprint_uid <> old.sprint_uid"
        " inner join intermediate.int_work_items_unified as story"
        "   on story.tenant_id = new.tenant_id and story.work_item_uid = new.work_item_uid"
        "   and story.item_type = 'story'"
        " inner join marts.fct_sprints as old_sprint"
        "   on old_sprint.tenant_id = old.tenant_id and old_sprint.sprint_uid = old.sprint_uid"
        " inner join marts.fct_sprints as new_sprint"
        "   on new_sprint.tenant_id = new.tenant_id and new_sprint.sprint_uid = new.sprint_uid"
        " where bug.tenant_id = %s and bug.item_type = 'bug'"
        "   and old_sprint.window_end_at < %s and new_sprint.window_end_at < %s"
        # (no other bug of the new story: its count moves by exactly one)
        "   and not exists (select from intermediate.int_work_items_unified as other"
        "     where other.tenant_id = story.tenant_id and other.caused_by_uid = story.work_item_uid)"
        " order by bug.work_item_uid, new.sprint_uid, story.work_item_uid limit 1",
        JIRA,
        as_of - timedelta(days=3),
        as_of - timedelta(days=3),
    )[0]
    before = defects(db_url, JIRA)
    load_jira_issue_again(db_url, bug_id, caused_by_id=new_story_id)
    build(as_of)
    after = defects(db_url, JIRA)
    assert (after[old_sprint], after[new_sprint]) == (before[old_sprint] - 1, before[new_sprint] + 1)
    assert {sprint for sprint in after if after[sprint] != before[sprint]} == {old_sprint, new_sprint}
    assert_equal_to_a_rebuild(db_url, as_of)


def test_a_primary_project_moved_moves_the_person_s_membership(builds: Builds, db_url: str) -> None:
    # A person whose primary project (int_people) moves becomes a member of the other project's
    # sprints and leaves the old one's, though nothing of the scope changed: the mart compares
    # the memberships it built with int_people's. (int_people is changed in place: it derives
    # a tenant anew only after a load, so the builds keep the change until it is rebuilt.)
    as_of = WORLD_DAY + timedelta(days=2)
    build(as_of)
    person, old_project, new_project = query(
        db_url,
        "select people.person_id, people.primary_project_key, other.project_key"
        " from intermediate.int_people as people"
        " inner join (select distinct tenant_id, project_key from marts.fct_sprints) as other"
        "   on other.tenant_id = people.tenant_id and other.project_key <> people.primary_project_key"
        " where people.tenant_id = %s"
        "   and people.primary_project_key in (select project_key from marts.fct_sprints where tenant_id = %s)"
        " order by people.person_id, other.project_key limit 1",
        AZURE,
        AZURE,
    )[0]

    def memberships() -> set[str]:
        return {
            project
            for (project,) in query(
                db_url,
                "select distinct project_key from marts.fct_developer_sprints"
                " where tenant_id = %s and person_id = %s and is_project_member",
                AZURE,
                person,
            )
        }

    def sprints_of(project: str) -> int:
        return int(
            query(
                db_url,
                "select count(*) from marts.fct_sprints where tenant_id = %s and project_key = %s",
                AZURE,
                project,
            )[0][0]
        )

    assert memberships() == {old_project}
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update intermediate.int_people set primary_project_key = %s where tenant_id = %s and person_id = %s",
            [new_project, AZURE, person],
        )
    try:
        build(as_of)
        assert memberships() == {new_project}
        member_rows = query(
            db_url,
            "select count(*) from marts.fct_developer_sprints"
            " where tenant_id = %s and person_id = %s and is_project_member",
            AZURE,
            person,
        )[0][0]
        assert member_rows == sprints_of(new_project) > 0
    finally:
        run_dbt(["run", "--select", "int_people", "--vars", json.dumps({"as_of": as_of.isoformat(), "rebuild": True})])
    build(as_of)
    assert memberships() == {old_project}
    assert_equal_to_a_rebuild(db_url, as_of)


def test_a_tenant_whose_raw_data_is_gone_loses_its_rows(builds: Builds, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("drop schema raw_jira__isp_a cascade")
        conn.execute("drop schema raw_github__isp_a cascade")
    # (The build creates again the staging views the drop took with it.)
    build(WORLD_DAY + timedelta(days=2))
    for mart in MARTS:
        left = dict(
            query(
                db_url,
                f"select tenant_id, count(*) from marts.{mart} where tenant_id = any(%s) group by tenant_id",
                list(TENANTS),
            )
        )
        assert JIRA not in left, mart
        assert left.get(AZURE, 0) > 0, mart
