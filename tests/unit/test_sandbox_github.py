"""The sandbox GitHub API over real HTTP, and the connector's HTTP client against it.

No database. Shapes are compared with real GitHub responses recorded in ``shared/fixtures``.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from connectors.github import (
    GitHubApiError,
    GitHubAuthError,
    GitHubRateLimitError,
    RetryPolicy,
    check_connection,
    github_source,
)
from connectors.github.helpers import GitHubClient
from connectors.sandbox import SandboxFaults, SandboxServer, github_world, token_for
from connectors.sandbox.github import payloads
from connectors.sandbox.github.api import link_header
from tests.shared_fixtures import recorded as recorded_dir

FAST = RetryPolicy(server_error_backoff=0.01, secondary_limit_wait=0.05, reset_margin=0.0, max_backoff=0.1)
DAY = datetime(2026, 3, 2, tzinfo=UTC)


def recorded(name: str) -> list[dict[str, Any]]:
    return json.loads((recorded_dir("github", "pygithub-replay") / name).read_text())["interactions"]  # type: ignore[no-any-return]


def recorded_item(csv_name: str) -> dict[str, Any]:
    csv.field_size_limit(10**8)
    with (recorded_dir("github", "devlake-raw") / csv_name).open(newline="") as handle:
        return json.loads(next(csv.DictReader(handle))["data"])  # type: ignore[no-any-return]


def get(sandbox: SandboxServer, path: str, tenant: str | None = "acme", **headers: str) -> requests.Response:
    if tenant is not None:
        headers.setdefault("Authorization", f"Bearer {token_for(tenant)}")
    return requests.get(sandbox.url + path, headers=headers, timeout=10)


def get_all(sandbox: SandboxServer, path: str, params: dict[str, Any], tenant: str = "acme") -> list[dict[str, Any]]:
    """Every item of a list, page after page through the connector's client (Link: rel="next"):
    a repository of a world's day may hold more pull requests than a page."""
    return [item for page in client(sandbox, tenant).paginate(path, params) for item in page]


def client(sandbox: SandboxServer, tenant: str, policy: RetryPolicy = FAST) -> GitHubClient:
    return GitHubClient(sandbox.url, token_for(tenant), source_name="gh-main", org=f"{tenant}-eng", policy=policy)


# -- Link header ------------------------------------------------------------------------


def test_link_header_has_githubs_format_and_order() -> None:
    url = "https://api.github.com/repositories/3544490/issues/1136/comments"
    query = [("per_page", "3")]
    # The recording: page 1 of 3, then page 2 of 3 (prev, next, last, first), then page 3.
    walk = recorded("PaginatedList.testCustomPerPageIteration.json")[2:]
    for page, interaction in enumerate(walk, start=1):
        assert link_header(url, query, page, 3) == interaction["response"]["headers"]["Link"]
    assert link_header(url, query, 1, 1) is None


def test_link_header_keeps_other_parameters_and_puts_page_last() -> None:
    header = link_header("http://h/r", [("state", "all"), ("page", "2"), ("per_page", "5")], 2, 4)
    assert header == (
        '<http://h/r?state=all&per_page=5&page=1>; rel="prev", '
        '<http://h/r?state=all&per_page=5&page=3>; rel="next", '
        '<http://h/r?state=all&per_page=5&page=4>; rel="last", '
        '<http://h/r?state=all&per_page=5&page=1>; rel="first"'
    )


