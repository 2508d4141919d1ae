"""The sandbox's Azure DevOps Git simulator over HTTP: shapes, paging, auth, faults, limits.

Expected values come from the tenant's worlds (``server.world``, ``server.work_world``) and
the simulator's mapping of them (``connectors.sandbox.azure_git.payloads``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from connectors.sandbox import SandboxFaults, SandboxServer
from connectors.sandbox.azure_common import project_guid, pull_request_id, repository_guid
from connectors.sandbox.azure_git import payloads
from connectors.sandbox.github.world import PullRequest, Repository
from connectors.sandbox.tools import token_for

TENANT = "azg_unit"


def git(sandbox: SandboxServer, path: str = "", *, tenant: str = TENANT, project: str | None = None) -> str:
    project = project or payloads.git_project(sandbox.work_world(tenant))
    return f"{sandbox.url}/azure/{tenant}-eng/{project}/_apis/git{path}"


def get(url: str, token: str | None = None, auth: str = "basic", **params: Any) -> requests.Response:
    """GET ``url`` with the PAT as Basic (``auth="basic"``) or Bearer, and ``params`` as the query."""
    headers: dict[str, str] = {}
    basic = None
    if token is not None and auth == "basic":
        basic = ("", token)
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(url, params={"api-version": "7.1", **params}, auth=basic, headers=headers, timeout=10)


def ok(url: str, **params: Any) -> Any:
    response = get(url, token_for("azure", TENANT), **params)
    assert response.status_code == 200, response.text
    return response.json()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def busiest(sandbox: SandboxServer) -> Repository:
    return max(sandbox.world(TENANT).repos, key=lambda r: len(r.pulls))


def pulls_url(sandbox: SandboxServer, repo: Repository) -> str:
    return git(sandbox, f"/repositories/{repository_guid(repo.id)}/pullrequests")


def test_repositories_live_in_the_first_planning_project(sandbox: SandboxServer) -> None:
    world, work = sandbox.world(TENANT), sandbox.work_world(TENANT)
    project = payloads.git_project(work)
    assert project == work.projects[0].key
    body = ok(git(sandbox, "/repositories"))
    assert body["count"] == len(body["value"]) == len(world.repos)
    assert {r["name"]: r["id"] for r in body["value"]} == {r.name: repository_guid(r.id) for r in world.repos}
    assert {r["project"]["id"] for r in body["value"]} == {project_guid(TENANT, project)}
    assert all(r["defaultBranch"] == "refs/heads/main" for r in body["value"])
    # The project by its GUID, and the organisation as a whole, list the same repositories.
    assert ok(git(sandbox, "/repositories", project=project_guid(TENANT, project)))["count"] == len(world.repos)
    assert ok(f"{sandbox.url}/azure/{TENANT}-eng/_apis/git/repositories")["count"] == len(world.repos)
    # Other planning projects exist and hold no repositories; unknown ones do not exist.
    if len(work.projects) > 1:
        assert ok(git(sandbox, "/repositories", project=work.projects[1].key)) == {"value": [], "count": 0}
    response = get(git(sandbox, "/repositories", project="Nope"), token_for("azure", TENANT))
    assert response.status_code == 404
    assert response.json()["typeKey"] == "ProjectDoesNotExistWithNameException"
    assert response.json()["message"].startswith("TF200016: The following project does not exist: Nope.")


def test_pull_request_list_pages_newest_first_until_a_short_page(sandbox: SandboxServer) -> None:
    world = sandbox.world(TENANT)
    repo = busiest(sandbox)
    top, pages = 17, 0
    seen: list[dict[str, Any]] = []
    while True:
        page = ok(pulls_url(sandbox, repo), **{"searchCriteria.status": "all", "$top": top, "$skip": len(seen)})
        pages += 1
        assert page["count"] == len(page["value"]) <= top
        seen += page["value"]
        if len(page["value"]) < top:
            break
    assert pages == len(repo.pulls) // top + 1
    newest_first = sorted(repo.pulls, key=lambda p: (p.created_at, pull_request_id(world, p)), reverse=True)
    assert [item["pullRequestId"] for item in seen] == [pull_request_id(world, p) for p in newest_first]
    created = [parse_time(item["creationDate"]) for item in seen]
    assert created == sorted(created, reverse=True)
    # A page past the end is empty; a $top that divides the total evenly ends with an empty page.
    assert ok(pulls_url(sandbox, repo), **{"searchCriteria.status": "all", "$skip": len(seen)})["value"] == []


def test_list_defaults_statuses_and_limits(sandbox: SandboxServer) -> None:
    world = sandbox.world(TENANT)
    repo = busiest(sandbox)
    by_status: dict[str, list[PullRequest]] = {}
    for pr in repo.pulls:
        by_status.setdefault(payloads.status_of(pr), []).append(pr)
    assert set(by_status) == {"active", "completed", "abandoned"}
    # Without searchCriteria.status only active pull requests come back, at most 101 of them.
    default = ok(pulls_url(sandbox, repo))["value"]
    assert {item["pullRequestId"] for item in default} == {pull_request_id(world, p) for p in by_status["active"]}
    assert len(ok(pulls_url(sandbox, repo), **{"searchCriteria.status": "all"})["value"]) == min(101, len(repo.pulls))
    for status, pulls in by_status.items():
        items = ok(pulls_url(sandbox, repo), **{"searchCriteria.status": status, "$top": 1000})["value"]
        assert {i["status"] for i in items} == {status} and len(items) == len(pulls)
        for item in items:
            assert ("closedDate" in item) == (status != "active")
            assert ("lastMergeCommit" in item) == (status != "abandoned")
    completed = by_status["completed"][0]
    item = next(
        i
        for i in ok(pulls_url(sandbox, repo), **{"searchCriteria.status": "completed", "$top": 1000})["value"]
        if i["pullRequestId"] == pull_request_id(world, completed)
    )
    assert item["lastMergeCommit"]["commitId"] == completed.merge_commit_sha
    assert parse_time(item["closedDate"]) == completed.merged_at
    assert item["createdBy"]["uniqueName"] == completed.author.email
    assert item["sourceRefName"] == f"refs/heads/{completed.head_ref}"
    # The hard limit of $top, and bad parameters, are 400s.
    for params in ({"$top": 1001}, {"$top": 0}, {"$skip": -1}, {"searchCriteria.status": "merged"}):
        response = get(pulls_url(sandbox, repo), token_for("azure", TENANT), **params)
        assert response.status_code == 400, params
        assert response.json()["typeKey"] == "InvalidArgumentValueException"
    assert (
        "must be between 1 and 1000"
        in get(pulls_url(sandbox, repo), token_for("azure", TENANT), **{"$top": "5000"}).json()["message"]
    )


def test_lists_cut_descriptions_at_400_characters_and_the_single_get_has_them_whole(sandbox: SandboxServer) -> None:
    world = sandbox.world(TENANT)
    long = next(p for p in world.pull_requests() if len(payloads.description_of(p) or "") > 400)
    whole = payloads.description_of(long)
    assert whole is not None
    listed = ok(pulls_url(sandbox, long.repo), **{"searchCriteria.status": "all", "$top": 1000})["value"]
    item = next(i for i in listed if i["pullRequestId"] == pull_request_id(world, long))
    assert item["description"] == whole[:400]
    number = pull_request_id(world, long)
    for casing in ("pullRequests", "pullrequests", "PULLREQUESTS"):
        single = ok(git(sandbox, f"/repositories/{repository_guid(long.repo.id)}/{casing}/{number}"))
        assert single["description"] == whole
    by_name = ok(git(sandbox, f"/repositories/{long.repo.name}/pullRequests/{number}"))
    assert by_name["pullRequestId"] == number and by_name["artifactId"].endswith(f"%2f{number}")
    by_id = ok(f"{sandbox.url}/azure/{TENANT}-eng/_apis/git/pullRequests/{number}", includeWorkItemRefs="true")
    work = sandbox.work_world(TENANT)
    assert [int(r["id"]) for r in by_id["workItemRefs"]] == payloads.linked_work_item_ids(work, long)


def test_reviewers_votes_and_vote_threads_agree_with_the_world(sandbox: SandboxServer) -> None:
    world = sandbox.world(TENANT)
    checked = 0
    votes_seen: set[int] = set()
    for pr in world.pull_requests():
        expected = payloads.reviewer_votes(pr)
        if not expected:
            continue
        base = f"/repositories/{repository_guid(pr.repo.id)}/pullRequests/{pull_request_id(world, pr)}"
        reviewers = ok(git(sandbox, base + "/reviewers"))["value"]
        assert [(r["uniqueName"], r["vote"]) for r in reviewers] == [(v.user.email, v.vote) for v in expected]
        votes_seen |= {v.vote for v in expected}
        threads = ok(git(sandbox, base + "/threads"))["value"]
        assert [t["id"] for t in threads] == list(range(1, len(threads) + 1))
        published = [parse_time(t["publishedDate"]) for t in threads]
        assert published == sorted(published)
        last_vote: dict[str, tuple[int, datetime]] = {}
        for t in threads:
            kind = (t["properties"].get("CodeReviewThreadType") or {}).get("$value")
            if kind == "VoteUpdate":
                voter = t["identities"][t["properties"]["CodeReviewVotedByIdentity"]["$value"]]["uniqueName"]
                last_vote[voter] = (
                    int(t["properties"]["CodeReviewVoteResult"]["$value"]),
                    parse_time(t["publishedDate"]),
                )
        for v in expected:
            if v.voted_at is not None:
                assert last_vote[v.user.email][1] == v.voted_at
                assert last_vote[v.user.email][0] == (v.vote if v.reset_at is None else 10)
        checked += 1
        # the world is today's, so which votes the first pull requests hold changes by the day:
        # read on until every kind has been seen
        if checked >= 40 and votes_seen >= {10, -10, 0}:
            break
    assert checked >= 40 and votes_seen >= {10, -10, 0}


def test_commits_continue_with_a_continuation_token(sandbox: SandboxServer) -> None:
    world = sandbox.world(TENANT)
    pr = max(world.pull_requests(), key=lambda p: len(p.commits))
    assert len(pr.commits) >= 4
    url = git(sandbox, f"/repositories/{repository_guid(pr.repo.id)}/pullRequests/{pull_request_id(world, pr)}/commits")
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"$top": 3}
        if token:
            params["continuationToken"] = token
        response = get(url, token_for("azure", TENANT), **params)
        assert response.status_code == 200
        pages += 1
        seen += [c["commitId"] for c in response.json()["value"]]
        token = response.headers.get("x-ms-continuationtoken")
        if not token:
            break
    assert pages == -(-len(pr.commits) // 3)
    assert seen == [c.sha for c in reversed(pr.commits)]  # newest first
    bad = get(url, token_for("azure", TENANT), continuationToken="bm90LWEtdG9rZW4")
    assert bad.status_code == 400


def test_work_items_of_a_pull_request(sandbox: SandboxServer) -> None:
    world, work = sandbox.world(TENANT), sandbox.work_world(TENANT)
    linked = next(p for p in world.pull_requests() if payloads.linked_work_item_ids(work, p))
    base = f"/repositories/{repository_guid(linked.repo.id)}/pullRequests/{pull_request_id(world, linked)}"
    body = ok(git(sandbox, base + "/workitems"))
    assert [int(ref["id"]) for ref in body["value"]] == [i.id for i in work.items if linked.id in i.pull_request_ids]
    assert all(isinstance(ref["id"], str) for ref in body["value"])


def test_authentication(sandbox: SandboxServer) -> None:
    url = git(sandbox, "/repositories")
    assert get(url, token_for("azure", TENANT)).status_code == 200
    assert get(url, token_for("azure", TENANT), auth="bearer").status_code == 200
    wrong = get(url, "not-a-pat")
    assert wrong.status_code == 401 and wrong.json()["message"].startswith("VS30063")
    other = get(url, token_for("azure", "azg_other"))  # another organisation's PAT
    assert other.status_code == 401
    signin = get(url)
    assert signin.status_code == 203 and signin.headers["content-type"].startswith("text/html")
    noperm = get(url, token_for("azure", TENANT, noperm=True))
    assert noperm.status_code == 401 and noperm.json()["message"].startswith("TF400813")
    missing = get(git(sandbox, "/repositories/ghost/pullrequests"), token_for("azure", TENANT))
    assert missing.status_code == 404
    assert missing.json()["typeKey"] == "GitRepositoryNotFoundException"
    assert missing.json()["message"].startswith("TF401019: The Git repository with name or identifier ghost")
    no_pr = get(
        git(sandbox, f"/repositories/{busiest(sandbox).name}/pullRequests/99999999"), token_for("azure", TENANT)
    )
    assert no_pr.status_code == 404 and no_pr.json()["message"].startswith("TF401180")


def test_faults_are_answered_as_azure_devops_does(sandbox: SandboxServer, sandbox_faults: SandboxFaults) -> None:
    url = pulls_url(sandbox, busiest(sandbox))
    token = token_for("azure", TENANT)
    sandbox_faults.expired_token = 1
    expired = get(url, token)
    assert expired.status_code == 401
    assert expired.json()["message"] == "Access Denied: The Personal Access Token used has expired."
    sandbox_faults.too_many_requests = 1
    throttled = get(url, token)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    sandbox_faults.server_errors = 1
    assert get(url, token).status_code == 500
    assert get(url, token).status_code == 200  # each fault is used once
    sandbox_faults.slow_responses, sandbox_faults.slow_seconds = 1, 0.3
    started = datetime.now(UTC)
    assert get(url, token).status_code == 200
    assert (datetime.now(UTC) - started).total_seconds() >= 0.3


def test_malformed_pull_request_in_lists(sandbox: SandboxServer, sandbox_faults: SandboxFaults) -> None:
    world = sandbox.world(TENANT)
    target = world.malformed_target()
    sandbox_faults.malformed_pull_request = True
    items = ok(pulls_url(sandbox, target.repo), **{"searchCriteria.status": "all", "$top": 1000})["value"]
    broken = [i for i in items if "pullRequestId" not in i]
    assert len(broken) == 1 and broken[0]["codeReviewId"] == pull_request_id(world, target)
    assert broken[0]["creationDate"] == "yesterday, around lunch"
    assert len(items) == len(target.repo.pulls)


def test_the_rate_window_throttles_with_retry_after(sandbox: SandboxServer) -> None:
    tenant = "azg_window_unit"
    url = git(sandbox, "/repositories", tenant=tenant)
    limit = sandbox.tool_rate_limit
    sandbox.tool_rate_limit = 4
    try:
        answers = [get(url, token_for("azure", tenant)) for _ in range(5)]
    finally:
        sandbox.tool_rate_limit = limit
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].json()["message"].startswith("TF400733")
    assert answers[3].headers["X-RateLimit-Remaining"] == "0"
