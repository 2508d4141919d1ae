"""JSON shapes of the GitHub REST API (version 2022-11-28) for the sandbox world's objects.

Key sets follow real responses (see ``shared/fixtures/github``): list items of
``/pulls`` (no ``merged``/``additions``… which only the single-PR endpoint has), reviews,
pull request commits, check runs, and repositories (full for ``GET /repos/{o}/{r}``, minimal
for ``GET /orgs/{org}/repos``). API URLs point at the sandbox itself (``api``), like a GitHub
Enterprise Server; web URLs use the same host.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from connectors.sandbox.github.world import (
    CheckRun,
    Commit,
    GitHubWorld,
    PullRequest,
    Repository,
    Review,
    User,
    node_id,
)

JsonDict = dict[str, Any]


def timestamp(moment: datetime | None) -> str | None:
    """GitHub's timestamp format: ISO 8601 in UTC with a ``Z`` and whole seconds."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def user_payload(user: User, api: str) -> JsonDict:
    url = f"{api}/users/{user.login}"
    return {
        "login": user.login,
        "id": user.id,
        "node_id": user.node_id,
        "avatar_url": f"{api}/avatars/u/{user.id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{api}/{user.login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": user.type,
        "site_admin": False,
    }


def org_payload(world: GitHubWorld, api: str) -> JsonDict:
    org = User(login=world.org, id=world.org_id, name=world.org, email="", team=None, type="Organization")
    payload = user_payload(org, api)
    payload["node_id"] = node_id("O", world.org_id)
    return payload


def repository_payload(world: GitHubWorld, repo: Repository, api: str, *, full: bool) -> JsonDict:
    url = f"{api}/repos/{repo.full_name}"
    html = f"{api}/{repo.full_name}"
    host = api.split("://", 1)[-1]
    open_count = sum(1 for pr in repo.pulls if pr.state == "open")
    payload: JsonDict = {
        "id": repo.id,
        "node_id": node_id("R", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": org_payload(world, api),
        "html_url": html,
        "description": repo.description,
        "fork": False,
        "url": url,
    }
    for name in (
        "forks", "keys", "collaborators", "teams", "hooks", "issue_events", "events", "assignees",
        "branches", "tags", "blobs", "git_tags", "git_refs", "trees", "statuses", "languages",
        "stargazers", "contributors", "subscribers", "subscription", "commits", "git_commits",
        "comments", "issue_comment", "contents", "compare", "merges", "archive", "downloads",
        "issues", "pulls", "milestones", "notifications", "labels", "releases", "deployments",
    ):  # fmt: skip
        payload[f"{name}_url"] = f"{url}/{name.replace('_', '/') if name.startswith('git_') else name}"
    payload.update(
        {
            "created_at": timestamp(repo.created_at),
            "updated_at": timestamp(repo.updated_at),
            "pushed_at": timestamp(repo.pushed_at),
            "git_url": f"git://{host}/{repo.full_name}.git",
            "ssh_url": f"git@{host}:{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "svn_url": html,
            "homepage": None,
            "size": 1000 + len(repo.pulls) * 37,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": repo.language,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_count,
            "license": None,
            "allow_forking": False,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [repo.team],
            "visibility": "private" if repo.private else "public",
            "forks": 0,
            "open_issues": open_count,
            "watchers": 0,
            "default_branch": repo.default_branch,
            "permissions": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
        }
    )
    if full:
        payload["custom_properties"] = {}
        payload["organization"] = payload["owner"]
        payload["network_count"] = 0
        payload["subscribers_count"] = len(world.teams.get(repo.team, []))
    return payload


def pull_request_payload(world: GitHubWorld, pr: PullRequest, api: str) -> JsonDict:
    repo_url = f"{api}/repos/{pr.full_name}"
    url = f"{repo_url}/pulls/{pr.number}"
    html = f"{api}/{pr.full_name}/pull/{pr.number}"
    issue = f"{repo_url}/issues/{pr.number}"
    statuses = f"{repo_url}/statuses/{pr.head_sha}"
    repo_payload = repository_payload(world, pr.repo, api, full=False)
    repo_payload.pop("permissions", None)
    owner = org_payload(world, api)
    author_association = "MEMBER" if pr.author.type == "User" else "NONE"
    return {
        "url": url,
        "id": pr.id,
        "node_id": node_id("PR", pr.repo.id, pr.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue,
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": user_payload(pr.author, api),
        "body": pr.body,
        "created_at": timestamp(pr.created_at),
        "updated_at": timestamp(pr.updated_at),
        "closed_at": timestamp(pr.closed_at),
        "merged_at": timestamp(pr.merged_at),
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [user_payload(u, api) for u in pr.requested_reviewers],
        "requested_teams": [],
        "labels": [
            {
                "id": zlib.crc32(f"{pr.repo.id}:{name}".encode()),
                "node_id": node_id("LA", pr.repo.id, name),
                "url": f"{repo_url}/labels/{name}",
                "name": name,
                "color": color,
                "default": name in {"bug", "enhancement", "documentation"},
                "description": None,
            }
            for name, color in pr.labels
        ],
        "milestone": None,
        "draft": pr.draft,
        "commits_url": f"{url}/commits",
        "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{repo_url}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments",
        "statuses_url": statuses,
        "head": {
            "label": f"{pr.repo.org}:{pr.head_ref}",
            "ref": pr.head_ref,
            "sha": pr.head_sha,
            "user": owner,
            "repo": repo_payload,
        },
        "base": {
            "label": f"{pr.repo.org}:{pr.base_ref}",
            "ref": pr.base_ref,
            "sha": pr.base_sha,
            "user": owner,
            "repo": repo_payload,
        },
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "issue": {"href": issue},
            "comments": {"href": f"{issue}/comments"},
            "review_comments": {"href": f"{url}/comments"},
            "review_comment": {"href": f"{repo_url}/pulls/comments{{/number}}"},
            "commits": {"href": f"{url}/commits"},
            "statuses": {"href": statuses},
        },
        "author_association": author_association,
        "auto_merge": None,
        "active_lock_reason": None,
    }


def review_payload(pr: PullRequest, review: Review, api: str) -> JsonDict:
    html = f"{api}/{pr.full_name}/pull/{pr.number}#pullrequestreview-{review.id}"
    pr_url = f"{api}/repos/{pr.full_name}/pulls/{pr.number}"
    return {
        "id": review.id,
        "node_id": node_id("PRR", pr.id, review.id),
        "user": user_payload(review.user, api),
        "body": review.body,
        "state": review.state,
        "html_url": html,
        "pull_request_url": pr_url,
        "author_association": "MEMBER",
        "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
        "submitted_at": timestamp(review.submitted_at),
        "commit_id": review.commit_id,
    }


def commit_payload(pr: PullRequest, commit: Commit, api: str) -> JsonDict:
    repo_url = f"{api}/repos/{pr.full_name}"
    committer = {"name": "GitHub", "email": "noreply@github.com", "date": timestamp(commit.committed_at)}
    return {
        "sha": commit.sha,
        "node_id": node_id("C", pr.repo.id, commit.sha),
        "commit": {
            "author": {
                "name": commit.author_name,
                "email": commit.author_email,
                "date": timestamp(commit.authored_at),
            },
            "committer": committer
            if commit.message.startswith("Apply suggestions")
            else {"name": commit.author_name, "email": commit.author_email, "date": timestamp(commit.committed_at)},
            "message": commit.message,
            "tree": {"sha": commit.sha[::-1], "url": f"{repo_url}/git/trees/{commit.sha[::-1]}"},
            "url": f"{repo_url}/git/commits/{commit.sha}",
            "comment_count": 0,
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
            },
        },
        "url": f"{repo_url}/commits/{commit.sha}",
        "html_url": f"{api}/{pr.full_name}/commit/{commit.sha}",
        "comments_url": f"{repo_url}/commits/{commit.sha}/comments",
        "author": user_payload(commit.author, api) if commit.author else None,
        "committer": user_payload(commit.author, api) if commit.author else None,
        "parents": [
            {
                "sha": commit.parent_sha,
                "url": f"{repo_url}/commits/{commit.parent_sha}",
                "html_url": f"{api}/{pr.full_name}/commit/{commit.parent_sha}",
            }
        ],
    }


