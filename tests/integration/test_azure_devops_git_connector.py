"""The Azure DevOps Git connector against the sandbox over HTTP and the session's PostgreSQL.

A sandbox of its own (small worlds: ``scale=0.25``, a few dozen pull requests per tenant)
keeps the loads quick; each test uses a tenant of its own, so worlds changed by touches and
datasets do not interfere. Expected rows come from the sandbox's world, rendered through the
simulator's own mapping (``connectors.sandbox.azure_git.payloads``): the source of truth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dlt.common.pipeline import LoadInfo

from connectors.azure_devops_git import (
    TABLES,
    AzureDevOpsGitApiError,
    AzureDevOpsGitAuthError,
    RetryPolicy,
    azure_devops_git_source,
    check_connection,
    dataset_name,
    discover_fields,
    load_azure_devops_git,
    row_counts,
)
from connectors.sandbox import SandboxServer
from connectors.sandbox.azure_common import pull_request_id, repository_guid
from connectors.sandbox.azure_git import payloads
from connectors.sandbox.github.world import GitHubWorld, PullRequest
from connectors.sandbox.tools import token_for
from pulse.fieldmap import CANONICAL_NAMES, propose
from tests.conftest import free_port

DATA_TABLES = ("repositories", "pull_requests", "reviewers", "commits", "pull_request_work_items")
FAST = RetryPolicy(server_error_backoff=0.05, secondary_limit_wait=0.1, reset_margin=0.1, max_backoff=0.2)
PAGE = 3  # small pages: several pull request pages per repository, continuation tokens on commits

#: The world is a function of its day; on this one an advance completes an active pull request.
WORLD_DAY = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture(scope="module")
def azure() -> Iterator[SandboxServer]:
    server = SandboxServer(host="127.0.0.1", port=0, seed=42, now=WORLD_DAY, scale=0.25).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def faults(azure: SandboxServer) -> Iterator[Any]:
    azure.faults.reset()
    try:
        yield azure.faults
    finally:
        azure.faults.reset()


def base_url(server: SandboxServer, tenant: str) -> str:
    return f"{server.url}/azure/{tenant}-eng"


def project_of(server: SandboxServer, tenant: str) -> str:
    return payloads.git_project(server.work_world(tenant))


def load(
    server: SandboxServer,
    db_url: str,
    tenant: str,
    pipelines_dir: Path,
    *,
    repositories: list[str] | None = None,
    token: str | None = None,
    policy: RetryPolicy = FAST,
    **window: Any,
) -> LoadInfo:
    config: dict[str, Any] = {"project": project_of(server, tenant)}
    if repositories:
        config["repositories"] = ",".join(repositories)
    source = azure_devops_git_source(
        base_url(server, tenant),
        {"token": token or token_for("azure", tenant)},
        config,
        page_size=PAGE,
        retry_policy=policy,
        **window,
    )
    return load_azure_devops_git(tenant, db_url, source, pipelines_dir=str(pipelines_dir))


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def table_counts(db_url: str, tenant: str) -> dict[str, int]:
    schema = dataset_name(tenant)
    existing = {
        row[0]
        for row in query(db_url, "select table_name from information_schema.tables where table_schema = %s", schema)
    }
    return {
        table: query(db_url, f'select count(*) from "{schema}"."{table}"')[0][0] if table in existing else 0
        for table in DATA_TABLES
    }


@dataclass
class Expected:
    """What the raw tables must hold for some of a tenant's pull requests, from the world."""

    keys: dict[str, set[tuple[Any, ...]]]

    @property
    def counts(self) -> dict[str, int]:
        return {table: len(keys) for table, keys in self.keys.items()}