def test_walking_links_visits_every_pull_request_once(sandbox: SandboxServer) -> None:
    world = sandbox.world("acme")
    repo = world.repos[0]
    url: str | None = f"{sandbox.url}/repos/{repo.full_name}/pulls?state=all&per_page=7"
    numbers: list[int] = []
    pages = 0
    while url:
        response = requests.get(url, headers={"Authorization": f"token {token_for('acme')}"}, timeout=10)
        assert response.status_code == 200
        numbers += [item["number"] for item in response.json()]
        pages += 1
        next_link = response.links.get("next")
        if next_link:
            # Like GitHub, links use the canonical /repositories/{id}/ form.
            assert f"/repositories/{repo.id}/pulls?" in next_link["url"]
        url = next_link["url"] if next_link else None
    assert sorted(numbers) == sorted(pr.number for pr in repo.pulls)
    assert len(numbers) == len(set(numbers))
    assert pages == -(-len(repo.pulls) // 7)


def test_client_paginate_follows_links_to_the_end(sandbox: SandboxServer) -> None:
    world = sandbox.world("acme")
    repo = world.repos[1]
    pages = list(client(sandbox, "acme").paginate(f"/repos/{repo.full_name}/pulls", {"state": "all", "per_page": 10}))
    assert [len(page) for page in pages[:-1]] == [10] * (len(pages) - 1)
    assert sum(len(page) for page in pages) == len(repo.pulls)


# -- determinism and shape ----------------------------------------------------------------


def test_world_is_a_pure_function_of_seed_tenant_and_day() -> None:
    first = github_world("acme", 42, DAY)
    again = github_world("acme", 42, DAY + timedelta(hours=15))  # same day
    api = "http://sandbox"
    assert [payloads.pull_request_payload(first, pr, api) for pr in first.pull_requests()] == [
        payloads.pull_request_payload(again, pr, api) for pr in again.pull_requests()
    ]
    assert first.counts() == again.counts()
    other_seed = github_world("acme", 43, DAY)
    other_tenant = github_world("globex", 42, DAY)
    assert [pr.id for pr in other_seed.pull_requests()] != [pr.id for pr in first.pull_requests()]
    assert other_tenant.org == "globex-eng"
    assert {pr.full_name.split("/")[0] for pr in other_tenant.pull_requests()} == {"globex-eng"}


def test_world_has_the_advertised_shape() -> None:
    for tenant in ("acme", "globex", "initech"):
        world = github_world(tenant, 42, DAY)
        pulls = list(world.pull_requests())
        people = [u for u in world.users if u.type == "User"]
        assert 3 <= len(world.repos) <= 4
        assert 8 <= len(people) <= 12
        assert len(world.teams) >= 2
        assert 150 <= len(pulls) <= 400
        assert all(DAY - timedelta(days=181) < pr.created_at < DAY for pr in pulls)
        assert all(pr.updated_at < DAY for pr in pulls)
        merged = [pr for pr in pulls if pr.merged_at]
        assert 0.7 <= len(merged) / len(pulls) <= 0.9
        assert any(pr.state == "closed" and not pr.merged_at for pr in pulls)
        assert any(pr.state == "open" for pr in pulls)
        assert any(pr.draft for pr in pulls)
        assert 0.04 <= sum(1 for pr in merged if not pr.reviews) / len(merged) <= 0.2
        states = {review.state for _, review in world.reviews()}
        assert {"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"} <= states
        # Reviewers are never the author; first reviews come hours after opening.
        assert all(review.user.login != pr.author.login for pr, review in world.reviews())
        hours = [
            (min(r.submitted_at for r in pr.reviews if r.submitted_at) - pr.created_at) for pr in pulls if pr.reviews
        ]
        assert 1 <= statistics.median(h.total_seconds() / 3600 for h in hours) <= 12
        assert all(1 <= len(pr.commits) <= 8 for pr in pulls)
        conclusions = {run.conclusion for _, run in world.head_check_runs()}
        assert {"success", "failure"} <= conclusions
        # Every event a pull request has happened before its updated_at.
        for pr in pulls:
            events = [pr.created_at, *(c.committed_at for c in pr.commits)]
            events += [r.submitted_at for r in pr.reviews if r.submitted_at]
            assert pr.updated_at >= max(events)
            assert (pr.merged_at is None) or (pr.closed_at == pr.merged_at)


def test_payload_keys_match_recorded_github_responses() -> None:
    world = github_world("acme", 42, DAY)
    pr = max(world.pull_requests(), key=lambda p: len(p.reviews))
    api = "http://sandbox"
    mine = payloads.pull_request_payload(world, pr, api)
    real = recorded_item("_raw_github_api_pull_requests.csv")
    assert set(mine) == set(real)
    assert set(mine["user"]) == set(real["user"])
    assert set(mine["head"]) == set(real["head"]) and set(mine["base"]) == set(real["base"])
    assert set(real["head"]["repo"]) <= set(mine["head"]["repo"])  # GitHub added fields since
    assert set(mine["_links"]) == set(real["_links"])
    assert set(payloads.review_payload(pr, pr.reviews[0], api)) == set(
        recorded_item("_raw_github_api_pull_request_reviews.csv")
    )
    commit, real_commit = (
        payloads.commit_payload(pr, pr.commits[0], api),
        recorded_item("_raw_github_api_pull_request_commits.csv"),
    )
    assert set(commit) == set(real_commit) and set(commit["commit"]) == set(real_commit["commit"])
    check_runs = recorded("CheckRun.testGetCheckRunsForRef.json")[1]["response"]["body"]
    run = payloads.check_run_payload(world, pr.repo, world.check_runs[pr.head_sha][0], api)
    assert set(run) == set(check_runs["check_runs"][0])
    repo = recorded("PaginatedList.testCustomPerPageIteration.json")[0]["response"]["body"]
    assert set(payloads.repository_payload(world, pr.repo, api, full=True)) == set(repo)


def test_responses_carry_githubs_headers_and_envelopes(sandbox: SandboxServer) -> None:
    world = sandbox.world("acme")
    pr = next(p for p in world.pull_requests() if p.state == "closed")
    first = get(sandbox, f"/repos/{pr.full_name}/commits/{pr.head_sha}/check-runs")
    second = get(sandbox, f"/repos/{pr.full_name}/commits/{pr.head_sha}/check-runs")
    for response in (first, second):
        assert response.status_code == 200
        for name in ("limit", "remaining", "reset", "used"):
            assert response.headers[f"X-RateLimit-{name}"].isdigit()
        assert response.headers["x-ratelimit-resource"] == "core"
        assert response.headers["x-github-api-version-selected"] == "2022-11-28"
    assert int(second.headers["x-ratelimit-used"]) == int(first.headers["x-ratelimit-used"]) + 1
    assert int(second.headers["x-ratelimit-remaining"]) == 5000 - int(second.headers["x-ratelimit-used"])
    body = second.json()
    assert body["total_count"] == len(world.check_runs[pr.head_sha]) == len(body["check_runs"])
    assert {run["head_sha"] for run in body["check_runs"]} == {pr.head_sha}
    unknown = get(sandbox, f"/repos/{pr.full_name}/commits/{'0' * 40}/check-runs")
    assert unknown.status_code == 422 and unknown.json()["message"].startswith("No commit found for SHA")


def test_pull_list_honours_state_sort_and_direction(sandbox: SandboxServer) -> None:
    world = sandbox.world("acme")
    repo = world.repos[0]
    pulls = f"/repos/{repo.full_name}/pulls"
    open_ones = get_all(sandbox, pulls, {"per_page": 100})  # default state: open
    assert {item["state"] for item in open_ones} <= {"open"}
    assert len(open_ones) == sum(1 for pr in repo.pulls if pr.state == "open")
    closed = get_all(sandbox, pulls, {"per_page": 100, "state": "closed"})
    assert {item["state"] for item in closed} == {"closed"}
    assert len(closed) == sum(1 for pr in repo.pulls if pr.state == "closed")
    every = {"per_page": 100, "state": "all"}
    newest_first = [i["updated_at"] for i in get_all(sandbox, pulls, {**every, "sort": "updated", "direction": "desc"})]
    assert len(newest_first) == len(repo.pulls)
    assert newest_first == sorted(newest_first, reverse=True)
    # GitHub's default direction is asc for every sort but created.
    oldest_first = [i["updated_at"] for i in get_all(sandbox, pulls, {**every, "sort": "updated"})]
    assert oldest_first == sorted(oldest_first)
    created_desc = [i["created_at"] for i in get_all(sandbox, pulls, every)]
    assert created_desc == sorted(created_desc, reverse=True)
    assert len(get(sandbox, f"/repos/{repo.full_name}/pulls?per_page=500&state=all").json()) == min(
        100, len(repo.pulls)
    )


# -- tenants and authentication -------------------------------------------------------


def test_token_decides_the_tenant_and_bad_tokens_get_401(sandbox: SandboxServer) -> None:
    bad = get(sandbox, "/orgs/acme-eng/repos", tenant=None, Authorization="Bearer ghp_not_a_sandbox_token")
    assert bad.status_code == 401
    assert bad.json() == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }
    assert get(sandbox, "/orgs/acme-eng/repos", tenant=None).json()["message"] == "Requires authentication"
    mine = get(sandbox, "/orgs/acme-eng/repos", tenant=None, Authorization=f"token {token_for('acme')}")
    assert mine.status_code == 200
    assert {repo["owner"]["login"] for repo in mine.json()} == {"acme-eng"}
    # Another tenant's org and repositories do not exist for this token.
    assert get(sandbox, "/orgs/globex-eng/repos").status_code == 404
    globex_repo = sandbox.world("globex").repos[0]
    assert get(sandbox, f"/repos/{globex_repo.full_name}").status_code == 404
    assert get(sandbox, f"/repositories/{globex_repo.id}/pulls").status_code == 404
    assert get(sandbox, "/repos/acme-eng/no-such-repo").json()["message"] == "Not Found"


