"""What the delivery marts must say, computed from a sandbox tenant's worlds.

The planning world (work items and their change lists) and the GitHub world (pull requests,
reviews, commits) are the truth every simulator renders; these functions read them directly,
never the warehouse, so comparing them with the marts checks the whole path: simulators,
connectors, staging, the unified work models and the delivery marts. Sprint bounds are the
only thing taken from the warehouse (each tracker has its own notion of a sprint's start and
end: Jira's exact moments, Azure's whole days); tests/work_expectations.py does the same.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import mean
from zoneinfo import ZoneInfo

from connectors.sandbox.github.world import GitHubWorld, PullRequest
from connectors.sandbox.work.world import BLOCKED, WorkItem, WorkWorld
from tests.work_expectations import Bounds, ItemScope, first_in_progress_at, sprint_scope

DAY = 86400.0


# -- small helpers ---------------------------------------------------------------------------


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def overlap_seconds(start: datetime, end: datetime, window_start: datetime, window_end: datetime) -> float:
    return max(0.0, (min(end, window_end) - max(start, window_start)).total_seconds())


def blocked_intervals(item: WorkItem, as_of: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches the item spent in the Blocked status (the open one up to ``as_of``)."""
    intervals: list[tuple[datetime, datetime]] = []
    since: datetime | None = None
    for change in item.changes:
        if change.field != "status" or change.at >= as_of:
            continue
        if change.to_value == BLOCKED and since is None:
            since = change.at
        elif change.to_value != BLOCKED and since is not None:
            intervals.append((since, change.at))
            since = None
    if since is not None:
        intervals.append((since, as_of))
    return intervals


# -- people (int_people's rules, from the worlds) --------------------------------------------


@dataclass(frozen=True)
class People:
    """Who is a person (their email) and how GitHub logins map to them."""

    emails: frozenset[str]
    email_of_login: dict[str, str]

    def of_commit(self, email: str | None, login: str | None) -> str | None:
        if email is not None and email.lower() in self.emails:
            return email.lower()
        return self.email_of_login.get(login or "")

    def of_login(self, login: str) -> str | None:
        return self.email_of_login.get(login)


def people(work: WorkWorld, github: GitHubWorld) -> People:
    """A GitHub login is the person whose email its linked commits carry most often."""
    used: dict[str, Counter[str]] = {}
    for _, commit in github.commits():
        if commit.author is not None and not commit.author_email.endswith("noreply.github.com"):
            used.setdefault(commit.author.login, Counter())[commit.author_email.lower()] += 1
    email_of_login = {login: min(c, key=lambda e: (-c[e], e)) for login, c in used.items()}
    emails = {p.email for p in work.people} | set(email_of_login.values())
    emails |= {i.assignee for i in work.items if i.assignee} | {i.reporter for i in work.items}
    return People(frozenset(emails), email_of_login)


def primary_projects(work: WorkWorld) -> dict[str, str]:
    """Each assignee's project with the most items assigned to them (ties: the smallest key)."""
    counts: dict[str, Counter[str]] = {}
    for item in work.items:
        if item.assignee:
            counts.setdefault(item.assignee, Counter())[item.project_key] += 1
    return {person: min(c, key=lambda k: (-c[k], k)) for person, c in counts.items()}


# -- pull requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class PullRequestFacts:
    pr: PullRequest
    first_review_at: datetime | None
    review_count: int
    reviewer_count: int

    @property
    def hours_to_first_review(self) -> float | None:
        if self.first_review_at is None:
            return None
        return (self.first_review_at - self.pr.created_at).total_seconds() / 3600

    @property
    def merged_without_review(self) -> bool:
        merged = self.pr.merged_at
        return merged is not None and (self.first_review_at is None or self.first_review_at > merged)


def pull_request_facts(pr: PullRequest) -> PullRequestFacts:
    """Reviews count when submitted (not pending) by someone other than the author."""
    counted = [
        r for r in pr.reviews if r.state != "PENDING" and r.submitted_at is not None and r.user.login != pr.author.login
    ]
    first = min((r.submitted_at for r in counted if r.submitted_at is not None), default=None)
    return PullRequestFacts(pr, first, len(counted), len({r.user.login for r in counted}))


