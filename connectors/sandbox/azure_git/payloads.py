"""The GitHub world's repositories and pull requests in Azure DevOps Git's JSON shapes.

Key sets follow real responses (``shared/fixtures/azure_devops``: the az devops CLI
recordings and DevLake's raw pull requests and commits). How the GitHub world maps onto
Azure DevOps, decided here once so that the simulator, its tests and the connector's tests
agree:

* **Project.** Every repository lives in one project: the tenant's first planning-world
  project (``azure_common.project_name``, e.g. ``PLAT``). The other planning projects exist
  but hold no repositories.
* **Ids.** Repository GUIDs and org-wide ``pullRequestId`` values come from ``azure_common``
  (the Boards simulator links work items to the same ids); people get a stable identity
  GUID from their GitHub user id, and their ``uniqueName`` is their email.
* **Status.** open → ``active``; merged → ``completed`` (``closedDate`` = merge time,
  ``lastMergeCommit`` = the merge commit); closed unmerged → ``abandoned``.
* **Description.** The GitHub body; one pull request in four also carries a testing
  checklist that makes it longer than 400 characters, so lists cut it
  (:data:`LIST_DESCRIPTION_LIMIT`) and only the single-PR GET has it whole.
* **Reviewers and votes.** The requested reviewers and everyone who reviewed before the pull
  request closed (the GitHub world drops requested reviewers on closing, so a reviewer who
  never acted leaves the list then, like a reviewer removed in Azure DevOps). A reviewer's
  vote comes from their latest review that casts one: APPROVED → 10 (5, "approved with
  suggestions", for one approval in seven), CHANGES_REQUESTED → -10 (-5, "waiting for
  author", for one in three), DISMISSED → 10 reset to 0 by the next push. COMMENTED casts no
  vote (a comment never changes a vote in Azure DevOps), so a reviewer who only commented
  votes 0. Votes are frozen once the pull request is closed.
* **Threads.** Each vote is a system thread (``CodeReviewThreadType`` ``VoteUpdate``, with
  ``CodeReviewVoteResult`` and ``CodeReviewVotedByIdentity`` naming an entry of the thread's
  ``identities``), each reset a ``ResetMultipleVotes`` thread, each comment or review body a
  text thread, each later push a ``RefUpdate`` thread and the initial reviewers a
  ``ReviewersUpdate`` thread: the times a vote was cast come from here.
* **Work items.** The planning world's items whose ``pull_request_ids`` hold the PR's id.

Timestamps carry seven fractional digits (100 ns ticks) as Azure DevOps sends them; the
seventh digit is below a microsecond, so parsed values equal the world's.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.sandbox.azure_common import project_guid, project_name, pull_request_id, repository_guid
from connectors.sandbox.github.world import GitHubWorld, PullRequest, Repository, Review, User
from connectors.sandbox.work.world import WorkWorld

JsonDict = dict[str, Any]

#: List answers cut ``description`` to this many characters ("truncated up to 400 symbols").
LIST_DESCRIPTION_LIMIT = 400

_TESTING_NOTES = (
    "## Testing\r\n"
    "- [x] Unit tests cover the new branches, including the error paths and the retry limits\r\n"
    "- [x] Integration tests pass against the staging environment with production-like data\r\n"
    "- [x] Checked the dashboards for regressions in latency and error rates after the deploy\r\n"
    "- [ ] Load test with twice the usual traffic (scheduled for the next performance run)\r\n"
    "\r\n## Rollout\r\nBehind a feature flag; enable for internal tenants first, then everyone."
)


def _hash(*parts: object) -> int:
    return zlib.crc32(":".join(str(part) for part in parts).encode())


def _guid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, ":".join(str(part) for part in parts)))


def azure_time(moment: datetime, salt: int = 0) -> str:
    """A timestamp as Azure DevOps writes it: UTC, seven fractional digits, ``Z``."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}{salt % 10}Z"


def git_time(moment: datetime) -> str:
    """A commit's author or committer date (whole seconds, as git stores them)."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


@dataclass(frozen=True)
class Org:
    """Where one request's answers point: the organisation and its Git project."""

    base: str  # the sandbox URL of the Azure tools, e.g. http://127.0.0.1:8765/azure
    name: str  # <tenant>-eng
    tenant: str
    project: str  # the project holding every repository
    project_id: str

    @property
    def url(self) -> str:
        return f"{self.base}/{self.name}"

    def api(self, path: str) -> str:
        return f"{self.url}/{self.project_id}/_apis/git/{path}"


