"""HTTP (PAT auth, retries, paging), errors and parsing of the Azure DevOps Git connector.

Retries, rate limits and timeouts come from the GitHub connector's transport adapter
(``GitHubRetryAdapter``): Azure DevOps answers throttling with 429 and ``Retry-After``, and
5xx for transient failures, which that adapter already waits out. What is Azure's own is
here: a PAT sent as Basic ``:<pat>``, the two paging styles (``$top``/``$skip`` for pull
request lists, ``x-ms-continuationtoken`` for commits), the 203 sign-in page a refused
browserless client gets, the TF/VS error codes turned into messages a person can act on,
and the parsing of pull requests, reviewers, vote threads, commits and work item links.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from connectors.azure_boards.helpers import PatAuth, organisation_of
from connectors.azure_devops_git import settings
from connectors.github.helpers import (
    GitHubError,
    GitHubRateLimitError,
    GitHubRetryAdapter,
    MalformedItem,
    RetryPolicy,
    _Fields,
    parse_timestamp,
    response_message,
    safe_url,
)

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

__all__ = [
    "AzureDevOpsGitApiError",
    "AzureDevOpsGitAuthError",
    "AzureDevOpsGitClient",
    "AzureDevOpsGitError",
    "AzureDevOpsGitRateLimitError",
    "MalformedItem",
    "RetryPolicy",
]

# -- errors -------------------------------------------------------------------------------


class AzureDevOpsGitError(Exception):
    """Base of the connector's errors. Messages never contain the PAT."""


class AzureDevOpsGitAuthError(AzureDevOpsGitError):
    """The PAT was refused (rejected, expired) or may not read what was asked."""