def expected(server: SandboxServer, tenant: str, pulls: list[PullRequest], repo_names: list[str]) -> Expected:
    world, work = server.world(tenant), server.work_world(tenant)
    repos = [r for r in world.repos if r.name in repo_names]
    keys: dict[str, set[tuple[Any, ...]]] = {
        "repositories": {(repository_guid(r.id),) for r in repos},
        "pull_requests": {(pull_request_id(world, pr),) for pr in pulls},
        "reviewers": {
            (pull_request_id(world, pr), payloads.identity_guid(v.user))
            for pr in pulls
            for v in payloads.reviewer_votes(pr)
        },
        "commits": {(pull_request_id(world, pr), c.sha) for pr in pulls for c in pr.commits},
        "pull_request_work_items": {
            (pull_request_id(world, pr), item_id) for pr in pulls for item_id in payloads.linked_work_item_ids(work, pr)
        },
    }
    return Expected(keys)


def expected_all(server: SandboxServer, tenant: str, repo_names: list[str] | None = None) -> Expected:
    world = server.world(tenant)
    names = repo_names or [r.name for r in world.repos]
    pulls = [pr for r in world.repos if r.name in names for pr in r.pulls]
    return expected(server, tenant, pulls, names)


def stored_keys(db_url: str, tenant: str) -> dict[str, set[tuple[Any, ...]]]:
    schema = dataset_name(tenant)
    from connectors.azure_devops_git import PRIMARY_KEYS

    out: dict[str, set[tuple[Any, ...]]] = {}
    for table in DATA_TABLES:
        columns = ", ".join(PRIMARY_KEYS[table])
        out[table] = set(query(db_url, f"select {columns} from {schema}.{table}"))
    return out


def checksum(keys: set[tuple[Any, ...]]) -> str:
    return hashlib.sha256("\n".join(sorted(repr(k) for k in keys)).encode()).hexdigest()


def requests_to(server: SandboxServer, mark: int, part: str) -> list[str]:
    return [r.path for r in server.requests_since(mark) if part in r.path.lower()]


