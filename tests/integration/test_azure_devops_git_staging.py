"""The Azure DevOps Git staging models on a real load: dbt builds them (with their tests) and
their rows say what the sandbox's world says.

The tenant is created in ``control.tenants`` first: dbt finds raw schemas through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from connectors.azure_devops_git import RetryPolicy, azure_devops_git_source, load_azure_devops_git
from connectors.sandbox import SandboxServer
from connectors.sandbox.azure_common import pull_request_id
from connectors.sandbox.azure_git import payloads
from connectors.sandbox.github.world import PullRequest
from connectors.sandbox.tools import token_for
from pulse import control
from pulse.db import admin_engine
from pulse.settings import Settings
from tests.conftest import run_dbt

#: The world is a function of its day; this one has every verdict, dismissals included.
WORLD_DAY = datetime(2026, 11, 22, tzinfo=UTC)
TENANT = "azg_views"  # a world whose reviews show every verdict
VERDICTS = {10: "approved", 5: "approved_with_suggestions", -5: "waiting_for_author", -10: "changes_requested"}


@pytest.fixture(scope="module")
def loaded(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One tenant's pull requests loaded from a small sandbox, and the staging models built."""
    server = SandboxServer(host="127.0.0.1", port=0, seed=42, now=WORLD_DAY, scale=0.25).start()
    try:
        with admin_engine(settings).begin() as conn:
            control.add_tenant(conn, TENANT, "Azure Git dbt", actor="test")
        source = azure_devops_git_source(
            f"{server.url}/azure/{TENANT}-eng",
            {"token": token_for("azure", TENANT)},
            {"project": payloads.git_project(server.work_world(TENANT))},
            page_size=50,
            retry_policy=RetryPolicy(server_error_backoff=0.05),
        )
        load_azure_devops_git(TENANT, db_url, source, pipelines_dir=str(tmp_path_factory.mktemp("dlt")))
        run_dbt(["build", "--select", "staging.azure_devops_git"])
        yield server
    finally:
        server.stop()


def rows(db_url: str, model: str, columns: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(f"select {columns} from staging.{model} where tenant_id = %s", (TENANT,)).fetchall()


def key(number: int) -> str:
    return f"azure_devops_git:{number}"


def test_pull_requests_map_status_to_state_and_merge_time(loaded: SandboxServer, db_url: str) -> None:
    world = loaded.world(TENANT)
    got = {
        r[0]: r[1:]
        for r in rows(
            db_url,
            "stg_azure_devops_git__pull_requests",
            "pull_request_id, github_state, azure_status, opened_at, closed_at, merged_at, author_email, "
            "description, head_branch, is_draft, repository",
        )
    }
    project = payloads.git_project(loaded.work_world(TENANT))
    want = {
        key(pull_request_id(world, pr)): (
            "open" if pr.closed_at is None else "closed",
            payloads.status_of(pr),
            pr.created_at,
            pr.closed_at,
            pr.merged_at,  # completed → closedDate, which the world sets to the merge time
            pr.author.email,
            payloads.description_of(pr),
            pr.head_ref,
            pr.draft,
            f"{project}/{pr.repo.name}",
        )
        for pr in world.pull_requests()
    }
    assert got == want
    assert {v[1] for v in got.values()} == {"active", "completed", "abandoned"}
    assert any(len(v[6] or "") > 400 for v in got.values())  # whole descriptions, not the list's cut


def test_updated_at_is_the_latest_activity(loaded: SandboxServer, db_url: str) -> None:
    world = loaded.world(TENANT)
    got = dict(rows(db_url, "stg_azure_devops_git__pull_requests", "pull_request_id, updated_at"))
    for pr in world.pull_requests():
        moments: list[datetime] = [pr.created_at, *(c.committed_at for c in pr.commits)]
        if pr.closed_at is not None:
            moments.append(pr.closed_at)
        for vote in payloads.reviewer_votes(pr):
            moments += [m for m in (vote.voted_at, vote.reset_at) if m is not None]
            if vote.commented:
                moments.append(last_comment(pr, vote.user.login))
        assert got[key(pull_request_id(world, pr))] == max(moments)


def last_comment(pr: PullRequest, login: str) -> datetime:
    return max(
        r.submitted_at
        for r in pr.reviews
        if r.user.login == login and r.submitted_at is not None and (r.state == "COMMENTED" or r.body)
    )


def test_reviews_carry_the_verdict_and_the_time_of_the_vote(loaded: SandboxServer, db_url: str) -> None:
    world = loaded.world(TENANT)
    got = {
        r[0]: r[1:]
        for r in rows(
            db_url,
            "stg_azure_devops_git__reviews",
            "review_id, pull_request_id, reviewer_login, reviewer_email, verdict, submitted_at, vote",
        )
    }
    want: dict[str, tuple[Any, ...]] = {}
    for pr in world.pull_requests():
        number = pull_request_id(world, pr)
        for vote in payloads.reviewer_votes(pr):
            if vote.vote in VERDICTS:
                verdict, at = VERDICTS[vote.vote], vote.voted_at
            elif vote.reset_at is not None:
                verdict, at = "dismissed", vote.voted_at
            elif vote.commented:
                verdict, at = "commented", last_comment(pr, vote.user.login)
            else:
                continue  # asked, never acted: no review
            review = f"{key(number)}:{payloads.identity_guid(vote.user)}"
            want[review] = (key(number), vote.user.email, vote.user.email, verdict, at, vote.vote)
    assert got == want
    assert {v[3] for v in got.values()} == {*VERDICTS.values(), "dismissed", "commented"}
    asked_only = sum(
        1
        for pr in world.pull_requests()
        for v in payloads.reviewer_votes(pr)
        if v.vote == 0 and v.reset_at is None and not v.commented
    )
    assert asked_only > 0  # such reviewers exist in the raw table and are rightly left out


def test_work_item_links_and_commits(loaded: SandboxServer, db_url: str) -> None:
    world, work = loaded.world(TENANT), loaded.work_world(TENANT)
    numbers = {pr.id: pull_request_id(world, pr) for pr in world.pull_requests()}
    links = set(rows(db_url, "stg_azure_devops_git__pull_request_work_items", "pull_request_id, work_item_id"))
    assert links == {(key(numbers[pr_id]), str(item.id)) for item in work.items for pr_id in item.pull_request_ids}
    assert links
    commits = set(
        rows(
            db_url,
            "stg_azure_devops_git__commits",
            "pull_request_id, commit_sha, author_email, authored_at, author_login",
        )
    )
    assert commits == {
        (key(numbers[pr.id]), c.sha, c.author_email.lower(), c.authored_at, None)
        for pr in world.pull_requests()
        for c in pr.commits
    }