def test_client_raises_auth_error_naming_source_and_org_without_the_token(sandbox: SandboxServer) -> None:
    token = "ghp_SECRET_value_123"
    bad = GitHubClient(sandbox.url, token, source_name="gh-main", org="acme-eng", policy=FAST)
    with pytest.raises(GitHubAuthError) as caught:
        list(bad.paginate("/orgs/acme-eng/repos"))
    message = str(caught.value)
    assert "source 'gh-main'" in message and "org 'acme-eng'" in message
    assert "401 Bad credentials" in message and "pulse source add/update" in message
    assert token not in message and token not in repr(caught.value)


def test_building_the_source_makes_no_request(sandbox: SandboxServer) -> None:
    before = len(sandbox.requests)
    source = github_source(sandbox.url, token_for("acme"), "acme-eng")
    assert set(source.resources) == {"repositories", "pull_requests", "reviews", "commits", "check_runs"}
    assert len(sandbox.requests) == before


# -- faults and the client's retries -----------------------------------------------------


def test_secondary_rate_limit_waits_for_retry_after(sandbox: SandboxServer, sandbox_faults: SandboxFaults) -> None:
    sandbox_faults.secondary_rate_limit_once = 1
    raw = get(sandbox, "/orgs/acme-eng/repos")
    assert raw.status_code == 403 and raw.headers["Retry-After"] == "1"
    assert "secondary rate limit" in raw.json()["message"]
    assert raw.headers["x-ratelimit-remaining"] != "0"

    sandbox_faults.secondary_rate_limit_once = 1
    mark = len(sandbox.requests)
    started = time.monotonic()
    pages = list(client(sandbox, "acme").paginate("/orgs/acme-eng/repos"))
    assert time.monotonic() - started >= 1.0
    assert sum(len(page) for page in pages) == len(sandbox.world("acme").repos)
    assert [(r.status, r.fault) for r in sandbox.requests_since(mark)] == [
        (403, "secondary_rate_limit_once"),
        (200, None),
    ]