def git_project(work: WorkWorld) -> str:
    """The name of the project that holds the tenant's repositories (the first planning project)."""
    return project_name(work.projects[0])


def org_for(base: str, world: GitHubWorld, work: WorkWorld) -> Org:
    name = git_project(work)
    return Org(base=base, name=world.org, tenant=world.slug, project=name, project_id=project_guid(world.slug, name))


# -- people ----------------------------------------------------------------------------------


def identity_guid(user: User) -> str:
    """The stable Azure DevOps identity id of a person (from their GitHub user id)."""
    return _guid("azure-identity", user.id)


def identity(org: Org, user: User) -> JsonDict:
    """An ``IdentityRef`` as pull requests, reviewers and comments carry it."""
    guid = identity_guid(user)
    descriptor = "aad." + base64.b64encode(guid.encode()).decode().rstrip("=")
    return {
        "displayName": user.name,
        "url": f"{org.base}/_vssps/_apis/Identities/{guid}",
        "_links": {"avatar": {"href": f"{org.url}/_apis/GraphProfile/MemberAvatars/{descriptor}"}},
        "id": guid,
        "uniqueName": user.email,
        "imageUrl": f"{org.url}/_api/_common/identityImage?id={guid}",
        "descriptor": descriptor,
    }


# -- what a pull request looks like in Azure DevOps ------------------------------------------


def status_of(pr: PullRequest) -> str:
    """``active``, ``completed`` (merged) or ``abandoned`` (closed unmerged)."""
    if pr.closed_at is None:
        return "active"
    return "completed" if pr.merged_at is not None else "abandoned"


def description_of(pr: PullRequest) -> str | None:
    """The whole description (the single-PR GET); lists cut it at 400 characters."""
    if _hash("description", pr.id) % 4 != 0:
        return pr.body
    return f"{pr.body}\r\n\r\n{_TESTING_NOTES}" if pr.body else _TESTING_NOTES


@dataclass(frozen=True)
class VoteEvent:
    at: datetime
    user: User
    vote: int  # the vote cast; 0 for a reset
    kind: str  # "vote" | "reset"


@dataclass(frozen=True)
class ReviewerVote:
    """One reviewer of a pull request as Azure DevOps shows them."""

    user: User
    vote: int
    voted_at: datetime | None  # when the latest vote was cast (its VoteUpdate thread)
    reset_at: datetime | None  # when a push reset that vote to 0, if it did
    commented: bool  # left a comment or a review body (a text thread), at any time
    is_required: bool


def _cast_vote(review: Review) -> int | None:
    if review.state == "APPROVED":
        return 5 if _hash("suggestions", review.id) % 7 == 0 else 10
    if review.state == "DISMISSED":
        return 10  # an approval, reset by the next push
    if review.state == "CHANGES_REQUESTED":
        return -5 if _hash("waiting", review.id) % 3 == 0 else -10
    return None


def _open_reviews(pr: PullRequest) -> list[Review]:
    """Reviews submitted while the pull request was open (later ones are only comments)."""
    reviews = [r for r in pr.reviews if r.submitted_at is not None]
    if pr.closed_at is not None:
        reviews = [r for r in reviews if r.submitted_at is not None and r.submitted_at <= pr.closed_at]
    return sorted(reviews, key=lambda r: (r.submitted_at, r.id))


def _is_comment(review: Review) -> bool:
    """Whether a review leaves a text thread: a comment, or a vote with a message."""
    return review.state == "COMMENTED" or bool(review.body)


def _reset_time(pr: PullRequest, voted_at: datetime) -> datetime:
    pushes = sorted(c.committed_at for c in pr.commits if c.committed_at > voted_at)
    return pushes[0] if pushes else voted_at + timedelta(minutes=1)


def vote_events(pr: PullRequest) -> list[VoteEvent]:
    """Every vote cast and reset on ``pr``, oldest first."""
    events: list[VoteEvent] = []
    for review in _open_reviews(pr):
        cast = _cast_vote(review)
        if cast is None or review.submitted_at is None:
            continue
        events.append(VoteEvent(review.submitted_at, review.user, cast, "vote"))
        if review.state == "DISMISSED":
            events.append(VoteEvent(_reset_time(pr, review.submitted_at), review.user, 0, "reset"))
    return sorted(events, key=lambda e: (e.at, e.kind == "reset"))


