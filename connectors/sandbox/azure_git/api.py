"""Azure DevOps Git's pull request endpoints, answered from the tenant's GitHub world.

The sandbox routes every path below ``{sandbox}/azure`` that contains ``/_apis/git/`` here;
``request.path`` starts with the organisation (``/<tenant>-eng/<project>/_apis/git/…``).
Authentication, the rate-limit window and injected faults come from ``azure_common.begin``
(the Boards simulator fails the same way). Literal path segments are case-insensitive, as
on dev.azure.com (clients write both ``pullrequests`` and ``pullRequests``); projects and
repositories are named by name or GUID.

=====================================================================  ================================
endpoint (GET)                                                         answer
=====================================================================  ================================
``/{org}[/{project}]/_apis/git/repositories``                          ``{count, value}``
``/{org}/{project}/_apis/git/repositories/{repo}``                     one repository
``…/repositories/{repo}/pullrequests``                                 ``{value, count}``, see below
``…/repositories/{repo}/pullRequests/{id}``                            whole (description uncut;
                                                                       ``includeWorkItemRefs=true``)
``/{org}[/{project}]/_apis/git/pullrequests/{id}``                     the same, found by id alone
``…/pullRequests/{id}/reviewers``                                      ``{count, value}``
``…/pullRequests/{id}/threads``                                        ``{value, count}`` (every thread)
``…/pullRequests/{id}/commits``                                        ``{count, value}``, newest first;
                                                                       ``$top`` (≤ 100) and an
                                                                       ``x-ms-continuationtoken`` header
                                                                       sent back as ``continuationToken``
``…/pullRequests/{id}/workitems``                                      ``{count, value: [{id, url}]}``
=====================================================================  ================================

Pull request lists: ``searchCriteria.status`` ``active`` (the default), ``completed``,
``abandoned`` or ``all``; ordered by creation, newest first (``pullRequestId`` breaks
ties), like Azure DevOps; ``$top`` (default 101, at most 1000 — more is a 400) and
``$skip``: a client pages until fewer than ``$top`` come back. There is no "updated since"
filter. Descriptions are cut at 400 characters. While ``server.faults.malformed_pull_request``
(or ``malformed_work_item``) is set, lists carry one broken item: the GitHub world's
``malformed_target()`` without ``pullRequestId`` and with a ``creationDate`` that is no date.

Errors as Azure DevOps words them: unknown project → 404 ``TF200016``; unknown repository →
404 ``TF401019`` (``GitRepositoryNotFoundException``); unknown pull request → 404
``TF401180``; a ``*_noperm`` PAT → 401 ``TF400813``; bad parameters → 400.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from connectors.sandbox import azure_common
from connectors.sandbox.azure_common import azure_error, project_guid, project_name, pull_request_id, repository_guid
from connectors.sandbox.azure_git import payloads
from connectors.sandbox.azure_git.payloads import Org
from connectors.sandbox.github.world import GitHubWorld, PullRequest, Repository
from connectors.sandbox.tools import Caller, ToolRequest, ToolResponse
from connectors.sandbox.work.world import WorkWorld

if TYPE_CHECKING:
    from connectors.sandbox.server import SandboxServer

API_VERSION = "7.1"
DEFAULT_TOP = 101
MAX_TOP = 1000
COMMITS_DEFAULT_TOP = 100
COMMITS_MAX_TOP = 100
STATUSES = ("active", "completed", "abandoned", "all", "notset")

_SCOPE = r"^/(?P<org>[^/]+)(?:/(?!_apis/)(?P<project>[^/]+))?/_apis/git"
_REPO = _SCOPE + r"/repositories/(?P<repo>[^/]+)"
_PULL = _REPO + r"/pullrequests/(?P<id>\d+)"
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(_SCOPE + r"/repositories/?$", re.IGNORECASE), "repositories"),
    (re.compile(_REPO + r"/?$", re.IGNORECASE), "repository"),
    (re.compile(_REPO + r"/pullrequests/?$", re.IGNORECASE), "pull_requests"),
    (re.compile(_PULL + r"/?$", re.IGNORECASE), "pull_request"),
    (re.compile(_PULL + r"/(?P<part>reviewers|threads|commits|workitems)/?$", re.IGNORECASE), "part"),
    (re.compile(_SCOPE + r"/pullrequests/(?P<id>\d+)/?$", re.IGNORECASE), "pull_request_by_id"),
]


class _Refused(Exception):
    """An error answer, raised from deep inside a handler."""

    def __init__(self, response: ToolResponse) -> None:
        super().__init__(response.status)
        self.response = response


def handle(server: SandboxServer, request: ToolRequest) -> ToolResponse:
    """Answer one request of the Git simulator (authentication and faults included)."""
    caller, refused, headers = azure_common.begin(server, request)
    if refused is not None:
        refused.headers.update(headers)
        return refused
    assert caller is not None
    response = _answer(server, request, caller)
    response.headers.update(headers)
    response.headers.setdefault("content-type", f"application/json; charset=utf-8; api-version={API_VERSION}")
    response.tenant = caller.tenant
    return response


def _answer(server: SandboxServer, request: ToolRequest, caller: Caller) -> ToolResponse:
    if request.method not in ("GET", "HEAD"):
        return azure_error(
            405, f"The requested resource does not support http method '{request.method}'.", "HttpMethodNotAllowed"
        )
    for pattern, name in _ROUTES:
        match = pattern.match(request.path)
        if match is None:
            continue
        if not caller.can_read:
            return azure_common.not_authorized(caller)
        groups = {key: unquote(value) if value else value for key, value in match.groupdict().items()}
        try:
            with server.locked():
                world = server.world(caller.tenant)
                work = server.work_world(caller.tenant)
                return _route(server, request, name, groups, world, work)
        except _Refused as refused:
            return refused.response
    return azure_error(404, f"The resource {request.path} could not be found.", "NotFoundException")


def _route(
    server: SandboxServer,
    request: ToolRequest,
    name: str,
    groups: dict[str, str | None],
    world: GitHubWorld,
    work: WorkWorld,
) -> ToolResponse:
    org = payloads.org_for(request.base_url, world, work)
    holds_repositories = _check_project(world, work, org, groups.get("project"))
    if name == "repositories":
        repos = sorted(world.repos, key=lambda r: r.name.lower()) if holds_repositories else []
        value = [payloads.repository_payload(org, repo) for repo in repos]
        return ToolResponse(200, {"value": value, "count": len(value)})
    if name == "pull_request_by_id":
        pr = _pull_request(world, None, groups["id"] or "")
        return ToolResponse(200, _single(request, org, world, work, pr))
    repo = _repository(world, groups["repo"] or "") if holds_repositories else None
    if repo is None:
        raise _Refused(_repository_not_found(groups["repo"] or ""))
    if name == "repository":
        return ToolResponse(200, payloads.repository_payload(org, repo))
    if name == "pull_requests":
        return _list_pull_requests(server, request, org, world, repo)
    pr = _pull_request(world, repo, groups["id"] or "")
    if name == "pull_request":
        return ToolResponse(200, _single(request, org, world, work, pr))
    part = (groups.get("part") or "").lower()
    url = org.api(f"repositories/{repository_guid(repo.id)}/pullRequests/{pull_request_id(world, pr)}")
    if part == "reviewers":
        value = [payloads.reviewer_payload(org, url, reviewer) for reviewer in payloads.reviewer_votes(pr)]
        return ToolResponse(200, {"count": len(value), "value": value})
    if part == "threads":
        threads = payloads.threads_payload(org, world, pr)
        return ToolResponse(200, {"value": threads, "count": len(threads)})
    if part == "workitems":
        refs = [payloads.work_item_ref(org, item_id) for item_id in payloads.linked_work_item_ids(work, pr)]
        return ToolResponse(200, {"count": len(refs), "value": refs})
    return _commits(request, org, world, pr)


def _check_project(world: GitHubWorld, work: WorkWorld, org: Org, project: str | None) -> bool:
    """Whether ``project`` (None: the organisation) holds the repositories; 404 when it is unknown."""
    if project is None:
        return True
    wanted = project.lower()
    if wanted in (org.project.lower(), org.project_id):
        return True
    for other in work.projects:
        name = project_name(other)
        if wanted in (name.lower(), project_guid(world.slug, name)):
            return False
    raise _Refused(
        azure_error(
            404,
            f"TF200016: The following project does not exist: {project}. Verify that the name of the "
            "project is correct and that the project exists on the specified Azure DevOps Server.",
            "ProjectDoesNotExistWithNameException",
            error_code=0,
        )
    )


def _repository(world: GitHubWorld, key: str) -> Repository | None:
    wanted = key.lower()
    return next((r for r in world.repos if wanted in (r.name.lower(), repository_guid(r.id))), None)


def _repository_not_found(key: str) -> ToolResponse:
    return azure_error(
        404,
        f"TF401019: The Git repository with name or identifier {key} does not exist or you do not have "
        "permissions for the operation you are attempting.",
        "GitRepositoryNotFoundException",
    )


def _pull_request(world: GitHubWorld, repo: Repository | None, number: str) -> PullRequest:
    wanted = int(number)
    pulls = repo.pulls if repo is not None else list(world.pull_requests())
    found = next((pr for pr in pulls if pull_request_id(world, pr) == wanted), None)
    if found is None:
        raise _Refused(
            azure_error(404, "TF401180: The requested pull request was not found.", "GitPullRequestNotFoundException")
        )
    return found


def _single(request: ToolRequest, org: Org, world: GitHubWorld, work: WorkWorld, pr: PullRequest) -> dict[str, Any]:
    refs = (request.param("includeWorkItemRefs") or "").lower() == "true"
    return payloads.pull_request_payload(org, world, pr, full=True, work=work if refs else None)


def _bad_request(message: str) -> _Refused:
    return _Refused(azure_error(400, message, "InvalidArgumentValueException", error_code=0))


def _int_param(request: ToolRequest, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"The value '{raw}' is not valid for {name}: a whole number is expected.") from None
    if value < low or (high is not None and value > high):
        upper = f" and {high}" if high is not None else ""
        raise _bad_request(
            f"Invalid argument value. Parameter name: {name}. The value {value} must be between {low}{upper}."
            if high is not None
            else f"Invalid argument value. Parameter name: {name}. The value {value} must be at least {low}."
        )
    return value


def _list_pull_requests(
    server: SandboxServer, request: ToolRequest, org: Org, world: GitHubWorld, repo: Repository
) -> ToolResponse:
    status = (request.param("searchCriteria.status") or "active").lower()
    if status not in STATUSES:
        raise _bad_request(
            f"The value '{request.param('searchCriteria.status')}' is not valid for searchCriteria.status; "
            "use active, abandoned, completed or all."
        )
    top = _int_param(request, "$top", DEFAULT_TOP, 1, MAX_TOP)
    skip = _int_param(request, "$skip", 0, 0, None)
    pulls = [pr for pr in repo.pulls if status in ("all", "notset") or payloads.status_of(pr) == status]
    pulls.sort(key=lambda pr: (pr.created_at, pull_request_id(world, pr)), reverse=True)
    faults = server.faults
    broken = world.malformed_target().id if (faults.malformed_pull_request or faults.malformed_work_item) else None

    def render(pr: PullRequest) -> dict[str, Any]:
        payload = payloads.pull_request_payload(org, world, pr, full=False)
        if pr.id == broken:
            payload.pop("pullRequestId")
            payload["creationDate"] = "yesterday, around lunch"
        return payload

    value = [render(pr) for pr in pulls[skip : skip + top]]
    return ToolResponse(200, {"value": value, "count": len(value)})


def _encode_token(pr_number: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"commits:{pr_number}:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str, pr_number: int) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, number, offset = text.split(":")
        if kind != "commits" or int(number) != pr_number or int(offset) < 0:
            raise ValueError(text)
        return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad_request(f"The continuation token '{token}' is not valid for this pull request.") from None


def _commits(request: ToolRequest, org: Org, world: GitHubWorld, pr: PullRequest) -> ToolResponse:
    number = pull_request_id(world, pr)
    top = min(COMMITS_MAX_TOP, _int_param(request, "$top", COMMITS_DEFAULT_TOP, 1, None))
    token = request.param("continuationToken")
    offset = _decode_token(token, number) if token else 0
    newest_first = list(range(len(pr.commits) - 1, -1, -1))
    chunk = newest_first[offset : offset + top]
    value = [payloads.commit_payload(org, pr, index) for index in chunk]
    response = ToolResponse(200, {"count": len(value), "value": value})
    if offset + top < len(newest_first):
        response.headers["x-ms-continuationtoken"] = _encode_token(number, offset + top)
    return response
