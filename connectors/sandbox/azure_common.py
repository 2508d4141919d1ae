"""What the Azure DevOps simulators (Boards and Git) share: organisation, PAT auth, errors, faults.

Both ``connectors.sandbox.azure_boards`` and ``connectors.sandbox.azure_git`` answer paths
below ``{sandbox}/azure``; the first path segment is the organisation, which for a tenant is
``<tenant>-eng``. They must fail the same way the real service does, so the pieces live here:

* :func:`authenticate` — a PAT sent as Basic ``<any user>:<pat>`` or as ``Bearer <pat>``
  (``tools.token_for("azure", tenant)``). No credentials at all → **203** with an HTML
  sign-in page (what dev.azure.com answers a browserless client); an unknown PAT → 401
  ``VS30063``; a PAT of another tenant's organisation → 401 ``VS30063`` too (PATs are
  scoped to organisations); an organisation that is not ``<tenant>-eng`` → 404.
* :func:`azure_error` — Azure's error JSON ``{"$id", "innerException", "message",
  "typeName", "typeKey", "errorCode", "eventId"}``.
* :func:`not_authorized` — 401 ``TF400813`` for ``*_noperm`` PATs on resources they cannot read.
* :func:`rate_headers` / :func:`throttled` — the per-PAT window (``server.tool_rate_limit``
  requests a minute): ``X-RateLimit-*`` headers once the caller is close to the limit,
  then 429 with ``Retry-After``.
* :func:`take_fault` — the injected faults of ``server.faults`` (``TOOL_FAULTS``), answered
  as Azure DevOps answers them.
* :func:`begin` — all of the above in the order a handler needs them.
* :func:`project_name`, :func:`project_guid`, :func:`repository_guid`,
  :func:`pull_request_id` — the ids both simulators render, so that a work item's
  ``ArtifactLink`` to a pull request (``vstfs:///Git/PullRequestId/<project>%2F<repo>%2F<id>``)
  names the pull request the Git simulator serves.

Keep these signatures stable: another simulator imports them.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from connectors.sandbox.tools import (
    Caller,
    ToolRequest,
    ToolResponse,
    basic_credentials,
    bearer_token,
    caller_from_token,
)

if TYPE_CHECKING:
    from connectors.sandbox.github.world import GitHubWorld, PullRequest
    from connectors.sandbox.server import SandboxServer
    from connectors.sandbox.work.world import Project

#: The counted faults Azure DevOps answers (the same names as ``server.TOOL_FAULTS``).
AZURE_FAULTS = ("expired_token", "too_many_requests", "server_errors", "slow_responses")
#: Pull request ids of one repository occupy a block this large (see :func:`pull_request_id`).
PULL_REQUESTS_PER_REPOSITORY = 100_000
#: Headers X-RateLimit-* are sent once fewer than this share of the window is left.
RATE_HEADER_THRESHOLD = 0.2

EXPIRED_MESSAGE = "Access Denied: The Personal Access Token used has expired."
SIGN_IN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>"
    b"<body><p>Sign in to your account to continue to Azure DevOps.</p></body></html>"
)
_TYPE_NAMES = {
    "UnauthorizedRequestException": "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException",
    "InvalidAccessException": "Microsoft.TeamFoundation.Framework.Server.InvalidAccessException",
    "ProjectDoesNotExistWithNameException": "Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistWithNameException",
    "RequestBlockedException": "Microsoft.TeamFoundation.Framework.Server.RequestBlockedException",
}


def organisation_of(tenant: str) -> str:
    """The Azure DevOps organisation of ``tenant`` (``<tenant>-eng``)."""
    return f"{tenant}-eng"


def project_name(project: Project) -> str:
    """The Azure DevOps project of a planning-world project: its key (``PLAT``); its default
    team is ``"<name> Team"``."""
    return project.key


def project_guid(tenant: str, name: str) -> str:
    """The stable GUID of ``tenant``'s Azure DevOps project ``name``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-project:{tenant}:{name}"))