def reviewer_votes(pr: PullRequest) -> list[ReviewerVote]:
    """The reviewers of ``pr`` with their current votes, in the order Azure DevOps lists them."""
    order: list[User] = []
    for user in [*pr.requested_reviewers, *(r.user for r in _open_reviews(pr))]:
        if user.login != pr.author.login and all(u.login != user.login for u in order):
            order.append(user)
    events = vote_events(pr)
    out: list[ReviewerVote] = []
    for user in order:
        vote, voted_at, reset_at = 0, None, None
        for event in events:
            if event.user.login != user.login:
                continue
            vote = event.vote
            if event.kind == "vote":
                voted_at, reset_at = event.at, None
            else:
                reset_at = event.at
        commented = any(r.user.login == user.login and _is_comment(r) for r in pr.reviews if r.submitted_at)
        out.append(
            ReviewerVote(
                user=user,
                vote=vote,
                voted_at=voted_at,
                reset_at=reset_at,
                commented=commented,
                is_required=_hash("required", pr.id, user.id) % 4 == 0,
            )
        )
    return out


def linked_work_item_ids(work: WorkWorld, pr: PullRequest) -> list[int]:
    """Ids of the planning world's items linked to ``pr``, ascending."""
    return sorted(item.id for item in work.items_of_pull_request(pr.id))


def _merge_commit(pr: PullRequest) -> str | None:
    """``lastMergeCommit``: the merge of a completed PR, the test merge of an active one."""
    if pr.merged_at is not None:
        return pr.merge_commit_sha
    if pr.closed_at is not None:
        return None
    return f"{_hash('merge', pr.id, pr.head_sha):08x}{_hash('merge2', pr.head_sha):08x}" + pr.head_sha[:24]


# -- payloads ------------------------------------------------------------------------------


def project_ref(org: Org, *, full: bool) -> JsonDict:
    if not full:
        return {
            "id": org.project_id,
            "name": org.project,
            "state": "unchanged",
            "visibility": "unchanged",
            "lastUpdateTime": "0001-01-01T00:00:00",
        }
    return {
        "id": org.project_id,
        "name": org.project,
        "url": f"{org.url}/_apis/projects/{org.project_id}",
        "state": "wellFormed",
        "revision": 400 + _hash(org.project_id) % 500,
        "visibility": "private",
        "lastUpdateTime": "2024-01-09T16:32:42.21Z",
    }


def repository_payload(org: Org, repo: Repository, *, full: bool = True) -> JsonDict:
    """A ``GitRepository``: whole in the repositories list, a reference inside pull requests."""
    guid = repository_guid(repo.id)
    payload: JsonDict = {
        "id": guid,
        "name": repo.name,
        "url": org.api(f"repositories/{guid}"),
        "project": project_ref(org, full=full),
    }
    if full:
        host = org.base.split("://", 1)[-1]
        payload.update(
            {
                "defaultBranch": f"refs/heads/{repo.default_branch}",
                "size": 1000 + 37 * len(repo.pulls),
                "remoteUrl": f"{org.url}/{org.project}/_git/{repo.name}",
                "sshUrl": f"git@ssh.{host}:v3/{org.name}/{org.project}/{repo.name}",
                "webUrl": f"{org.url}/{org.project}/_git/{repo.name}",
                "isDisabled": False,
                "isInMaintenance": False,
            }
        )
    return payload


def reviewer_payload(org: Org, pr_url: str, reviewer: ReviewerVote) -> JsonDict:
    ref = identity(org, reviewer.user)
    ref.pop("descriptor")
    payload: JsonDict = {"reviewerUrl": f"{pr_url}/reviewers/{ref['id']}", "vote": reviewer.vote, "hasDeclined": False}
    if reviewer.is_required:
        payload["isRequired"] = True
    payload["isFlagged"] = False
    payload.update(ref)
    return payload