def test_primary_rate_limit_waits_until_reset(sandbox: SandboxServer, sandbox_faults: SandboxFaults) -> None:
    sandbox_faults.primary_rate_limit_once = 1
    raw = get(sandbox, "/orgs/acme-eng/repos")
    assert raw.status_code == 403 and raw.headers["x-ratelimit-remaining"] == "0"
    assert -0.5 < int(raw.headers["x-ratelimit-reset"]) - time.time() <= 1.0
    assert raw.json()["message"].startswith("API rate limit exceeded")

    sandbox_faults.primary_rate_limit_once = 1
    mark = len(sandbox.requests)
    pages = list(client(sandbox, "acme").paginate("/orgs/acme-eng/repos"))
    records = sandbox.requests_since(mark)
    assert [r.status for r in records] == [403, 200]
    assert sum(len(page) for page in pages) == len(sandbox.world("acme").repos)


def test_primary_rate_limit_beyond_the_allowed_wait_fails_clearly(
    sandbox: SandboxServer, sandbox_faults: SandboxFaults
) -> None:
    sandbox_faults.primary_rate_limit_once = 1
    impatient = RetryPolicy(max_rate_limit_wait=0.0, reset_margin=5.0)
    with pytest.raises(GitHubRateLimitError) as caught:
        list(client(sandbox, "acme", impatient).paginate("/orgs/acme-eng/repos"))
    assert "longer than the allowed 0 s" in str(caught.value)
    assert caught.value.status == 403


def test_secondary_limit_without_retry_after_backs_off_exponentially(
    sandbox: SandboxServer, sandbox_faults: SandboxFaults
) -> None:
    sandbox_faults.secondary_rate_limit_no_retry_after = 2
    waits: list[float] = []
    gh = client(sandbox, "acme")
    adapter = gh._rest.session.get_adapter(sandbox.url)
    adapter._sleep = waits.append  # type: ignore[attr-defined]
    pages = list(gh.paginate("/orgs/acme-eng/repos"))
    assert waits == [0.05, 0.1]
    assert pages and len(pages[0]) == len(sandbox.world("acme").repos)