def repository_guid(repo_id: int) -> str:
    """The stable GUID of the Git repository rendering the GitHub world's repository ``repo_id``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-repository:{repo_id}"))


def pull_request_id(world: GitHubWorld, pr: PullRequest) -> int:
    """The organisation-wide ``pullRequestId`` of a GitHub-world pull request: its number made
    unique by its repository's position among the tenant's repositories (ordered by id)."""
    ids = sorted(repo.id for repo in world.repos)
    position = ids.index(pr.repo.id) if pr.repo.id in ids else 0
    return position * PULL_REQUESTS_PER_REPOSITORY + pr.number


def org_from_path(path: str) -> str:
    """The organisation: the first segment of ``request.path`` (``/acme-eng/Payments/_apis/…``)."""
    return path.lstrip("/").split("/", 1)[0]


def azure_error(status: int, message: str, type_key: str, *, error_code: int = 0) -> ToolResponse:
    """An Azure DevOps error answer: ``{"$id", "innerException", "message", "typeName", …}``."""
    type_name = _TYPE_NAMES.get(type_key, f"Microsoft.VisualStudio.Services.WebApi.{type_key}")
    body = {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"{type_name}, Microsoft.TeamFoundation.Framework.Server",
        "typeKey": type_key,
        "errorCode": error_code,
        "eventId": 3000,
    }
    return ToolResponse(status, body, headers=_activity_headers())


def not_authorized(caller: Caller) -> ToolResponse:
    """401 ``TF400813`` (what a PAT without read scope on a resource gets)."""
    response = azure_error(
        401,
        f"TF400813: The user '{_user_id(caller)}' is not authorized to access this resource.",
        "UnauthorizedRequestException",
    )
    response.tenant = caller.tenant
    return response


def authenticate(server: SandboxServer, request: ToolRequest) -> tuple[Caller | None, ToolResponse | None]:
    """``(caller, None)`` when the PAT is good for the organisation of ``request.path``,
    otherwise ``(None, the answer to send)``."""
    authorization = request.headers.get("authorization")
    if not authorization:
        return None, ToolResponse(
            203, SIGN_IN_PAGE, headers={"content-type": "text/html; charset=utf-8", **_activity_headers()}
        )
    token: str | None
    basic = basic_credentials(authorization)
    token = basic[1] if basic is not None else bearer_token(authorization)
    caller = caller_from_token("azure", token) if token else None
    org = org_from_path(request.path)
    if caller is None:
        return None, _unauthorized()
    if org != organisation_of(caller.tenant):
        other = org.removesuffix("-eng")
        if org.endswith("-eng") and other and other != caller.tenant and _is_slug(other):
            response = _unauthorized()  # the PAT belongs to another organisation
        else:
            response = azure_error(
                404, f"The organization '{org}' could not be found.", "OrganizationNotFoundException"
            )
        response.tenant = caller.tenant
        return None, response
    return caller, None


def rate_headers(server: SandboxServer, caller: Caller) -> dict[str, str]:
    """Count one request of the caller's PAT; the headers to send with its answer.

    Empty while the caller is far from the limit; ``X-RateLimit-*`` (with a throttling
    ``X-RateLimit-Delay``) once fewer than 20 % of the window remain; ``Retry-After`` too
    when the window is used up (then :func:`throttled` answers 429)."""
    limit, remaining, reset = server.rate_window(f"azure:{caller.tenant}", server.tool_rate_limit)
    if remaining >= 0 and remaining >= limit * RATE_HEADER_THRESHOLD:
        return {}
    headers = {
        "X-RateLimit-Resource": "Core",
        "X-RateLimit-Delay": f"{0.5 if remaining >= 0 else 1.0:.1f}",
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(reset),
    }
    if remaining < 0:
        headers["Retry-After"] = str(max(1, reset - int(time.time())))
    return headers


def throttled(caller: Caller, headers: dict[str, str]) -> ToolResponse | None:
    """429 when :func:`rate_headers` found the window used up, else None."""
    if "Retry-After" not in headers:
        return None
    response = azure_error(
        429,
        f"TF400733: The request has been blocked: the user '{_user_id(caller)}' used more than "
        "the allowed resources in a short time. Retry after the number of seconds in Retry-After.",
        "RequestBlockedException",
    )
    response.headers.update(headers)
    response.tenant = caller.tenant
    response.fault = "rate_limited"
    return response


def take_fault(server: SandboxServer, request: ToolRequest, caller: Caller) -> ToolResponse | None:
    """Consume the next injected fault for ``request.path`` (call once per authenticated
    request) and the answer it gets; None when there is none or it only slows the answer."""
    with server.locked():
        fault = server.faults.take(request.path, AZURE_FAULTS)
    if fault is None:
        return None
    if fault == "slow_responses":
        time.sleep(server.faults.slow_seconds)
        return None
    if fault == "expired_token":
        response = azure_error(401, EXPIRED_MESSAGE, "UnauthorizedRequestException")
    elif fault == "too_many_requests":
        response = azure_error(
            429,
            f"TF400733: The request has been blocked: the user '{_user_id(caller)}' used more than "
            "the allowed resources in a short time. Retry after the number of seconds in Retry-After.",
            "RequestBlockedException",
        )
        response.headers.update(
            {
                "Retry-After": "1",
                "X-RateLimit-Resource": "Core",
                "X-RateLimit-Delay": "1.0",
                "X-RateLimit-Limit": str(server.tool_rate_limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + 1),
            }
        )
    else:
        response = azure_error(
            500,
            "VS402911: The server encountered an unexpected error. Retry the request; if it keeps "
            "failing, report the activity id.",
            "VssServiceException",
        )
    response.tenant = caller.tenant
    response.fault = fault
    return response


def begin(server: SandboxServer, request: ToolRequest) -> tuple[Caller | None, ToolResponse | None, dict[str, str]]:
    """Authenticate, count the rate window and take a fault, in that order.

    ``(caller, None, headers)`` means: answer the request and add ``headers`` to the answer;
    ``(caller or None, response, headers)`` means: send ``response`` as it is."""
    caller, refused = authenticate(server, request)
    if caller is None:
        return None, refused, {}
    headers = rate_headers(server, caller)
    blocked = throttled(caller, headers)
    if blocked is not None:
        return caller, blocked, headers
    faulted = take_fault(server, request, caller)
    if faulted is not None:
        return caller, faulted, headers
    return caller, None, headers


def _unauthorized() -> ToolResponse:
    response = azure_error(
        401, "VS30063: You are not authorized to access https://dev.azure.com.", "UnauthorizedRequestException"
    )
    response.headers["WWW-Authenticate"] = (
        'Bearer authorization_uri=https://login.microsoftonline.com/, Basic realm="https://dev.azure.com/"'
    )
    return response


def _activity_headers() -> dict[str, str]:
    activity = str(uuid.uuid4())
    return {"ActivityId": activity, "X-TFS-Session": activity, "X-VSS-E2EID": activity}


def _user_id(caller: Caller) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-user:{caller.tenant}"))


def _is_slug(text: str) -> bool:
    return bool(text) and text[0].isalpha() and all(c.isalnum() or c == "_" for c in text) and text == text.lower()