def pull_request_payload(
    org: Org, world: GitHubWorld, pr: PullRequest, *, full: bool, work: WorkWorld | None = None
) -> JsonDict:
    """A ``GitPullRequest``: as lists show it (``full=False``: description cut, repository as a
    reference) or as ``GET …/pullRequests/{id}`` answers (with ``work``: ``workItemRefs``)."""
    guid = repository_guid(pr.repo.id)
    number = pull_request_id(world, pr)
    url = org.api(f"repositories/{guid}/pullRequests/{number}")
    status = status_of(pr)
    payload: JsonDict = {
        "repository": repository_payload(org, pr.repo, full=full),
        "pullRequestId": number,
        "codeReviewId": number,
        "status": status,
        "createdBy": identity(org, pr.author),
        "creationDate": azure_time(pr.created_at, number),
    }
    if pr.closed_at is not None:
        payload["closedDate"] = azure_time(pr.closed_at, number + 3)
    payload["title"] = pr.title
    description = description_of(pr)
    if description is not None:
        payload["description"] = description if full else description[:LIST_DESCRIPTION_LIMIT]
    payload["sourceRefName"] = f"refs/heads/{pr.head_ref}"
    payload["targetRefName"] = f"refs/heads/{pr.base_ref}"
    if status != "abandoned":
        payload["mergeStatus"] = "succeeded"
    payload["isDraft"] = pr.draft
    payload["mergeId"] = _guid("azure-merge", pr.id)
    for key, sha in (("lastMergeSourceCommit", pr.head_sha), ("lastMergeTargetCommit", pr.base_sha)):
        payload[key] = {"commitId": sha, "url": org.api(f"repositories/{guid}/commits/{sha}")}
    merge = _merge_commit(pr)
    if merge is not None:
        commit: JsonDict = {"commitId": merge, "url": org.api(f"repositories/{guid}/commits/{merge}")}
        if full and pr.merged_at is not None:
            signature = {"name": pr.author.name, "email": pr.author.email, "date": git_time(pr.merged_at)}
            commit = {
                "commitId": merge,
                "author": signature,
                "committer": signature,
                "comment": f"Merged PR {number}: {pr.title}",
                "url": commit["url"],
            }
        payload["lastMergeCommit"] = commit
    if pr.closed_at is not None:
        payload["closedBy"] = identity(org, pr.author)
    if status == "completed":
        payload["completionOptions"] = {
            "mergeCommitMessage": f"Merged PR {number}: {pr.title}",
            "deleteSourceBranch": True,
            "mergeStrategy": "squash",
        }
    payload["reviewers"] = [reviewer_payload(org, url, reviewer) for reviewer in reviewer_votes(pr)]
    if pr.labels:
        payload["labels"] = [{"id": _guid("azure-label", name), "name": name, "active": True} for name, _ in pr.labels]
    payload["url"] = url
    payload["supportsIterations"] = True
    if full:
        payload["artifactId"] = f"vstfs:///Git/PullRequestId/{org.project_id}%2f{guid}%2f{number}"
        payload["_links"] = {
            "self": {"href": url},
            "repository": {"href": org.api(f"repositories/{guid}")},
            "workItems": {"href": f"{url}/workitems"},
            "sourceBranch": {"href": org.api(f"repositories/{guid}/refs/heads/{pr.head_ref}")},
            "targetBranch": {"href": org.api(f"repositories/{guid}/refs/heads/{pr.base_ref}")},
            "statuses": {"href": f"{url}/statuses"},
        }
    if work is not None:
        payload["workItemRefs"] = [work_item_ref(org, item_id) for item_id in linked_work_item_ids(work, pr)]
    return payload


def work_item_ref(org: Org, item_id: int) -> JsonDict:
    """A ``ResourceRef`` to a work item (its ``id`` is a string, as the API sends it)."""
    return {"id": str(item_id), "url": f"{org.url}/_apis/wit/workItems/{item_id}"}


def commit_payload(org: Org, pr: PullRequest, index: int) -> JsonDict:
    """A ``GitCommitRef`` of ``pr.commits[index]``."""
    commit = pr.commits[index]
    guid = repository_guid(pr.repo.id)
    message = commit.message
    payload: JsonDict = {
        "commitId": commit.sha,
        "author": {"name": commit.author_name, "email": commit.author_email, "date": git_time(commit.authored_at)},
        "committer": {"name": commit.author_name, "email": commit.author_email, "date": git_time(commit.committed_at)},
        "comment": message if len(message) <= 100 else message[:100],
        "url": org.api(f"repositories/{guid}/commits/{commit.sha}"),
    }
    if len(message) > 100:
        payload["commentTruncated"] = True
    return payload


