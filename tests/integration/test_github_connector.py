"""The GitHub connector against the sandbox API and a real PostgreSQL (the session's ``db_url``).

Each test uses a tenant of its own, so worlds the tests change (touches) and datasets do not
interfere. Expected counts come from the sandbox's world, the source of truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dlt.common.pipeline import LoadInfo

from connectors.github import (
    GitHubApiError,
    GitHubAuthError,
    RetryPolicy,
    dataset_name,
    github_source,
    load_github,
    row_counts,
)
from connectors.sandbox import SandboxFaults, SandboxServer, token_for
from connectors.sandbox.github.world import GitHubWorld

TABLES = ("repositories", "pull_requests", "reviews", "commits", "check_runs")
FAST = RetryPolicy(server_error_backoff=0.05, secondary_limit_wait=0.1, reset_margin=0.2, max_backoff=0.5)


def load(
    sandbox: SandboxServer,
    db_url: str,
    tenant: str,
    pipelines_dir: Path,
    *,
    repositories: list[str] | None = None,
    token: str | None = None,
    org: str | None = None,
    policy: RetryPolicy = FAST,
) -> LoadInfo:
    source = github_source(
        sandbox.url,
        token or token_for(tenant),
        org or f"{tenant}-eng",
        repositories=repositories,
        source_name="github",
        page_size=50,
        retry_policy=policy,
    )
    return load_github(tenant, db_url, source, pipelines_dir=str(pipelines_dir))


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def table_counts(db_url: str, tenant: str) -> dict[str, int]:
    schema = dataset_name(tenant)
    existing = {
        row[0]
        for row in query(db_url, "select table_name from information_schema.tables where table_schema = %s", schema)
    }
    return {
        table: query(db_url, f'select count(*) from "{schema}"."{table}"')[0][0] if table in existing else 0
        for table in TABLES
    }


def expected_counts(world: GitHubWorld, repositories: list[str] | None = None) -> dict[str, int]:
    repos = [r for r in world.repos if repositories is None or r.name in repositories]
    pulls = [pr for repo in repos for pr in repo.pulls]
    return {
        "repositories": len(repos),
        "pull_requests": len(pulls),
        "reviews": sum(len(pr.reviews) for pr in pulls),
        "commits": sum(len(pr.commits) for pr in pulls),
        "check_runs": len({run.id for pr in pulls for run in world.check_runs[pr.head_sha]}),
    }


@pytest.fixture
def faults(sandbox_faults: SandboxFaults) -> Iterator[SandboxFaults]:
    yield sandbox_faults


def test_full_load_lands_every_row_of_the_tenants_world(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    world = sandbox.world("acme")
    info = load(sandbox, db_url, "acme", tmp_path)
    assert not info.has_failed_jobs
    assert table_counts(db_url, "acme") == world.counts() == expected_counts(world)
    assert row_counts(info) == world.counts()
    schema = dataset_name("acme")
    # No duplicates on the primary keys.
    assert (
        query(db_url, f"select count(distinct id) from {schema}.pull_requests")[0][0] == world.counts()["pull_requests"]
    )
    assert (
        query(db_url, f"select count(distinct (pull_request_id, sha)) from {schema}.commits")[0][0]
        == world.counts()["commits"]
    )
    # Values: one pull request compared field by field with the world.
    pr = max(world.pull_requests(), key=lambda p: len(p.reviews))
    row = query(
        db_url,
        f"select number, state, author_login, head_sha, created_at, merged_at, is_draft, payload->>'title',"
        f" jsonb_typeof(payload) from {schema}.pull_requests where id = %s",
        pr.id,
    )[0]
    assert row == (
        pr.number,
        pr.state,
        pr.author.login,
        pr.head_sha,
        pr.created_at,
        pr.merged_at,
        pr.draft,
        pr.title,
        "object",
    )
    reviews = query(
        db_url, f"select id, reviewer_login, state from {schema}.reviews where pull_request_id = %s order by id", pr.id
    )
    assert reviews == sorted((r.id, r.user.login, r.state) for r in pr.reviews)
    # The cursor lives in the destination.
    assert query(db_url, f"select count(*) from {schema}._dlt_pipeline_state")[0][0] >= 1


def test_raw_tables_have_the_contract_columns_and_types(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    # A second run from an empty pipelines dir resumes at the destination's cursor: no change.
    load(sandbox, db_url, "acme", tmp_path / "again")
    assert table_counts(db_url, "acme") == sandbox.world("acme").counts()
    rows = query(
        db_url,
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = %s and column_name not like '\\_dlt%%'",
        dataset_name("acme"),
    )
    columns: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        # dlt's "text" is PostgreSQL's varchar without a length, the same type for dbt
        columns.setdefault(table, {})[column] = "text" if data_type == "character varying" else data_type
    assert columns["pull_requests"] == {
        "id": "bigint", "node_id": "text", "repository_full_name": "text", "number": "bigint",
        "title": "text", "body": "text", "state": "text", "is_draft": "boolean", "author_login": "text",
        "author_id": "bigint", "head_ref": "text", "head_sha": "text", "base_ref": "text",
        "created_at": "timestamp with time zone", "updated_at": "timestamp with time zone",
        "closed_at": "timestamp with time zone", "merged_at": "timestamp with time zone",
        "merge_commit_sha": "text", "html_url": "text", "payload": "jsonb",
    }  # fmt: skip
    assert set(columns["reviews"]) == {
        "id", "pull_request_id", "repository_full_name", "pull_number", "reviewer_login", "reviewer_id",
        "state", "submitted_at", "commit_id", "html_url", "payload",
    }  # fmt: skip
    assert columns["reviews"]["submitted_at"] == "timestamp with time zone"
    assert set(columns["commits"]) == {
        "sha", "pull_request_id", "repository_full_name", "pull_number", "author_login", "author_email",
        "author_name", "authored_at", "committed_at", "message", "payload",
    }  # fmt: skip
    assert set(columns["check_runs"]) == {
        "id", "repository_full_name", "head_sha", "pull_request_id", "name", "status", "conclusion",
        "started_at", "completed_at", "payload",
    }  # fmt: skip
    assert columns["repositories"] == {
        "id": "bigint", "node_id": "text", "full_name": "text", "name": "text", "owner_login": "text",
        "is_private": "boolean", "default_branch": "text", "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone", "pushed_at": "timestamp with time zone", "payload": "jsonb",
    }  # fmt: skip


def test_incremental_rerun_loads_only_what_changed(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    world = sandbox.world("globex")
    first = load(sandbox, db_url, "globex", tmp_path / "first")
    assert row_counts(first) == world.counts()
    with sandbox.locked():
        run1_check_runs = {run.id for _, run in world.head_check_runs()}
    change = sandbox.touch_pull_requests("globex", 4)
    changed = [pr for pr in world.pull_requests() if pr.id in change.changed_pull_request_ids]
    assert len(changed) == 5

    mark = len(sandbox.requests)
    # A wiped pipelines dir: the cursor comes back from the destination.
    second = load(sandbox, db_url, "globex", tmp_path / "wiped")
    extracted = row_counts(second)
    assert extracted["pull_requests"] == len(changed)
    assert extracted["reviews"] == sum(len(pr.reviews) for pr in changed)
    assert extracted["commits"] == sum(len(pr.commits) for pr in changed)
    assert extracted["check_runs"] == sum(len(world.check_runs[pr.head_sha]) for pr in changed)
    # Early stop: one page of each repository's pull requests, sorted by updated_at desc.
    pulls_requests = [r for r in sandbox.requests_since(mark) if "/pulls?" in r.path]
    assert len(pulls_requests) == len(world.repos)
    assert all("sort=updated" in r.path and "direction=desc" in r.path for r in pulls_requests)

    totals = table_counts(db_url, "globex")
    expected = world.counts()
    expected["check_runs"] = len(run1_check_runs | {run.id for _, run in world.head_check_runs()})
    assert totals == expected
    schema = dataset_name("globex")
    assert query(db_url, f"select count(*) - count(distinct id) from {schema}.reviews")[0][0] == 0
    newest = max(changed, key=lambda pr: pr.updated_at)
    assert query(db_url, f"select max(updated_at) from {schema}.pull_requests")[0][0] == newest.updated_at

    third = load(sandbox, db_url, "globex", tmp_path / "wiped")
    assert row_counts(third).get("pull_requests", 0) == 0
    assert table_counts(db_url, "globex") == totals


def test_secondary_rate_limit_with_retry_after_is_waited_out(
    sandbox: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults
) -> None:
    world = sandbox.world("initech")
    repos = [world.repos[0].name]
    faults.secondary_rate_limit_once = 1
    faults.path_contains = "/pulls"
    mark = len(sandbox.requests)
    load(sandbox, db_url, "initech", tmp_path, repositories=repos)
    served = sandbox.requests_since(mark)
    assert [(r.status, r.fault) for r in served if "/pulls?" in r.path] == [
        (403, "secondary_rate_limit_once"),
        *[(200, None)] * -(-len(world.repos[0].pulls) // 50),
    ]
    assert faults.secondary_rate_limit_once == 0
    assert table_counts(db_url, "initech") == expected_counts(world, repos)


def test_primary_rate_limit_waits_for_the_reset(
    sandbox: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults
) -> None:
    world = sandbox.world("umbrella")
    repos = [world.repos[-1].name]
    faults.primary_rate_limit_once = 1
    faults.path_contains = "/reviews"
    mark = len(sandbox.requests)
    load(sandbox, db_url, "umbrella", tmp_path, repositories=repos)
    assert [r.fault for r in sandbox.requests_since(mark) if r.fault] == ["primary_rate_limit_once"]
    assert table_counts(db_url, "umbrella") == expected_counts(world, repos)


def test_server_errors_are_retried(sandbox: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults) -> None:
    world = sandbox.world("hooli")
    repos = [world.repos[1].name]
    faults.server_errors = 3
    faults.path_contains = "/commits"
    mark = len(sandbox.requests)
    load(sandbox, db_url, "hooli", tmp_path, repositories=repos)
    assert sum(1 for r in sandbox.requests_since(mark) if r.status == 500) == 3
    assert table_counts(db_url, "hooli") == expected_counts(world, repos)


def test_malformed_pull_request_is_quarantined_and_the_rest_loads(
    sandbox: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults
) -> None:
    world = sandbox.world("wayne")
    target = world.malformed_target()
    repos = [target.repo.name]
    faults.malformed_pull_request = True
    before = datetime.now(UTC)
    load(sandbox, db_url, "wayne", tmp_path, repositories=repos)
    schema = dataset_name("wayne")
    quarantined = query(db_url, f"select resource, item_key, reason, payload, seen_at from {schema}.quarantine")
    assert len(quarantined) == 1
    resource, key, reason, payload, seen_at = quarantined[0]
    assert resource == "pull_requests"
    assert key == f"{target.full_name} id={target.id}"
    assert "missing required field 'number'" in reason and "'created_at' is not an ISO 8601 timestamp" in reason
    assert payload["id"] == target.id and payload["created_at"] == "yesterday, around lunch"
    assert seen_at >= before
    expected = expected_counts(world, repos)
    others = [pr for pr in target.repo.pulls if pr.id != target.id]
    assert table_counts(db_url, "wayne") == {
        **expected,
        "pull_requests": len(others),
        "reviews": sum(len(pr.reviews) for pr in others),
        "commits": sum(len(pr.commits) for pr in others),
        "check_runs": sum(len(world.check_runs[pr.head_sha]) for pr in others),
    }
    assert query(db_url, f"select count(*) from {schema}.pull_requests where id = %s", target.id)[0][0] == 0
    columns = query(
        db_url,
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = 'quarantine' and column_name not like '\\_dlt%%'",
        schema,
    )
    assert {name: "text" if kind == "character varying" else kind for name, kind in columns} == {
        "resource": "text",
        "item_key": "text",
        "reason": "text",
        "payload": "jsonb",
        "seen_at": "timestamp with time zone",
    }


def test_rejected_token_fails_clearly_loads_nothing_and_does_not_poison_the_next_run(
    sandbox: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    world = sandbox.world("stark")
    repos = [world.repos[0].name]
    token = "ghp_revoked_TOKEN_0123456789"
    with pytest.raises(GitHubAuthError) as caught:
        load(sandbox, db_url, "stark", tmp_path, repositories=repos, token=token)
    message = str(caught.value)
    assert message == (
        "the GitHub token for source 'github' was rejected (401 Bad credentials) while reading org "
        "'stark-eng'; create a new token with repo read access and update it with `pulse source add/update`"
    )
    assert token not in message
    assert table_counts(db_url, "stark") == dict.fromkeys(TABLES, 0)

    info = load(sandbox, db_url, "stark", tmp_path, repositories=repos)
    assert row_counts(info) == expected_counts(world, repos)
    assert table_counts(db_url, "stark") == expected_counts(world, repos)


def test_failure_in_the_middle_of_extract_loads_nothing(
    sandbox: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults
) -> None:
    world = sandbox.world("tyrell")
    repos = [world.repos[0].name]
    faults.server_errors = 1000
    faults.path_contains = "/check-runs"
    with pytest.raises(GitHubApiError) as caught:
        load(
            sandbox,
            db_url,
            "tyrell",
            tmp_path,
            repositories=repos,
            policy=RetryPolicy(max_attempts=2, server_error_backoff=0.05),
        )
    assert caught.value.status == 500 and "/check-runs" in caught.value.url
    assert table_counts(db_url, "tyrell") == dict.fromkeys(TABLES, 0)
    faults.reset()
    load(sandbox, db_url, "tyrell", tmp_path, repositories=repos)
    assert table_counts(db_url, "tyrell") == expected_counts(world, repos)


def test_tenants_see_only_their_own_org(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    load(sandbox, db_url, "cyberdyne", tmp_path / "c", repositories=[sandbox.world("cyberdyne").repos[0].name])
    load(sandbox, db_url, "soylent", tmp_path / "s", repositories=[sandbox.world("soylent").repos[0].name])
    for tenant in ("cyberdyne", "soylent"):
        schema = dataset_name(tenant)
        owners = query(
            db_url,
            f"select distinct split_part(repository_full_name, '/', 1) from {schema}.pull_requests"
            f" union select distinct owner_login from {schema}.repositories",
        )
        assert owners == [(f"{tenant}-eng",)]
    # With cyberdyne's token, soylent's org does not exist.
    with pytest.raises(GitHubApiError) as caught:
        load(sandbox, db_url, "cyberdyne", tmp_path / "c", org="soylent-eng")
    assert caught.value.status == 404 and "org 'soylent-eng'" in str(caught.value)
    assert query(db_url, f"select count(*) from {dataset_name('cyberdyne')}.repositories")[0][0] == 1


def test_backfill_window_loads_only_its_pull_requests_and_keeps_all_null_columns(
    sandbox: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    change = sandbox.touch_pull_requests("oscorp", 1)
    world = sandbox.world("oscorp")
    (new_pr,) = [pr for pr in world.pull_requests() if pr.id in change.new_pull_request_ids]
    assert new_pr.state == "open" and new_pr.merged_at is None
    repos = [new_pr.repo.name]
    source = github_source(
        sandbox.url,
        token_for("oscorp"),
        "oscorp-eng",
        repositories=repos,
        start_date=new_pr.updated_at,
        end_date=new_pr.updated_at + timedelta(seconds=1),
        retry_policy=FAST,
    )
    info = load_github("oscorp", db_url, source, pipelines_dir=str(tmp_path))
    assert row_counts(info)["pull_requests"] == 1
    schema = dataset_name("oscorp")
    # Every value of these columns is null in this load; the hinted columns exist all the same.
    assert query(db_url, f"select id, merged_at, closed_at, merge_commit_sha from {schema}.pull_requests") == [
        (new_pr.id, None, None, None)
    ]
    # A backfill window does not move the cursor: the next plain run loads everything.
    info = load(sandbox, db_url, "oscorp", tmp_path, repositories=repos)
    assert row_counts(info)["pull_requests"] == len(new_pr.repo.pulls)
    assert table_counts(db_url, "oscorp") == expected_counts(world, repos)