def pr_health(prs: Iterable[PullRequest], timezone: str) -> dict[tuple[str, date], dict[str, float | None]]:
    """fct_pr_health's figures per (repository, Monday of the opening week in ``timezone``)."""
    zone = ZoneInfo(timezone)
    groups: dict[tuple[str, date], list[PullRequestFacts]] = {}
    for pr in prs:
        local = pr.created_at.astimezone(zone).date()
        week = local - timedelta(days=local.weekday())
        groups.setdefault((pr.repo.full_name, week), []).append(pull_request_facts(pr))
    figures: dict[tuple[str, date], dict[str, float | None]] = {}
    for key, facts in groups.items():
        hours = [f.hours_to_first_review for f in facts if f.hours_to_first_review is not None]
        reviewed = len(hours)
        figures[key] = {
            "prs_opened": len(facts),
            "prs_reviewed": reviewed,
            "prs_merged": sum(f.pr.merged_at is not None for f in facts),
            "merged_without_review": sum(f.merged_without_review for f in facts),
            "share_reviewed": 100 * reviewed / len(facts),
            "p50_hours_to_first_review": percentile_cont(hours, 0.5),
            "p90_hours_to_first_review": percentile_cont(hours, 0.9),
            "mean_reviews_per_pr": mean(f.review_count for f in facts),
            "mean_reviewers_per_pr": mean(f.reviewer_count for f in facts),
        }
    return figures


# -- sprints -------------------------------------------------------------------------------


def _scoped(work: WorkWorld, sprint_id: int, bounds: Bounds) -> list[tuple[WorkItem, ItemScope]]:
    pairs = []
    for item in work.items:
        scope = sprint_scope(item, sprint_id, bounds)
        if scope is not None:
            pairs.append((item, scope))
    return pairs


def sprint_figures(
    work: WorkWorld,
    sprint_id: int,
    bounds: Bounds,
    as_of: datetime,
    merged_prs: dict[int, PullRequest] | None = None,
    *,
    reviews: bool = True,
) -> dict[str, float | None]:
    """fct_sprints' figures of one sprint; ``bounds`` is its window [start, end) as the mart has it.

    ``merged_prs``: the pull requests the warehouse holds, by GitHub-world id (None: skip them).
    ``reviews``: also the review figures, which follow the GitHub world's review history (Azure
    DevOps keeps only each reviewer's latest vote, so its first review is another moment).
    """
    scoped = _scoped(work, sprint_id, bounds)
    completed = [(item, scope) for item, scope in scoped if scope.completed]
    committed = sum(scope.points_at_start or 0 for _, scope in scoped if scope.in_at_start)
    kept = sum(scope.points_at_start or 0 for _, scope in completed if scope.in_at_start)
    velocity = sum(scope.points_at_end or 0 for _, scope in completed)
    done_stories = {item.id for item, _ in completed if item.type == "story"}
    defects = sum(1 for bug in work.items if bug.type == "bug" and bug.caused_by_id in done_stories)
    cycle = []
    for item, _ in completed:
        started, done = first_in_progress_at(item), item.resolved_at
        if started is not None and done is not None:
            cycle.append((done - started).total_seconds() / DAY)
    blocked = sum(
        overlap_seconds(start, end, bounds.start, bounds.end)
        for item, _ in scoped
        for start, end in blocked_intervals(item, as_of)
    )
    figures: dict[str, float | None] = {
        "committed_points": committed,
        "completed_points": velocity,
        "say_do_ratio": kept / committed if committed and bounds.start <= as_of else None,
        "throughput": len(completed),
        "completed_stories": sum(item.type == "story" for item, _ in completed),
        "completed_bugs": sum(item.type == "bug" for item, _ in completed),
        "completed_tasks": sum(item.type == "task" for item, _ in completed),
        "post_release_defects": defects,
        "defect_density": 100 * defects / velocity if velocity else None,
        "mean_cycle_time_days": mean(cycle) if cycle else None,
        "scope_items": len(scoped),
        "blocked_days_total": blocked / DAY,
    }
    if merged_prs is not None:
        linked = {pr_id for item, _ in scoped for pr_id in item.pull_request_ids}
        merged = [
            pull_request_facts(merged_prs[pr_id])
            for pr_id in sorted(linked)
            if pr_id in merged_prs
            and (merged_at := merged_prs[pr_id].merged_at) is not None
            and bounds.start <= merged_at < bounds.end
        ]
        hours = [f.hours_to_first_review for f in merged if f.hours_to_first_review is not None]
        figures["prs_merged"] = len(merged)
        if reviews:
            figures["share_reviewed"] = 100 * len(hours) / len(merged) if merged else None
            figures["mean_hours_to_first_review"] = mean(hours) if hours else None
    return figures


