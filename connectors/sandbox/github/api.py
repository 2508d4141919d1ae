"""The GitHub REST endpoints the connector uses, answered from a tenant's :class:`GitHubWorld`.

Pure request → response functions; the HTTP server (``connectors/sandbox/server.py``) does
authentication, rate-limit headers and faults, then calls :func:`handle`.

Paging follows GitHub: ``per_page`` (default 30, at most 100) and ``page`` (from 1), and a
``Link`` header with ``prev``/``next``/``last``/``first``. As on GitHub, the links of
repository-scoped lists point at the canonical ``/repositories/{id}/…`` form, and the org's
repository list at ``/organizations/{id}/repos``: clients must follow links as given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from connectors.sandbox.github import payloads
from connectors.sandbox.github.world import GitHubWorld, PullRequest, Repository

DOCS = "https://docs.github.com/rest"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
MAX_PULL_COMMITS = 250


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiRequest:
    path: str
    query: list[tuple[str, str]]
    api: str  # scheme://host[:port] the client used, for URLs in bodies and links
    malformed_pull_request: bool = False

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default


def error(status: int, message: str, doc: str = DOCS) -> ApiResponse:
    return ApiResponse(status, {"message": message, "documentation_url": doc, "status": str(status)})


def not_found() -> ApiResponse:
    return error(404, "Not Found")


# -- paging -------------------------------------------------------------------------------


def page_params(request: ApiRequest) -> tuple[int, int]:
    """``(page, per_page)`` as GitHub reads them: bad values fall back to the defaults."""
    try:
        per_page = int(request.param("per_page") or DEFAULT_PER_PAGE)
    except ValueError:
        per_page = DEFAULT_PER_PAGE
    try:
        page = int(request.param("page") or 1)
    except ValueError:
        page = 1
    return max(1, page), min(MAX_PER_PAGE, max(1, per_page))


def link_header(url: str, query: Sequence[tuple[str, str]], page: int, last_page: int) -> str | None:
    """The ``Link`` header GitHub sends for ``page`` of ``last_page``, or None for a single page.

    Order as GitHub sends it: ``prev``, ``next``, ``last``, ``first``; the ``page`` parameter
    goes last, other parameters keep their order.
    """
    if last_page <= 1 and page <= 1:
        return None
    kept = [(k, v) for k, v in query if k != "page"]

    def href(number: int) -> str:
        return f"<{url}?{urlencode([*kept, ('page', str(number))])}>"

    links: list[str] = []
    if page > 1:
        links.append(f'{href(min(page - 1, last_page))}; rel="prev"')
    if page < last_page:
        links.append(f'{href(page + 1)}; rel="next"')
        links.append(f'{href(last_page)}; rel="last"')
    if page > 1:
        links.append(f'{href(1)}; rel="first"')
    return ", ".join(links)


def paged(
    request: ApiRequest,
    items: Sequence[Any],
    canonical_url: str,
    render: Callable[[Any], Any],
    wrap: Callable[[list[Any]], Any] | None = None,
) -> ApiResponse:
    page, per_page = page_params(request)
    last_page = max(1, -(-len(items) // per_page))
    chunk = [render(item) for item in items[(page - 1) * per_page : page * per_page]]
    response = ApiResponse(200, wrap(chunk) if wrap else chunk)
    link = link_header(canonical_url, request.query, page, last_page)
    if link:
        response.headers["Link"] = link
    return response


# -- routing ------------------------------------------------------------------------------

_REPO = r"(?:/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)|/repositories/(?P<repo_id>\d+))"
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/orgs/(?P<org>[^/]+)/repos/?$"), "org_repos"),
    (re.compile(r"^/organizations/(?P<org_id>\d+)/repos/?$"), "org_repos"),
    (re.compile(rf"^{_REPO}/?$"), "repo"),
    (re.compile(rf"^{_REPO}/pulls/?$"), "pulls"),
    (re.compile(rf"^{_REPO}/pulls/(?P<number>\d+)/?$"), "pull"),
    (re.compile(rf"^{_REPO}/pulls/(?P<number>\d+)/reviews/?$"), "reviews"),
    (re.compile(rf"^{_REPO}/pulls/(?P<number>\d+)/commits/?$"), "pull_commits"),
    (re.compile(rf"^{_REPO}/commits/(?P<ref>[^/]+)/check-runs/?$"), "check_runs"),
]


def handle(world: GitHubWorld, request: ApiRequest) -> ApiResponse:
    """Answer one authenticated ``GET`` for the tenant that owns ``world``."""
    for pattern, name in _ROUTES:
        match = pattern.match(request.path)
        if match is None:
            continue
        groups = match.groupdict()
        if name == "org_repos":
            return _org_repos(world, request, groups)
        repo = _find_repo(world, groups)
        if repo is None:
            return not_found()
        if name == "repo":
            return ApiResponse(200, payloads.repository_payload(world, repo, request.api, full=True))
        if name == "pulls":
            return _pulls(world, repo, request)
        if name == "check_runs":
            return _check_runs(world, repo, request, groups["ref"])
        pr = next((p for p in repo.pulls if p.number == int(groups["number"] or 0)), None)
        if pr is None:
            return not_found()
        return _pull_part(world, repo, pr, name, request)
    return not_found()


def _pull_part(world: GitHubWorld, repo: Repository, pr: PullRequest, name: str, request: ApiRequest) -> ApiResponse:
    if name == "reviews":
        reviews = sorted(pr.reviews, key=lambda r: r.id)
        url = f"{request.api}/repositories/{repo.id}/pulls/{pr.number}/reviews"
        return paged(request, reviews, url, lambda r: payloads.review_payload(pr, r, request.api))
    if name == "pull_commits":
        commits = pr.commits[:MAX_PULL_COMMITS]
        url = f"{request.api}/repositories/{repo.id}/pulls/{pr.number}/commits"
        return paged(request, commits, url, lambda c: payloads.commit_payload(pr, c, request.api))
    return ApiResponse(200, _single_pull(world, pr, request.api))


def _find_repo(world: GitHubWorld, groups: dict[str, str | None]) -> Repository | None:
    if groups.get("repo_id"):
        return world.repo_by_id(int(groups["repo_id"] or 0))
    if (groups.get("owner") or "").lower() != world.org.lower():
        return None
    return world.repo(groups.get("repo") or "")


def _org_repos(world: GitHubWorld, request: ApiRequest, groups: dict[str, str | None]) -> ApiResponse:
    if groups.get("org_id"):
        if int(groups["org_id"] or 0) != world.org_id:
            return not_found()
    elif (groups.get("org") or "").lower() != world.org.lower():
        return not_found()
    sort = request.param("sort", "created")
    direction = request.param("direction") or ("asc" if sort == "full_name" else "desc")
    keys: dict[str, Callable[[Repository], Any]] = {
        "created": lambda r: r.created_at,
        "updated": lambda r: r.updated_at,
        "pushed": lambda r: r.pushed_at,
        "full_name": lambda r: r.full_name.lower(),
    }
    repos = sorted(world.repos, key=keys.get(sort or "created", keys["created"]), reverse=direction == "desc")
    url = f"{request.api}/organizations/{world.org_id}/repos"
    return paged(request, repos, url, lambda r: payloads.repository_payload(world, r, request.api, full=False))


def _pulls(world: GitHubWorld, repo: Repository, request: ApiRequest) -> ApiResponse:
    state = request.param("state", "open")
    if state not in {"open", "closed", "all"}:
        return error(422, "Validation Failed", f"{DOCS}/pulls/pulls#list-pull-requests")
    sort = request.param("sort", "created") or "created"
    # GitHub: "Default: desc when sort is created or sort is not specified, otherwise asc."
    direction = request.param("direction") or ("desc" if sort == "created" else "asc")
    pulls = [pr for pr in repo.pulls if state == "all" or pr.state == state]
    if sort == "updated":
        pulls.sort(key=lambda pr: (pr.updated_at, pr.number), reverse=direction == "desc")
    else:  # created; popularity and long-running are approximated by creation order
        pulls.sort(key=lambda pr: (pr.created_at, pr.number), reverse=direction == "desc")
    broken = world.malformed_target().id if request.malformed_pull_request else None

    def render(pr: PullRequest) -> dict[str, Any]:
        payload = payloads.pull_request_payload(world, pr, request.api)
        if pr.id == broken:
            payload.pop("number")
            payload["created_at"] = "yesterday, around lunch"
        return payload

    url = f"{request.api}/repositories/{repo.id}/pulls"
    return paged(request, pulls, url, render)


def _single_pull(world: GitHubWorld, pr: PullRequest, api: str) -> dict[str, Any]:
    payload = payloads.pull_request_payload(world, pr, api)
    payload.update(
        {
            "merged": pr.merged_at is not None,
            "mergeable": None if pr.state == "closed" else True,
            "rebaseable": None if pr.state == "closed" else True,
            "mergeable_state": "unknown" if pr.state == "closed" else "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": len(pr.commits),
            "additions": 7 * len(pr.commits) + pr.number % 50,
            "deletions": 3 * len(pr.commits) + pr.number % 17,
            "changed_files": 1 + len(pr.commits) // 2,
        }
    )
    return payload


def _check_runs(world: GitHubWorld, repo: Repository, request: ApiRequest, ref: str) -> ApiResponse:
    known = {c.sha for pr in repo.pulls for c in pr.commits}
    branches = {pr.head_ref: pr.head_sha for pr in repo.pulls if pr.state == "open"}
    sha = branches.get(ref, ref)
    if sha not in known:
        return error(422, f"No commit found for SHA: {ref}", f"{DOCS}/checks/runs#list-check-runs-for-a-git-reference")
    runs = sorted(world.check_runs.get(sha, []), key=lambda run: run.id)
    status = request.param("status")
    if status:
        runs = [run for run in runs if run.status == status]
    name = request.param("check_name")
    if name:
        runs = [run for run in runs if run.name == name]
    url = f"{request.api}/repositories/{repo.id}/commits/{sha}/check-runs"
    return paged(
        request,
        runs,
        url,
        lambda run: payloads.check_run_payload(world, repo, run, request.api),
        wrap=lambda chunk: {"total_count": len(runs), "check_runs": chunk},
    )