def test_full_load_lands_the_world_with_values(azure: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "azg_full"
    world = azure.world(tenant)
    want = expected_all(azure, tenant)
    mark = len(azure.requests)
    info = load(azure, db_url, tenant, tmp_path)
    assert not info.has_failed_jobs
    assert row_counts(info) == want.counts
    assert table_counts(db_url, tenant) == want.counts
    stored = stored_keys(db_url, tenant)
    for table in DATA_TABLES:
        assert checksum(stored[table]) == checksum(want.keys[table]), table

    # Paging: every repository's list walked with $top=3 until a short page.
    lists = requests_to(azure, mark, "/pullrequests?")
    for repo in world.repos:
        guid = repository_guid(repo.id)
        skips = [p for p in lists if guid in p]
        assert len(skips) == len(repo.pulls) // PAGE + 1
        assert all("searchCriteria.status=all" in p and "%24top=3" in p for p in skips)
    # Commits continue with the x-ms-continuationtoken header.
    assert any("continuationToken=" in p for p in requests_to(azure, mark, "/commits"))
    # Only descriptions cut at 400 characters are read again, whole.
    cut = [pr for pr in world.pull_requests() if len(payloads.description_of(pr) or "") >= 400]
    singles = [p for p in requests_to(azure, mark, "/pullrequests/") if p.split("?")[0].rstrip("/")[-1].isdigit()]
    assert len(singles) == len(cut) > 0

    schema = dataset_name(tenant)
    # One pull request of each status, compared field by field with the world.
    for status in ("active", "completed", "abandoned"):
        pr = next(p for p in world.pull_requests() if payloads.status_of(p) == status)
        number = pull_request_id(world, pr)
        row = query(
            db_url,
            f"select status, title, description, author_email, created_at, closed_at, is_draft, source_ref,"
            f" target_ref, last_merge_source_commit, last_merge_commit, repository_name, jsonb_typeof(payload)"
            f" from {schema}.pull_requests where id = %s",
            number,
        )[0]
        if status == "active":
            assert row[10] is not None and row[10] != pr.head_sha  # the test merge of an active one
        assert row == (
            status,
            pr.title,
            payloads.description_of(pr),
            pr.author.email,
            pr.created_at,
            pr.closed_at,
            pr.draft,
            pr.head_ref,
            pr.base_ref,
            pr.head_sha,
            {"completed": pr.merge_commit_sha, "abandoned": None}.get(status, row[10]),
            pr.repo.name,
            "object",
        )
    long_pr = cut[0]
    assert query(db_url, f"select length(description) from {schema}.pull_requests where id = %s",
                 pull_request_id(world, long_pr))[0][0] == len(payloads.description_of(long_pr) or "")  # fmt: skip

    # Reviewers: votes and the time each was cast, from the threads.
    rows = query(
        db_url,
        f"select pull_request_id, reviewer_id, vote, voted_at, vote_reset_at, comment_count > 0, is_required"
        f" from {schema}.reviewers",
    )
    got = {(r[0], r[1]): r[2:] for r in rows}
    for pr in world.pull_requests():
        for v in payloads.reviewer_votes(pr):
            key = (pull_request_id(world, pr), payloads.identity_guid(v.user))
            assert got[key] == (v.vote, v.voted_at, v.reset_at, v.commented, v.is_required)
    assert {r[2] for r in rows} >= {10, -10, 0}
    # Commits and linked work items of the pull request with the most commits.
    pr = max(world.pull_requests(), key=lambda p: len(p.commits))
    commits = query(
        db_url,
        f"select commit_id, author_email, authored_at, committed_at from {schema}.commits where pull_request_id = %s",
        pull_request_id(world, pr),
    )
    assert sorted(commits) == sorted((c.sha, c.author_email, c.authored_at, c.committed_at) for c in pr.commits)
    linked = query(db_url, f"select pull_request_id, work_item_id from {schema}.pull_request_work_items")
    work = azure.work_world(tenant)
    assert set(linked) == {
        (pull_request_id(world, p), i.id)
        for i in work.items
        for p in world.pull_requests()
        if p.id in i.pull_request_ids
    }
    assert len(linked) > 0


def test_raw_tables_have_the_contract_columns(azure: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "azg_full"
    # A second run from an empty pipelines dir resumes from the destination's state: nothing new.
    mark = len(azure.requests)
    info = load(azure, db_url, tenant, tmp_path / "again")
    assert row_counts(info).get("pull_requests", 0) == 0
    assert requests_to(azure, mark, "/threads") == requests_to(azure, mark, "/commits") == []
    rows = query(
        db_url,
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = %s and column_name not like '\\_dlt%%'",
        dataset_name(tenant),
    )
    columns: dict[str, set[str]] = {}
    types: dict[tuple[str, str], str] = {}
    for table, column, data_type in rows:
        columns.setdefault(table, set()).add(column)
        types[(table, column)] = data_type
    for table in DATA_TABLES:
        assert columns[table] == set(TABLES[table]), table
    assert types[("pull_requests", "created_at")] == "timestamp with time zone"
    assert types[("pull_requests", "id")] == "bigint"
    assert types[("reviewers", "voted_at")] == "timestamp with time zone"
    assert types[("pull_requests", "payload")] == "jsonb"


def snapshot(world: GitHubWorld) -> dict[int, tuple[Any, ...]]:
    """What Azure DevOps shows of each pull request in a list: status, close, source commit, votes."""
    return {
        pr.id: (
            payloads.status_of(pr),
            pr.closed_at,
            pr.head_sha,
            pr.draft,
            [(v.user.login, v.vote, v.is_required) for v in payloads.reviewer_votes(pr)],
        )
        for pr in world.pull_requests()
    }


def test_incremental_rerun_fetches_only_what_changed(azure: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "azg_touch"
    world = azure.world(tenant)
    first = load(azure, db_url, tenant, tmp_path / "first")
    assert row_counts(first) == expected_all(azure, tenant).counts

    # Work items moving on Boards change no pull request: nothing is read again.
    azure.advance_work_items(tenant, 3)
    mark = len(azure.requests)
    quiet = load(azure, db_url, tenant, tmp_path / "first")
    assert row_counts(quiet).get("pull_requests", 0) == 0
    assert requests_to(azure, mark, "/threads") == requests_to(azure, mark, "/commits") == []

    # Two rounds of activity: merges, a push with a review comment, new pull requests, and late
    # comments on closed ones (which change nothing Azure DevOps shows: votes freeze on closing).
    before = snapshot(world)
    touched: set[int] = set()
    for n in (3, 8):
        touched |= set(azure.touch_pull_requests(tenant, n).changed_pull_request_ids)
    after = snapshot(world)
    changed = [pr for pr in world.pull_requests() if before.get(pr.id) != after[pr.id]]
    statuses = {(before[pr.id][0] if pr.id in before else "new", after[pr.id][0]) for pr in changed}
    assert {("active", "completed"), ("new", "active")} <= statuses
    assert any(before.get(pr.id, ("",))[0] == after[pr.id][0] == "active" for pr in changed)  # a push
    removed = [
        pr for pr in changed if pr.id in before and {r[0] for r in before[pr.id][4]} - {r[0] for r in after[pr.id][4]}
    ]
    assert removed, "a merge took a requested reviewer who never voted off a pull request"
    quiet_ids = touched - {pr.id for pr in changed}
    assert quiet_ids, "some touches only commented on closed pull requests"

    mark = len(azure.requests)
    second = load(azure, db_url, tenant, tmp_path / "wiped")  # the state comes back from the destination
    extracted = row_counts(second)
    want = expected(azure, tenant, changed, [r.name for r in world.repos])
    assert extracted["pull_requests"] == len(changed)
    for table in ("reviewers", "commits", "pull_request_work_items"):
        assert extracted.get(table, 0) == want.counts[table], table
    # Children are read for the changed pull requests only (threads: those with reviewers).
    numbers = {str(pull_request_id(world, pr)) for pr in changed}

    def numbers_in(paths: list[str]) -> set[str]:
        return {p.split("/pullRequests/")[1].split("/")[0] for p in paths}

    assert numbers_in(requests_to(azure, mark, "/workitems")) == numbers
    assert len(requests_to(azure, mark, "/workitems")) == len(changed)
    with_reviewers = {str(pull_request_id(world, pr)) for pr in changed if payloads.reviewer_votes(pr)}
    assert numbers_in(requests_to(azure, mark, "/threads")) == with_reviewers
    # Totals equal the world (reviewers no longer on a pull request are gone); no duplicates.
    whole = expected_all(azure, tenant)
    assert table_counts(db_url, tenant) == whole.counts
    stored = stored_keys(db_url, tenant)
    for table in DATA_TABLES:
        assert checksum(stored[table]) == checksum(whole.keys[table]), table
    schema = dataset_name(tenant)
    merged = next(pr for pr in changed if pr.id in before and after[pr.id][0] == "completed")
    assert query(db_url, f"select status, closed_at from {schema}.pull_requests where id = %s",
                 pull_request_id(world, merged)) == [("completed", merged.closed_at)]  # fmt: skip

    third = load(azure, db_url, tenant, tmp_path / "wiped")
    assert row_counts(third).get("pull_requests", 0) == 0


def test_throttling_and_server_errors_are_retried(
    azure: SandboxServer, db_url: str, tmp_path: Path, faults: Any
) -> None:
    tenant = "azg_retry"
    repo = azure.world(tenant).repos[0].name
    faults.too_many_requests = 1
    faults.server_errors = 2
    faults.path_contains = "/threads"
    mark = len(azure.requests)
    load(azure, db_url, tenant, tmp_path, repositories=[repo])
    # (threads are read by parallel transformers: the faulted requests may be recorded in any order)
    served = sorted((r.status, r.fault) for r in azure.requests_since(mark) if r.fault)
    assert served == [(429, "too_many_requests"), (500, "server_errors"), (500, "server_errors")]
    assert table_counts(db_url, tenant) == expected_all(azure, tenant, [repo]).counts


def test_expired_token_fails_clearly_and_loses_nothing(
    azure: SandboxServer, db_url: str, tmp_path: Path, faults: Any
) -> None:
    tenant = "azg_expired"
    world = azure.world(tenant)
    repos = [r.name for r in world.repos]
    load(azure, db_url, tenant, tmp_path)
    before = stored_keys(db_url, tenant)
    azure.touch_pull_requests(tenant, 2)
    faults.expired_token = 1
    faults.path_contains = "/commits"  # the PAT expires in the middle of the load
    with pytest.raises(AzureDevOpsGitAuthError) as caught:
        load(azure, db_url, tenant, tmp_path)
    message = str(caught.value)
    assert "has expired" in message and "Access Denied: The Personal Access Token used has expired." in message
    assert "pulse source update" in message and token_for("azure", tenant) not in message
    assert stored_keys(db_url, tenant) == before  # the failed run landed nothing
    faults.reset()
    load(azure, db_url, tenant, tmp_path)  # the state did not move: the changes come now
    assert table_counts(db_url, tenant) == expected_all(azure, tenant, repos).counts


def test_malformed_pull_request_is_quarantined_and_the_rest_loads(
    azure: SandboxServer, db_url: str, tmp_path: Path, faults: Any
) -> None:
    tenant = "azg_broken"
    world = azure.world(tenant)
    target = world.malformed_target()
    faults.malformed_pull_request = True
    load(azure, db_url, tenant, tmp_path, repositories=[target.repo.name])
    schema = dataset_name(tenant)
    rows = query(db_url, f"select resource, item_key, reason, payload from {schema}.quarantine")
    assert len(rows) == 1
    resource, key, reason, payload = rows[0]
    assert resource == "pull_requests"
    project = payloads.git_project(azure.work_world(tenant))
    assert key == f"{project}/{target.repo.name} codeReviewId={pull_request_id(world, target)}"
    assert "missing required field 'pullRequestId'" in reason
    assert "'creationDate' is not an ISO 8601 timestamp" in reason
    assert payload["creationDate"] == "yesterday, around lunch"
    others = [pr for pr in target.repo.pulls if pr.id != target.id]
    assert table_counts(db_url, tenant) == expected(azure, tenant, others, [target.repo.name]).counts


def test_failure_midway_then_rerun_loses_and_duplicates_nothing(
    azure: SandboxServer, db_url: str, tmp_path: Path, faults: Any
) -> None:
    tenant = "azg_killed"
    world = azure.world(tenant)
    faults.server_errors = 10_000
    faults.path_contains = "/workitems"
    with pytest.raises(AzureDevOpsGitApiError) as caught:
        load(azure, db_url, tenant, tmp_path, policy=RetryPolicy(max_attempts=2, server_error_backoff=0.01))
    assert caught.value.status == 500 and "/workitems" in caught.value.url
    assert "after 2 attempts" in str(caught.value)
    assert table_counts(db_url, tenant) == dict.fromkeys(DATA_TABLES, 0)
    faults.reset()
    load(azure, db_url, tenant, tmp_path)
    load(azure, db_url, tenant, tmp_path)  # and once more: merge keys keep it exact
    want = expected_all(azure, tenant)
    stored = stored_keys(db_url, tenant)
    assert table_counts(db_url, tenant) == want.counts
    for table in DATA_TABLES:
        assert checksum(stored[table]) == checksum(want.keys[table]), table
    assert len(world.repos) == want.counts["repositories"]


def test_backfill_window_loads_only_its_pull_requests_and_keeps_the_state(
    azure: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    tenant = "azg_window"
    world = azure.world(tenant)
    repo = max(world.repos, key=lambda r: len(r.pulls))
    ordered = sorted(repo.pulls, key=lambda p: p.created_at)
    start, end = ordered[2].created_at, ordered[6].created_at
    inside = [pr for pr in repo.pulls if start <= pr.created_at < end]
    info = load(azure, db_url, tenant, tmp_path, repositories=[repo.name], start_date=start, end_date=end)
    assert row_counts(info)["pull_requests"] == len(inside) == 4
    assert table_counts(db_url, tenant) == expected(azure, tenant, inside, [repo.name]).counts
    # The window moved no cursor and stored no state: the next plain run loads everything.
    info = load(azure, db_url, tenant, tmp_path, repositories=[repo.name])
    assert row_counts(info)["pull_requests"] == len(repo.pulls)
    assert table_counts(db_url, tenant) == expected_all(azure, tenant, [repo.name]).counts
    # And a window after that leaves the incremental state alone too.
    load(azure, db_url, tenant, tmp_path, repositories=[repo.name], start_date=start, end_date=end)
    change = azure.touch_pull_requests(tenant, 1)
    mark = len(azure.requests)
    info = load(azure, db_url, tenant, tmp_path, repositories=[repo.name])
    touched_here = [pr for pr in repo.pulls if pr.id in change.changed_pull_request_ids]
    assert row_counts(info).get("pull_requests", 0) == len(touched_here)
    assert len(requests_to(azure, mark, "/workitems")) == len(touched_here)
    assert start - timedelta(seconds=1) < end


def test_check_connection_says_what_failed(azure: SandboxServer) -> None:
    tenant = "azg_check"
    world = azure.world(tenant)
    project = project_of(azure, tenant)
    good = {"token": token_for("azure", tenant)}
    ok, message = check_connection(base_url(azure, tenant), good, {"project": project})
    names = ", ".join(sorted(r.name for r in world.repos))
    assert ok and message == (
        f"ok: {len(world.repos)} repositories of project '{project}' of organisation '{tenant}-eng' at "
        f"{base_url(azure, tenant)} readable ({names})"
    )
    ok, message = check_connection(
        base_url(azure, tenant), good, {"project": project, "repositories": world.repos[0].name}
    )
    assert ok and f"({world.repos[0].name})" in message

    ok, message = check_connection(f"http://127.0.0.1:{free_port()}/{tenant}-eng", good, {"project": project})
    assert not ok and "is unreachable" in message and "check the base URL" in message

    bad = {"token": "ado_not_a_real_pat"}
    ok, message = check_connection(base_url(azure, tenant), bad, {"project": project})
    assert not ok and "was rejected by organisation" in message and "VS30063" in message
    assert "ado_not_a_real_pat" not in message

    noperm = {"token": token_for("azure", tenant, noperm=True)}
    ok, message = check_connection(base_url(azure, tenant), noperm, {"project": project})
    assert not ok and "may not read" in message and "TF400813" in message and "Code (Read)" in message

    ok, message = check_connection(base_url(azure, tenant), good, {"project": "NOPE"})
    assert not ok and "TF200016: The following project does not exist: NOPE" in message
    assert "check the 'project'" in message

    ok, message = check_connection(base_url(azure, tenant), good, {"project": project, "repositories": "ghost"})
    assert not ok and "TF401019" in message and "ghost" in message and "check the 'repositories'" in message

    ok, message = check_connection(f"{azure.url}/azure/other-eng", good, {"project": project})
    assert not ok and "401" in message


def test_discovery_maps_every_canonical_field(azure: SandboxServer) -> None:
    tenant = "azg_check"
    candidates = discover_fields(
        base_url(azure, tenant), {"token": token_for("azure", tenant)}, {"project": project_of(azure, tenant)}
    )
    proposal = propose(candidates)
    assert proposal.missing == []
    assert set(proposal.mappings) == set(CANONICAL_NAMES)
    assert proposal.mappings["story_points"].field_id == "Microsoft.VSTS.Scheduling.StoryPoints"
    assert proposal.mappings["story_points"].method == "schema"
    assert proposal.mappings["sprint"].field_id == "System.IterationPath"
    by_id = {c.id: c for c in candidates}
    assert by_id["Microsoft.VSTS.Scheduling.StoryPoints"].type == "number"
    assert by_id[proposal.mappings["dmt_unit_test_status"].field_id].type == "option"
    assert by_id[proposal.mappings["dmt_ac_quality"].field_id].options == ("Incomplete", "Testable", "Final")
    assert by_id[proposal.mappings["dmt_exception_approver"].field_id].type == "user"