def developer_figures(
    work: WorkWorld,
    github: GitHubWorld,
    sprint_id: int,
    project_key: str,
    bounds: Bounds,
) -> dict[str, dict[str, float | None]]:
    """fct_developer_sprints' figures of one sprint, by person (GitHub tenants)."""
    who = people(work, github)
    scoped = _scoped(work, sprint_id, bounds)
    members = {item.assignee for item, _ in scoped if item.assignee}
    members |= {person for person, key in primary_projects(work).items() if key == project_key}

    def inside(moment: datetime | None) -> bool:
        return moment is not None and bounds.start <= moment < bounds.end

    commits: Counter[str] = Counter()
    seen: set[str] = set()
    for _, commit in github.commits():
        if commit.sha in seen:
            continue
        seen.add(commit.sha)
        author = who.of_commit(commit.author_email, commit.author.login if commit.author else None)
        if author is not None and inside(commit.authored_at):
            commits[author] += 1

    authored: Counter[str] = Counter()
    merged: Counter[str] = Counter()
    reviewed: dict[str, set[int]] = {}
    turnaround: dict[str, list[float]] = {}
    for pr in github.pull_requests():
        author = who.of_login(pr.author.login)
        if author is not None:
            authored[author] += inside(pr.created_at)
            merged[author] += inside(pr.merged_at)
        first: dict[str, datetime] = {}
        for review in pr.reviews:
            reviewer = who.of_login(review.user.login)
            if review.state == "PENDING" or review.submitted_at is None or reviewer is None or reviewer == author:
                continue
            if inside(review.submitted_at):
                reviewed.setdefault(reviewer, set()).add(pr.id)
            first[reviewer] = min(first.get(reviewer, review.submitted_at), review.submitted_at)
        for reviewer, at in first.items():
            if inside(at):
                turnaround.setdefault(reviewer, []).append((at - pr.created_at).total_seconds() / 3600)

    figures: dict[str, dict[str, float | None]] = {}
    for person in members:
        done = [(item, scope) for item, scope in scoped if scope.completed and item.assignee == person]
        stories = {item.id for item, _ in done if item.type == "story"}
        figures[person] = {
            "items_completed": len(done),
            "points_completed": sum(scope.points_at_end or 0 for _, scope in done),
            "commits": commits[person],
            "prs_authored": authored[person],
            "prs_merged": merged[person],
            "prs_reviewed": len(reviewed.get(person, ())),
            "mean_review_turnaround_hours": mean(turnaround[person]) if person in turnaround else None,
            "defects_attributed": sum(1 for b in work.items if b.type == "bug" and b.caused_by_id in stories),
        }
    return figures


def team_projects(projects: dict[str, str], teams: dict[str, str]) -> dict[str, list[str]]:
    """dim_teams' rule: a team (slug → name) owns the projects (key → name as its tracker names it)
    whose name starts with the team's name or slug, ignoring case."""
    return {
        slug: sorted(
            key
            for key, project in projects.items()
            if project.lower().startswith(name.lower()) or project.lower().startswith(slug.lower())
        )
        for slug, name in teams.items()
    }