def check_run_payload(world: GitHubWorld, repo: Repository, run: CheckRun, api: str) -> JsonDict:
    repo_url = f"{api}/repos/{repo.full_name}"
    html = f"{api}/{repo.full_name}/actions/runs/{run.check_suite_id}/job/{run.id}"
    short_repo = {"id": repo.id, "url": repo_url, "name": repo.name}
    pull_requests = [
        {
            "url": f"{repo_url}/pulls/{pr.number}",
            "id": pr.id,
            "number": pr.number,
            "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": short_repo},
            "base": {"ref": pr.base_ref, "sha": pr.base_sha, "repo": short_repo},
        }
        for pr in repo.pulls
        if pr.head_sha == run.head_sha and pr.state == "open"
    ]
    return {
        "id": run.id,
        "name": run.name,
        "node_id": node_id("CR", repo.id, run.id),
        "head_sha": run.head_sha,
        "external_id": f"{run.check_suite_id:x}-{run.id:x}",
        "url": f"{api}/repos/{repo.full_name}/check-runs/{run.id}",
        "html_url": html,
        "details_url": html,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": timestamp(run.started_at),
        "completed_at": timestamp(run.completed_at),
        "output": {
            "title": None,
            "summary": None,
            "text": None,
            "annotations_count": 0,
            "annotations_url": f"{api}/repos/{repo.full_name}/check-runs/{run.id}/annotations",
        },
        "check_suite": {"id": run.check_suite_id},
        "app": {
            "id": 15368,
            "client_id": "Iv1.05c79e9ad1f6bdfa",
            "slug": "github-actions",
            "node_id": "MDM6QXBwMTUzNjg=",
            "owner": {"login": "github", "id": 9919, "type": "Organization"},
            "name": "GitHub Actions",
            "description": "Automate your workflow from idea to production",
            "external_url": "https://help.github.com/en/actions",
            "html_url": "https://github.com/apps/github-actions",
            "created_at": "2018-07-30T09:30:17Z",
            "updated_at": "2024-04-10T20:33:16Z",
            "permissions": {"checks": "write", "contents": "write", "metadata": "read", "pull_requests": "write"},
            "events": ["check_run", "check_suite", "pull_request", "push", "workflow_dispatch"],
        },
        "pull_requests": pull_requests,
    }