def test_server_errors_are_retried_then_reported_with_status_and_url(
    sandbox: SandboxServer, sandbox_faults: SandboxFaults
) -> None:
    sandbox_faults.server_errors = 2
    repo = sandbox.world("acme").repos[0]
    pages = list(client(sandbox, "acme").paginate(f"/repos/{repo.full_name}/pulls", {"state": "all", "per_page": 100}))
    assert sum(len(p) for p in pages) == len(repo.pulls)
    assert sandbox_faults.server_errors == 0

    sandbox_faults.server_errors = 50
    with pytest.raises(GitHubApiError) as caught:
        list(client(sandbox, "acme").paginate("/orgs/acme-eng/repos"))
    assert caught.value.status == 500
    assert caught.value.url == f"{sandbox.url}/orgs/acme-eng/repos"
    assert "500" in str(caught.value) and "after 5 attempts" in str(caught.value)
    assert sandbox_faults.server_errors == 45
    assert token_for("acme") not in str(caught.value)


def test_faults_can_target_a_path(sandbox: SandboxServer, sandbox_faults: SandboxFaults) -> None:
    sandbox_faults.server_errors = 1
    sandbox_faults.path_contains = "/reviews"
    assert get(sandbox, "/orgs/acme-eng/repos").status_code == 200
    pr = next(sandbox.world("acme").pull_requests())
    assert get(sandbox, f"/repos/{pr.full_name}/pulls/{pr.number}/reviews").status_code == 500
    assert get(sandbox, f"/repos/{pr.full_name}/pulls/{pr.number}/reviews").status_code == 200


def test_malformed_fault_breaks_exactly_one_listed_pull_request(
    sandbox: SandboxServer, sandbox_faults: SandboxFaults
) -> None:
    world = sandbox.world("acme")
    target = world.malformed_target()
    sandbox_faults.malformed_pull_request = True
    items = get_all(sandbox, f"/repos/{target.full_name}/pulls", {"state": "all", "per_page": 100})
    broken = [item for item in items if "number" not in item]
    assert [item["id"] for item in broken] == [target.id]
    assert broken[0]["created_at"] == "yesterday, around lunch"
    assert all(item["created_at"].endswith("Z") for item in items if item["id"] != target.id)


def test_touch_moves_updated_at_past_everything_and_adds_a_pull_request() -> None:
    server = SandboxServer(now=DAY, scale=0.2)
    before = server.world("hooli").counts()
    latest = max(pr.updated_at for pr in server.world("hooli").pull_requests())
    result = server.touch_pull_requests("hooli", 3)
    world = server.world("hooli")
    changed = [pr for pr in world.pull_requests() if pr.id in result.changed_pull_request_ids]
    assert len(changed) == 4 and all(pr.updated_at > latest for pr in changed)
    assert world.counts()["pull_requests"] == before["pull_requests"] + 1
    assert world.counts()["reviews"] == before["reviews"] + len(result.new_review_ids)
    # The same touches on a fresh server give the same world.
    twin = SandboxServer(now=DAY, scale=0.2)
    assert twin.touch_pull_requests("hooli", 3) == result
    # advance() reaches tenants that appear later, too.
    server.advance(days=1)
    late = SandboxServer(now=DAY, scale=0.2)
    late.touch_pull_requests("hooli", 3)
    late.advance(days=1)
    assert [pr.updated_at for pr in late.world("hooli").pull_requests()] == [
        pr.updated_at for pr in server.world("hooli").pull_requests()
    ]
    assert server.world("newco").touches == 1


def test_check_connection_says_what_is_wrong_quickly(sandbox: SandboxServer) -> None:
    ok, message = check_connection(sandbox.url, token_for("acme"), "acme-eng")
    assert ok and message == f"ok: org 'acme-eng' readable at {sandbox.url}"
    ok, message = check_connection(sandbox.url, token_for("acme"), "acme-eng", ["api", "nope"])
    assert not ok and "404" in message and "org 'acme-eng'" in message
    ok, message = check_connection(sandbox.url, "ghp_bad_token_xyz", "acme-eng", source_name="gh")
    assert not ok and "source 'gh' was rejected (401 Bad credentials)" in message
    assert "ghp_bad_token_xyz" not in message
    started = time.monotonic()
    ok, message = check_connection("http://127.0.0.1:9", token_for("acme"), "acme-eng")
    assert not ok and "unreachable" in message and token_for("acme") not in message
    assert time.monotonic() - started < 5