def _property(value: str) -> JsonDict:
    return {"$type": "System.String", "$value": value}


def _comment(org: Org, user: User, content: str, at: datetime, kind: str, salt: int) -> JsonDict:
    stamp = azure_time(at, salt)
    return {
        "id": 1,
        "parentCommentId": 0,
        "author": identity(org, user),
        "content": content,
        "publishedDate": stamp,
        "lastUpdatedDate": stamp,
        "lastContentUpdatedDate": stamp,
        "commentType": kind,
        "usersLiked": [],
    }


@dataclass(frozen=True)
class _Entry:
    at: datetime
    order: int  # among entries at the same moment
    kind: str  # "system" | "text"
    author: User
    content: str
    properties: JsonDict
    named: User | None = None  # the identity the properties refer to as "1"


def _thread_entries(pr: PullRequest) -> list[_Entry]:
    entries: list[_Entry] = []
    opened = _open_reviews(pr)
    initial = list(pr.requested_reviewers) or ([opened[0].user] if opened else [])
    if initial:
        names = ", ".join(u.name for u in initial)
        entries.append(
            _Entry(
                pr.created_at + timedelta(seconds=1), 0, "system", pr.author,
                f"{pr.author.name} added {names} as reviewers",
                {"CodeReviewThreadType": _property("ReviewersUpdate")},
            )
        )  # fmt: skip
    for commit in pr.commits:
        if commit.committed_at > pr.created_at:
            properties = {
                "CodeReviewThreadType": _property("RefUpdate"),
                "CodeReviewRefNewHeadCommit": _property(commit.sha),
            }
            content = f"{pr.author.name} updated the pull request"
            entries.append(_Entry(commit.committed_at, 1, "system", pr.author, content, properties))
    for event in vote_events(pr):
        if event.kind == "vote":
            properties = {
                "CodeReviewThreadType": _property("VoteUpdate"),
                "CodeReviewVoteResult": _property(str(event.vote)),
                "CodeReviewVotedByInitiatorIdentity": _property("1"),
                "CodeReviewVotedByIdentity": _property("1"),
            }
            content = f"{event.user.name} voted {event.vote}"
            entries.append(_Entry(event.at, 2, "system", event.user, content, properties, named=event.user))
        else:
            properties = {
                "CodeReviewThreadType": _property("ResetMultipleVotes"),
                "CodeReviewResetMultipleVotesExampleVoterIdentities": _property("1"),
                "CodeReviewResetMultipleVotesNumVoters": _property("1"),
            }
            content = f"{pr.author.name} pushed changes; the votes of 1 reviewer were reset"
            entries.append(_Entry(event.at, 3, "system", pr.author, content, properties, named=event.user))
    for review in pr.reviews:
        if review.submitted_at is not None and _is_comment(review):
            entries.append(_Entry(review.submitted_at, 4, "text", review.user, review.body or "Left a comment.", {}))
    return sorted(entries, key=lambda e: (e.at, e.order))


def threads_payload(org: Org, world: GitHubWorld, pr: PullRequest) -> list[JsonDict]:
    """Every comment thread of ``pr`` (system and text), oldest first, ids from 1."""
    number = pull_request_id(world, pr)
    url = org.api(f"repositories/{repository_guid(pr.repo.id)}/pullRequests/{number}/threads")
    threads: list[JsonDict] = []
    for index, entry in enumerate(_thread_entries(pr), start=1):
        stamp = azure_time(entry.at, number + index)
        thread: JsonDict = {
            "pullRequestThreadContext": None,
            "id": index,
            "publishedDate": stamp,
            "lastUpdatedDate": stamp,
            "comments": [_comment(org, entry.author, entry.content, entry.at, entry.kind, number + index)],
            "threadContext": None,
            "properties": entry.properties,
            "identities": {"1": identity(org, entry.named)} if entry.named is not None else None,
            "isDeleted": False,
            "_links": {"self": {"href": f"{url}/{index}"}},
        }
        if entry.kind == "text":
            thread["status"] = "closed" if pr.closed_at is not None else "active"
        threads.append(thread)
    return threads