class AzureDevOpsGitApiError(AzureDevOpsGitError):
    """Azure DevOps answered an error that retries did not fix (or could not be reached)."""

    def __init__(self, message: str, *, status: int | None, url: str, type_key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.type_key = type_key


class AzureDevOpsGitRateLimitError(AzureDevOpsGitApiError):
    """Throttling asked for a longer wait than allowed, or kept answering 429 after retries."""


# -- client -------------------------------------------------------------------------------


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


class AzureDevOpsGitClient:
    """Azure DevOps REST calls for one source: PAT auth, retries, paging, errors with context."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        source_name: str,
        project: str,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.org = organisation_of(self.base_url)
        self.source_name = source_name
        self.project = project
        self.policy = policy or RetryPolicy()
        session = requests.Session()
        adapter = GitHubRetryAdapter(
            self.policy, context=f"Azure DevOps Git source '{source_name}' (organisation '{self.org}')"
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.auth = PatAuth(token)
        session.headers.update({"Accept": "application/json", "User-Agent": settings.USER_AGENT})
        self._session = session

    def path(self, template: str, **parts: object) -> str:
        """An endpoint path with the project and every part URL-quoted."""
        quoted = {key: quote(str(value), safe="") for key, value in parts.items()}
        return template.format(project=quote(self.project, safe=""), **quoted)

    def get(self, path: str, params: dict[str, Any] | None = None) -> requests.Response:
        """GET ``path`` (below the organisation URL) with ``api-version``; errors raised as ours."""
        url = self.base_url + path
        query = {**(params or {}), "api-version": settings.API_VERSION}
        try:
            response = self._session.get(url, params=query)
        except GitHubRateLimitError as exc:
            raise AzureDevOpsGitRateLimitError(
                f"Azure DevOps throttles source '{self.source_name}' (organisation '{self.org}') and asks "
                f"for a longer wait than the allowed {self.policy.max_rate_limit_wait:.0f} s on {exc.url}; "
                "run the load again later",
                status=exc.status,
                url=exc.url,
            ) from exc
        except requests.RequestException as exc:
            raise AzureDevOpsGitApiError(
                f"Azure DevOps at {safe_url(self.base_url)} is unreachable for source '{self.source_name}' "
                f"({type(exc).__name__} after {_attempts(self.policy.max_attempts)}); check the base URL "
                "(https://dev.azure.com/<organisation>) and the network",
                status=None,
                url=safe_url(url),
            ) from exc
        except GitHubError as exc:  # pragma: no cover - the adapter raises only the rate-limit error
            raise AzureDevOpsGitApiError(str(exc), status=None, url=safe_url(url)) from exc
        self.raise_for_status(response)
        return response

    def json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.get(path, params)
        try:
            return response.json()
        except ValueError as exc:
            raise AzureDevOpsGitApiError(
                f"Azure DevOps answered {safe_url(response.url)} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')}); check the base URL of "
                f"source '{self.source_name}'",
                status=response.status_code,
                url=safe_url(response.url),
            ) from exc

    def values(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """The ``value`` list of a ``{count, value}`` answer."""
        body = self.json(path, params)
        try:
            return page_values(body)
        except ValueError as exc:
            raise AzureDevOpsGitApiError(
                f"Azure DevOps answered {path} with {exc} (source '{self.source_name}')",
                status=200,
                url=safe_url(self.base_url + path),
            ) from exc

    def pages_by_skip(self, path: str, params: dict[str, Any], top: int) -> Iterator[list[Any]]:
        """Pages of a ``$top``/``$skip`` list, until one comes back with fewer than ``$top`` items."""
        skip = 0
        previous: list[Any] | None = None
        while True:
            page = self.values(path, {**params, "$top": top, "$skip": skip})
            if page and page == previous:
                raise self._stuck(path, f"$skip={skip} answered the same page as $skip={skip - top}")
            yield page
            if len(page) < top:
                return
            previous = page
            skip += top

    def pages_by_token(self, path: str, params: dict[str, Any]) -> Iterator[list[Any]]:
        """Pages of a list continued by the ``x-ms-continuationtoken`` response header."""
        token: str | None = None
        while True:
            query = dict(params)
            if token:
                query["continuationToken"] = token
            response = self.get(path, query)
            try:
                body = response.json()
            except ValueError as exc:
                raise AzureDevOpsGitApiError(
                    f"Azure DevOps answered {safe_url(response.url)} with something that is not JSON",
                    status=response.status_code,
                    url=safe_url(response.url),
                ) from exc
            try:
                yield page_values(body)
            except ValueError as exc:
                raise AzureDevOpsGitApiError(
                    f"Azure DevOps answered {path} with {exc} (source '{self.source_name}')",
                    status=response.status_code,
                    url=safe_url(response.url),
                ) from exc
            following = response.headers.get("x-ms-continuationtoken")
            if following and following == token:
                raise self._stuck(path, "the continuation token came back unchanged")
            token = following
            if not token:
                return

    def _stuck(self, path: str, what: str) -> AzureDevOpsGitApiError:
        return AzureDevOpsGitApiError(
            f"Azure DevOps paging of {safe_url(self.base_url + path)} does not advance ({what}); stopped "
            f"rather than loop forever (source '{self.source_name}'); check the base URL points at Azure DevOps",
            status=200,
            url=safe_url(self.base_url + path),
        )

    def raise_for_status(self, response: requests.Response) -> None:
        """Turn an error answer (after the adapter's retries) into an error a person can act on."""
        status = response.status_code
        url = safe_url(response.url)
        source, org = self.source_name, self.org
        content_type = response.headers.get("content-type", "")
        if status == 203 or (status < 300 and "text/html" in content_type):
            raise AzureDevOpsGitAuthError(
                f"Azure DevOps answered source '{source}' with a sign-in page instead of data ({status} on "
                f"{url}): no credentials were accepted; set the PAT with `pulse source update "
                "--credential token=<PAT>`"
            )
        if status < 400:
            return
        message = response_message(response)
        type_key = _type_key(response)
        if status in (401, 403):
            if "TF400813" in message or status == 403:
                raise AzureDevOpsGitAuthError(
                    f"the PAT of source '{source}' may not read {url} in organisation '{org}' ({status} "
                    f"{message}); give it the Code (Read) scope on project '{self.project}' (and Work Items "
                    "(Read) for linked work items) and update it with `pulse source update`"
                )
            if "expired" in message.lower():
                raise AzureDevOpsGitAuthError(
                    f"the PAT of source '{source}' has expired ({status} {message}); create a new PAT in "
                    f"organisation '{org}' with the Code (Read) scope and update it with `pulse source update`"
                )
            raise AzureDevOpsGitAuthError(
                f"the PAT of source '{source}' was rejected by organisation '{org}' ({status} {message}); "
                "check that it was created in this organisation and has not been revoked, then update it "
                "with `pulse source update`"
            )
        if status == 404:
            hint = {
                "ProjectDoesNotExistWithNameException": f"check the 'project' of source '{source}'",
                "GitRepositoryNotFoundException": f"check the 'repositories' of source '{source}'",
                "OrganizationNotFoundException": (
                    f"check the base URL of source '{source}' (https://dev.azure.com/<organisation>)"
                ),
            }.get(type_key or "", f"check the base URL, project and repositories of source '{source}'")
            raise AzureDevOpsGitApiError(
                f"Azure DevOps answered 404 for {url} ({message}); {hint}", status=status, url=url, type_key=type_key
            )
        if status == 429:
            raise AzureDevOpsGitRateLimitError(
                f"Azure DevOps kept throttling source '{source}' (organisation '{org}') after "
                f"{self.policy.max_rate_limit_retries} waits ({status} {message}) on {url}; run the load again later",
                status=status,
                url=url,
                type_key=type_key,
            )
        retried = f" after {_attempts(self.policy.max_attempts)}" if status >= 500 else ""
        raise AzureDevOpsGitApiError(
            f"Azure DevOps answered {status} ({message}) for {url}{retried} (source '{source}', organisation '{org}')",
            status=status,
            url=url,
            type_key=type_key,
        )


def page_values(body: Any) -> list[Any]:
    """The items of a list answer: its ``value`` (``count`` is never trusted). A body without
    ``value`` has none; a ``value`` that is no list raises ValueError."""
    value = body.get("value") if isinstance(body, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"a 'value' that is no list: {str(value)[:100]!r}")
    return value


def _type_key(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("typeKey") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


class LazyClient:
    """Creates the client on first use, so building a source touches nothing."""

    def __init__(self, factory: Callable[[], AzureDevOpsGitClient]) -> None:
        self._factory = factory
        self._client: AzureDevOpsGitClient | None = None
        self._lock = threading.Lock()

    def get(self) -> AzureDevOpsGitClient:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client


# -- parsing ------------------------------------------------------------------------------

PR_STATUSES = frozenset({"active", "completed", "abandoned"})


def branch(ref: str | None) -> str | None:
    """``refs/heads/main`` → ``main``."""
    return ref.removeprefix("refs/heads/") if ref else ref


def parse_repository(item: Any) -> JsonDict:
    f = _Fields(item)
    row = {
        "id": f.text("id", required=True),
        "name": f.text("name", required=True),
        "project_id": f.text("project", "id"),
        "project_name": f.text("project", "name"),
        "default_branch": branch(f.text("defaultBranch")),
        "size": f.integer("size"),
        "remote_url": f.text("remoteUrl"),
        "web_url": f.text("webUrl"),
        "is_disabled": f.boolean("isDisabled"),
        "payload": item,
    }
    f.check()
    return row


def change_hash(item: JsonDict) -> str:
    """What tells a pull request changed: status, dates, title, description (as lists cut it),
    branches, the source commit and every reviewer's vote. Not the target commit (it moves with
    the target branch) and not comments (a comment changes no vote)."""
    reviewers = sorted(
        (
            str(r.get("id")),
            r.get("vote"),
            bool(r.get("isRequired")),
            bool(r.get("hasDeclined")),
        )
        for r in item.get("reviewers") or []
        if isinstance(r, dict)
    )
    source = item.get("lastMergeSourceCommit")
    basis = [
        item.get("status"),
        item.get("closedDate"),
        item.get("isDraft"),
        item.get("title"),
        (item.get("description") or "")[: settings.LIST_DESCRIPTION_LIMIT],
        item.get("sourceRefName"),
        item.get("targetRefName"),
        source.get("commitId") if isinstance(source, dict) else None,
        reviewers,
    ]
    return hashlib.sha256(json.dumps(basis, default=str).encode()).hexdigest()[:20]


def parse_pull_request(item: Any, org_url: str) -> JsonDict:
    """A pull request (list item or single GET) as a ``pull_requests`` row; MalformedItem names
    every problem."""
    f = _Fields(item)
    number = f.integer("pullRequestId", required=True)
    repository_id = f.text("repository", "id", required=True)
    repository_name = f.text("repository", "name")
    project_name = f.text("repository", "project", "name")
    project_id = f.text("repository", "project", "id")
    web_url = None
    if repository_name and project_name and number is not None:
        web_url = f"{org_url}/{quote(project_name)}/_git/{quote(repository_name)}/pullrequest/{number}"
    artifact = None
    if project_id and repository_id and number is not None:
        artifact = f"vstfs:///Git/PullRequestId/{project_id}%2f{repository_id}%2f{number}"
    row = {
        "id": number,
        "repository_id": repository_id,
        "repository_name": repository_name,
        "project_id": project_id,
        "project_name": project_name,
        "status": f.one_of("status", allowed=PR_STATUSES, required=True),
        "is_draft": f.boolean("isDraft"),
        "title": f.text("title"),
        "description": f.text("description"),
        "author_id": f.text("createdBy", "id"),
        "author_name": f.text("createdBy", "displayName"),
        "author_email": f.text("createdBy", "uniqueName"),
        "created_at": f.timestamp("creationDate", required=True),
        "closed_at": f.timestamp("closedDate"),
        "source_ref": branch(f.text("sourceRefName")),
        "target_ref": branch(f.text("targetRefName")),
        "merge_status": f.text("mergeStatus"),
        "last_merge_source_commit": f.text("lastMergeSourceCommit", "commitId"),
        "last_merge_target_commit": f.text("lastMergeTargetCommit", "commitId"),
        "last_merge_commit": f.text("lastMergeCommit", "commitId"),
        "artifact_id": f.text("artifactId") or artifact,
        "url": f.text("url"),
        "web_url": web_url,
        "change_hash": None,
        "payload": item,
    }
    reviewers = item.get("reviewers") if isinstance(item, dict) else None
    if reviewers is not None and not isinstance(reviewers, list):
        f.problems.append(f"'reviewers' is not a list: {reviewers!r}"[:200])
    f.check()
    row["change_hash"] = change_hash(item)
    return row


def description_cut(row: JsonDict) -> bool:
    """Whether a list item's description may have been cut at 400 characters."""
    description = row.get("description")
    return isinstance(description, str) and len(description) >= settings.LIST_DESCRIPTION_LIMIT


@dataclass
class ReviewActivity:
    """What a reviewer did, read from the pull request's threads."""

    last_vote: int | None = None  # the result of their latest VoteUpdate
    voted_at: datetime | None = None  # when they cast it
    first_voted_at: datetime | None = None  # their first vote, whatever it was (time to first review)
    vote_reset_at: datetime | None = None  # when a push reset it afterwards
    comment_count: int = 0
    last_commented_at: datetime | None = None
    first_commented_at: datetime | None = None


def _property(properties: Any, name: str) -> str | None:
    """A thread property's value (``{"$type": …, "$value": …}``) as text."""
    if not isinstance(properties, dict):
        return None
    value = properties.get(name)
    if isinstance(value, dict):
        value = value.get("$value")
    return None if value is None else str(value)


def _identity_ids(value: str | None, identities: Any) -> list[str]:
    """Identity ids a system thread names: indexes into its ``identities`` (``"1"``) or ids."""
    if not value:
        return []
    out: list[str] = []
    for part in value.replace(";", ",").split(","):
        key = part.strip()
        if not key:
            continue
        ref = identities.get(key) if isinstance(identities, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("id"), str):
            out.append(ref["id"])
        else:
            out.append(key)
    return out


def review_activity(threads: list[Any]) -> tuple[dict[str, ReviewActivity], list[tuple[Any, str]]]:
    """Votes (with their times), resets and comments per identity id, from a pull request's
    threads; and the threads that could not be read, with the reason."""
    activity: dict[str, ReviewActivity] = {}
    bad: list[tuple[Any, str]] = []
    dated: list[tuple[datetime, JsonDict]] = []
    for thread in threads:
        if not isinstance(thread, dict):
            bad.append((thread, f"thread is a {type(thread).__name__}, not a JSON object"))
            continue
        if thread.get("isDeleted"):
            continue
        try:
            published = parse_timestamp(thread.get("publishedDate"))
        except ValueError:
            published = None
        if published is None:
            bad.append((thread, f"'publishedDate' is not an ISO 8601 timestamp: {thread.get('publishedDate')!r}"))
            continue
        dated.append((published, thread))
    dated.sort(key=lambda entry: (entry[0], str(entry[1].get("id"))))
    for published, thread in dated:
        properties = thread.get("properties")
        identities = thread.get("identities")
        kind = _property(properties, "CodeReviewThreadType")
        if kind == "VoteUpdate":
            voters = _identity_ids(_property(properties, "CodeReviewVotedByIdentity"), identities)
            result = _property(properties, "CodeReviewVoteResult")
            try:
                vote = int(result or "")
            except ValueError:
                bad.append((thread, f"'CodeReviewVoteResult' is not a vote: {result!r}"))
                continue
            for voter in voters:
                entry = activity.setdefault(voter, ReviewActivity())
                entry.last_vote, entry.voted_at, entry.vote_reset_at = vote, published, None
                entry.first_voted_at = entry.first_voted_at or published
        elif kind in ("ResetMultipleVotes", "ResetAllVotes"):
            if kind == "ResetAllVotes":
                voters = [voter for voter, entry in activity.items() if entry.voted_at is not None]
            else:
                named = _property(properties, "CodeReviewResetMultipleVotesExampleVoterIdentities")
                voters = _identity_ids(named, identities)
            for voter in voters:
                entry = activity.setdefault(voter, ReviewActivity())
                if entry.voted_at is not None and published >= entry.voted_at:
                    entry.vote_reset_at = published
        elif kind is None:
            for comment in thread.get("comments") or []:
                if not isinstance(comment, dict) or comment.get("isDeleted") or comment.get("commentType") != "text":
                    continue
                author = comment.get("author")
                author_id = author.get("id") if isinstance(author, dict) else None
                if not isinstance(author_id, str):
                    continue
                try:
                    at = parse_timestamp(comment.get("publishedDate")) or published
                except ValueError:
                    at = published
                entry = activity.setdefault(author_id, ReviewActivity())
                entry.comment_count += 1
                if entry.last_commented_at is None or at > entry.last_commented_at:
                    entry.last_commented_at = at
                if entry.first_commented_at is None or at < entry.first_commented_at:
                    entry.first_commented_at = at
    return activity, bad


def parse_reviewer(item: Any, pull_request: JsonDict, activity: dict[str, ReviewActivity]) -> JsonDict:
    f = _Fields(item)
    reviewer_id = f.text("id", required=True)
    seen = activity.get(reviewer_id or "") or ReviewActivity()
    row = {
        "pull_request_id": pull_request["id"],
        "reviewer_id": reviewer_id,
        "repository_id": pull_request["repository_id"],
        "display_name": f.text("displayName"),
        "unique_name": f.text("uniqueName"),
        "vote": f.integer("vote", required=True),
        "is_required": bool(f.boolean("isRequired")),
        "has_declined": bool(f.boolean("hasDeclined")),
        "is_flagged": bool(f.boolean("isFlagged")),
        "is_container": bool(f.boolean("isContainer")),
        "voted_at": seen.voted_at,
        "first_voted_at": seen.first_voted_at,
        "last_vote": seen.last_vote,
        "vote_reset_at": seen.vote_reset_at,
        "comment_count": seen.comment_count,
        "last_commented_at": seen.last_commented_at,
        "first_commented_at": seen.first_commented_at,
        "payload": item,
    }
    f.check()
    return row


def parse_commit(item: Any, pull_request: JsonDict) -> JsonDict:
    f = _Fields(item)
    row = {
        "pull_request_id": pull_request["id"],
        "commit_id": f.text("commitId", required=True),
        "repository_id": pull_request["repository_id"],
        "author_name": f.text("author", "name"),
        "author_email": f.text("author", "email"),
        "authored_at": f.timestamp("author", "date"),
        "committer_name": f.text("committer", "name"),
        "committer_email": f.text("committer", "email"),
        "committed_at": f.timestamp("committer", "date"),
        "comment": f.text("comment"),
        "url": f.text("url"),
        "payload": item,
    }
    f.check()
    return row


def parse_work_item_ref(item: Any, pull_request: JsonDict) -> JsonDict:
    """A linked work item (``{id, url}``; the id is a string in the API) as a row."""
    f = _Fields(item)
    raw = item.get("id") if isinstance(item, dict) else None
    work_item_id: int | None = None
    if raw is None:
        f.problems.append("missing required field 'id'")
    elif isinstance(raw, int) and not isinstance(raw, bool):
        work_item_id = raw
    elif isinstance(raw, str) and raw.strip().isdigit():
        work_item_id = int(raw)
    else:
        f.problems.append(f"'id' is not a work item id: {raw!r}"[:200])
    row = {
        "pull_request_id": pull_request["id"],
        "work_item_id": work_item_id,
        "repository_id": pull_request["repository_id"],
        "url": f.text("url"),
        "payload": item,
    }
    f.check()
    return row


def item_key(item: Any, *, fallback: str) -> str:
    """A readable key for a quarantined item: its ``pullRequestId`` (or ``codeReviewId``), ``id`` or ``commitId``."""
    if isinstance(item, dict):
        for key in ("pullRequestId", "codeReviewId", "id", "commitId"):
            value = item.get(key)
            if isinstance(value, int | str) and not isinstance(value, bool):
                return f"{fallback} {key}={value}"
    return fallback
