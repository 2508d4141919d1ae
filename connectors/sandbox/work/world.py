"""One tenant's planning world: projects, two-week sprints and work items with their history.

The same world is served by every tracker simulator (Jira, ClickUp, Azure Boards): each
renders these plain objects in its own API's shapes, field ids and status names. People and
teams come from the tenant's :class:`~connectors.sandbox.github.world.GitHubWorld`, so one
person has one email in every tool, and pull requests are linked to the work items they
implement (their titles, branches and bodies name the item the way the tenant's tracker
spells it: ``PLAT-12``, ``CU-86b1x2y3z`` or ``AB#1234``).

A world is a pure function of ``(seed, slug, now truncated to the day, scale, history_days)``;
:meth:`WorkWorld.advance` changes it deterministically (seeded by the number of advances).

Canonical statuses (each tool renames them): ``To Do`` → ``In Progress`` ⇄ ``Blocked`` →
``In Review`` → ``Done``. Every change an item went through is a :class:`Change` in
``item.changes`` (field ``status``, ``sprint``, ``assignee`` or ``story_points``), so a tool
with a changelog can serve the complete history, and the current values are the last ones.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from connectors.sandbox.github.world import truncate_to_day

if TYPE_CHECKING:
    from connectors.sandbox.github.world import GitHubWorld, PullRequest

T = TypeVar("T")

TODO, IN_PROGRESS, BLOCKED, IN_REVIEW, DONE = "To Do", "In Progress", "Blocked", "In Review", "Done"
STATUSES = (TODO, IN_PROGRESS, BLOCKED, IN_REVIEW, DONE)
STATUS_CATEGORY = {
    TODO: "todo",
    IN_PROGRESS: "in_progress",
    BLOCKED: "in_progress",
    IN_REVIEW: "in_progress",
    DONE: "done",
}

SPRINT_DAYS = 14
#: Nothing is finished in a sprint's last two days (see _plan_sprint).
QUIET_END = timedelta(days=2)
HISTORY_DAYS = 180

#: Trackers and git hosts a tenant can use; demo tenants have fixed mixes, others by hash.
TRACKERS = ("jira", "clickup", "azure_boards")
GIT_HOSTS = ("github", "azure_devops")
TOOL_MIX = {
    "acme": ("jira", "github"),
    "globex": ("clickup", "github"),
    "initech": ("azure_boards", "azure_devops"),
}

_STORY_TITLES = [
    "As a customer I can export invoices as CSV", "Checkout shows delivery estimates",
    "Admins can revoke API tokens", "Search suggests recent queries", "Team dashboard loads under 1 s",
    "Users can change their email address", "Webhook retries are visible in the UI",
    "Bulk edit of user roles", "Audit log can be filtered by actor", "Onboarding checklist for new teams",
    "Reports respect the account time zone", "Mobile app supports dark mode",
    "Password reset links expire after an hour", "SSO sign-in for enterprise plans",
    "Usage alerts by email", "Pagination on the projects list",
]  # fmt: skip
_BUG_TITLES = [
    "Invoice totals off by one cent", "Session expires while typing", "Export times out for large teams",
    "Duplicate webhook deliveries after retry", "Search returns archived projects",
    "Wrong week shown in reports on Sundays", "Crash when the avatar is missing",
    "Rate limiter blocks health checks", "Time zone shifts due dates by a day",
]  # fmt: skip
_TASK_TITLES = [
    "Upgrade the PostgreSQL driver", "Rotate staging secrets", "Add dashboards for queue depth",
    "Remove the legacy feature flag", "Write the runbook for failover", "Pin CI images",
]  # fmt: skip
_EPIC_TITLES = [
    "Self-serve billing", "Enterprise readiness", "Reporting v2", "Mobile parity",
    "Reliability quarter", "Onboarding revamp", "Platform hardening",
]  # fmt: skip
_POINTS = {"story": [1, 2, 3, 3, 5, 5, 8, 13], "bug": [1, 1, 2, 3], "task": [1, 2, 2, 3]}
_EXCEPTION_REASONS = [
    "Legacy module without a test harness; covered by end-to-end tests",
    "Hotfix for an outage; tests follow in the next sprint",
    "Generated code, excluded from coverage",
]


@dataclass
class Person:
    email: str
    name: str
    login: str  # the GitHub login (also used as a short handle by the other tools)
    team: str
    is_lead: bool = False


@dataclass
class Project:
    key: str  # e.g. PLAT
    name: str
    team: str
    id: int


@dataclass
class Sprint:
    id: int
    project_key: str
    number: int
    start: datetime
    end: datetime
    completed_at: datetime | None  # when it was closed; None while active or future

    @property
    def name(self) -> str:
        return f"{self.project_key} Sprint {self.number}"

    def state(self, now: datetime) -> str:
        if self.completed_at is not None and self.completed_at <= now:
            return "closed"
        return "active" if self.start <= now else "future"


@dataclass
class Change:
    """One field change; values are canonical (status names, sprint ids as text, emails, points)."""

    at: datetime
    field: str  # status | sprint | assignee | story_points
    from_value: str | None
    to_value: str | None
    author: str  # email of who made it
    kind: str = ""  # for sprint changes: added | removed | carried_over


@dataclass
class Dmt:
    """The Done-Means-Tested fields; None where the team left a field empty."""

    ac_quality: str | None = None  # incomplete | testable | final
    unit_test_task: bool | None = None
    unit_test_status: str | None = None  # not_started | in_progress | done | exception_approved
    coverage_pct: float | None = None
    pr_links: list[str] = field(default_factory=list)
    ci_evidence: str | None = None
    reviewer_signoff: bool | None = None
    exception: bool = False
    exception_reason: str | None = None
    exception_approver: str | None = None  # email
    exception_expires: date | None = None


@dataclass
class WorkItem:
    id: int  # unique in the tenant (Azure's System.Id, Jira's issue id)
    number: int  # per project: the 12 of PLAT-12
    project_key: str
    type: str  # story | bug | task | epic
    title: str
    description: str
    reporter: str  # email
    created_at: datetime
    initial_points: float | None
    changes: list[Change] = field(default_factory=list)
    parent_id: int | None = None  # the epic
    caused_by_id: int | None = None  # a post-release bug's story
    labels: list[str] = field(default_factory=list)
    dmt: Dmt = field(default_factory=Dmt)
    pull_request_ids: list[int] = field(default_factory=list)  # GitHub world pull request ids
    clickup_id: str = ""

    @property
    def key(self) -> str:
        return f"{self.project_key}-{self.number}"

    def _last(self, name: str, initial: str | None) -> str | None:
        value = initial
        for change in self.changes:
            if change.field == name:
                value = change.to_value
        return value

    @property
    def status(self) -> str:
        return self._last("status", TODO) or TODO

    @property
    def status_category(self) -> str:
        return STATUS_CATEGORY[self.status]

    @property
    def assignee(self) -> str | None:
        return self._last("assignee", None)

    @property
    def sprint_id(self) -> int | None:
        value = self._last("sprint", None)
        return int(value) if value else None

    @property
    def sprint_ids(self) -> list[int]:
        """Every sprint the item has been in, oldest first (Jira's Sprint field keeps closed ones)."""
        seen: list[int] = []
        for change in self.changes:
            if change.field == "sprint" and change.to_value and int(change.to_value) not in seen:
                seen.append(int(change.to_value))
        return seen

    @property
    def story_points(self) -> float | None:
        value = self._last("story_points", None if self.initial_points is None else _points_text(self.initial_points))
        return None if value is None else float(value)

    @property
    def updated_at(self) -> datetime:
        return max([self.created_at, *(c.at for c in self.changes)])

    @property
    def resolved_at(self) -> datetime | None:
        """When it last became Done (None unless it is Done now)."""
        if self.status != DONE:
            return None
        return max(c.at for c in self.changes if c.field == "status" and c.to_value == DONE)

    @property
    def first_in_progress_at(self) -> datetime | None:
        return next((c.at for c in self.changes if c.field == "status" and c.to_value == IN_PROGRESS), None)

    def blocked_seconds(self, now: datetime) -> float:
        total, since = 0.0, None
        for change in self.changes:
            if change.field != "status":
                continue
            if change.to_value == BLOCKED and since is None:
                since = change.at
            elif change.to_value != BLOCKED and since is not None:
                total += (change.at - since).total_seconds()
                since = None
        if since is not None:
            total += (now - since).total_seconds()
        return total

    def ref(self, tracker: str) -> str:
        """How people name this item in pull requests, in the tenant's tracker."""
        if tracker == "clickup":
            return f"CU-{self.clickup_id}"
        if tracker == "azure_boards":
            return f"AB#{self.id}"
        return self.key


@dataclass(frozen=True)
class AdvanceResult:
    at: datetime
    changed_item_ids: tuple[int, ...]
    new_item_ids: tuple[int, ...]


@dataclass
class WorkWorld:
    slug: str
    seed: int
    now: datetime
    tracker: str
    git_host: str
    people: list[Person]
    projects: list[Project]
    sprints: list[Sprint]
    items: list[WorkItem]
    clock: datetime
    advances: int = 0
    _next_id: int = 0
    _numbers: dict[str, int] = field(default_factory=dict)
    _index: dict[int, WorkItem] = field(default_factory=dict, repr=False, compare=False)
    _clickup_index: dict[str, WorkItem] = field(default_factory=dict, repr=False, compare=False)
    _caused: dict[int, list[WorkItem]] = field(default_factory=dict, repr=False, compare=False)
    _caused_count: int = field(default=-1, repr=False, compare=False)
    _by_pr: dict[int, list[WorkItem]] = field(default_factory=dict, repr=False, compare=False)
    _by_pr_count: int = field(default=-1, repr=False, compare=False)

    # -- look-ups ---------------------------------------------------------------------

    def item(self, item_id: int) -> WorkItem | None:
        return self._by_id().get(item_id)

    def _by_id(self) -> dict[int, WorkItem]:
        # Items are only ever appended (advance() adds new ones), so the index is current while
        # it holds as many items as the world: rebuilt once per addition, not once per look-up.
        if len(self._index) != len(self.items):
            self._index = {item.id: item for item in self.items}
        return self._index

    def bugs_caused_by(self, item_id: int) -> list[WorkItem]:
        """The post-release bugs traced back to ``item_id`` (indexed like :meth:`item`)."""
        if self._caused_count != len(self.items):
            self._caused = {}
            for bug in self.items:
                if bug.caused_by_id is not None:
                    self._caused.setdefault(bug.caused_by_id, []).append(bug)
            self._caused_count = len(self.items)
        return self._caused.get(item_id, [])

    def items_of_pull_request(self, pull_request_id: int) -> list[WorkItem]:
        """The work items a GitHub-world pull request implements (rebuilt when items are added)."""
        if self._by_pr_count != len(self.items):
            self._by_pr = {}
            for item in self.items:
                for pr_id in item.pull_request_ids:
                    self._by_pr.setdefault(pr_id, []).append(item)
            self._by_pr_count = len(self.items)
        return self._by_pr.get(pull_request_id, [])

    def by_clickup_id(self, task_id: str) -> WorkItem | None:
        if len(self._clickup_index) != len(self.items):
            self._clickup_index = {item.clickup_id: item for item in self.items}
        return self._clickup_index.get(task_id)

    def project(self, key: str) -> Project | None:
        return next((p for p in self.projects if p.key == key), None)

    def sprint(self, sprint_id: int) -> Sprint | None:
        return next((s for s in self.sprints if s.id == sprint_id), None)

    def person(self, email: str | None) -> Person | None:
        return next((p for p in self.people if p.email == email), None)

    def items_of(self, project_key: str) -> Iterator[WorkItem]:
        return (item for item in self.items if item.project_key == project_key)

    def leads(self, team: str) -> list[Person]:
        return [p for p in self.people if p.team == team and p.is_lead]

    def counts(self) -> dict[str, int]:
        return {
            "projects": len(self.projects),
            "sprints": len(self.sprints),
            "work_items": len(self.items),
            "changes": sum(len(item.changes) for item in self.items),
        }

    def malformed_target(self) -> WorkItem:
        """The item the ``malformed_work_item`` fault breaks: the oldest one (stable across advances)."""
        return min(self.items, key=lambda item: item.id)

    # -- changes ----------------------------------------------------------------------

    def advance(self, n: int = 3, *, at: datetime | None = None) -> AdvanceResult:
        """Move ``n`` unfinished items of active sprints one status ahead and create one new item."""
        self.advances += 1
        rng = random.Random(f"work-advance:{self.seed}:{self.slug}:{self.advances}")
        self.clock = max(self.clock + timedelta(hours=1), at or self.clock)
        now = self.clock
        open_items = sorted(
            (i for i in self.items if i.type != "epic" and i.status != DONE),
            key=lambda i: (i.sprint_id is None, i.id),
        )
        chosen = open_items[: max(0, n)]
        order = {TODO: IN_PROGRESS, IN_PROGRESS: IN_REVIEW, BLOCKED: IN_PROGRESS, IN_REVIEW: DONE}
        for index, item in enumerate(chosen):
            moment = now - timedelta(seconds=10 * (len(chosen) - index))
            actor = item.assignee or item.reporter
            if item.status == TODO and item.assignee is None:
                owner = self._member(rng, item.project_key)
                item.changes.append(Change(moment - timedelta(seconds=1), "assignee", None, owner.email, owner.email))
                actor = owner.email
            new_status = order[item.status]
            item.changes.append(Change(moment, "status", item.status, new_status, actor))
            if new_status == DONE:
                _fill_dmt(rng, self, item, moment, done=True)
        project = self.projects[self.advances % len(self.projects)]
        new_item = self._new_item(
            rng, project, "bug" if self.advances % 3 == 0 else "story", now - timedelta(minutes=1)
        )
        active = next((s for s in self.sprints if s.project_key == project.key and s.state(now) == "active"), None)
        if active is not None:
            new_item.changes.append(
                Change(now - timedelta(seconds=30), "sprint", None, str(active.id), new_item.reporter, "added")
            )
        return AdvanceResult(now, tuple(item.id for item in chosen), (new_item.id,))

    # -- building blocks ---------------------------------------------------------------

    def _member(self, rng: random.Random, project_key: str) -> Person:
        project = self.project(project_key)
        team = [p for p in self.people if project is not None and p.team == project.team]
        return rng.choice(team or self.people)

    def _new_item(self, rng: random.Random, project: Project, kind: str, created: datetime) -> WorkItem:
        self._next_id += rng.randint(1, 3)
        self._numbers[project.key] = self._numbers.get(project.key, 0) + 1
        titles = {"story": _STORY_TITLES, "bug": _BUG_TITLES, "task": _TASK_TITLES, "epic": _EPIC_TITLES}[kind]
        title = rng.choice(titles)
        reporter = self._member(rng, project.key)
        points = (
            None if kind == "epic" or rng.random() < (0.35 if kind != "story" else 0.04) else rng.choice(_POINTS[kind])
        )
        item = WorkItem(
            id=self._next_id,
            number=self._numbers[project.key],
            project_key=project.key,
            type=kind,
            title=title,
            description=_description(rng, kind, title),
            reporter=reporter.email,
            created_at=created.replace(microsecond=0),
            initial_points=None if points is None else float(points),
            clickup_id=_clickup_id(self.slug, self._next_id),
        )
        self.items.append(item)
        return item


def tool_mix(slug: str) -> tuple[str, str]:
    """The (tracker, git host) a tenant uses: fixed for the demo tenants, by hash for others."""
    if slug in TOOL_MIX:
        return TOOL_MIX[slug]
    digest = zlib.crc32(slug.encode())
    tracker = TRACKERS[digest % len(TRACKERS)]
    return tracker, ("azure_devops" if tracker == "azure_boards" else "github")


def work_world(
    github: GitHubWorld,
    seed: int = 42,
    now: datetime | None = None,
    scale: float = 1.0,
    *,
    history_days: int = HISTORY_DAYS,
    tracker: str | None = None,
    link_pull_requests: bool = True,
) -> WorkWorld:
    """Generate the planning world of ``github``'s tenant (people and teams from it).

    ``scale`` multiplies the items per sprint (1.0: about 12 per project and sprint, a few
    hundred in all); ``history_days`` is how far back sprints go. With ``link_pull_requests``
    the merged pull requests of each team are tied to its stories and bugs: the item's work
    happens around the pull request, and the pull request's title, branch and body are
    rewritten to name the item as the tenant's tracker spells it.
    """
    day = truncate_to_day(now)
    slug = github.slug
    rng = random.Random(f"work-world:{seed}:{slug}:{day.date().isoformat()}:{scale}:{history_days}")
    default_tracker, git_host = tool_mix(slug)
    tracker = tracker or default_tracker

    people: list[Person] = []
    for team, members in github.teams.items():
        for index, user in enumerate(members):
            people.append(Person(email=user.email, name=user.name, login=user.login, team=team, is_lead=index == 0))
    projects = [
        Project(key=_project_key(team), name=f"{team.capitalize()} team", team=team, id=10_000 + index)
        for index, team in enumerate(sorted(github.teams))
    ]
    world = WorkWorld(
        slug=slug, seed=seed, now=day, tracker=tracker, git_host=git_host, people=people,
        projects=projects, sprints=[], items=[], clock=day, _next_id=rng.randint(1_000, 30_000),
    )  # fmt: skip

    # Two-week sprints on Mondays, the current one active, the next one planned.
    last_monday = day - timedelta(days=day.weekday())
    sprint_id = rng.randint(100, 900)
    for project in projects:
        offset = timedelta(days=7 * (project.id % 2))  # projects' sprints are staggered by a week
        first = last_monday - offset - timedelta(days=SPRINT_DAYS * (history_days // SPRINT_DAYS))
        start = first
        number = rng.randint(1, 40)
        while start <= day + timedelta(days=SPRINT_DAYS):
            end = start + timedelta(days=SPRINT_DAYS)
            start_at = start + timedelta(hours=9, minutes=rng.randint(0, 50))
            end_at = end + timedelta(hours=9)
            completed = end_at + timedelta(hours=rng.uniform(0.1, 8)) if end_at + timedelta(hours=8) < day else None
            if completed is not None:
                completed = completed.replace(microsecond=0)
            world.sprints.append(Sprint(sprint_id, project.key, number, start_at, end_at, completed))
            sprint_id += 1
            number += 1
            start = end

    for project in projects:
        epics = [
            world._new_item(rng, project, "epic", day - timedelta(days=history_days + rng.randint(5, 60)))
            for _ in range(rng.randint(3, 5))
        ]
        for epic in epics:
            epic.changes.append(Change(epic.created_at + timedelta(days=3), "status", TODO, IN_PROGRESS, epic.reporter))
        sprints = [s for s in world.sprints if s.project_key == project.key]
        for index, sprint in enumerate(sprints):
            _plan_sprint(rng, world, project, sprint, sprints[index + 1 :], epics, day, scale)
    if link_pull_requests:
        _link_pull_requests(rng, world, github, day)
    for item in world.items:
        item.changes.sort(key=lambda c: c.at)
    world.items.sort(key=lambda i: i.id)
    return world


def _plan_sprint(
    rng: random.Random,
    world: WorkWorld,
    project: Project,
    sprint: Sprint,
    later: list[Sprint],
    epics: list[WorkItem],
    now: datetime,
    scale: float,
) -> None:
    """Create this sprint's items and play their lives forward until ``now``."""
    if sprint.start > now:
        # The planned sprint: a few items already in it, nothing started.
        for _ in range(max(1, round(rng.uniform(3, 6) * scale))):
            created = sprint.start - timedelta(days=rng.uniform(2, 12))
            if created >= now:
                continue
            item = world._new_item(rng, project, _kind(rng), created)
            item.parent_id = rng.choice(epics).id if rng.random() < 0.6 else None
            at = min(now - timedelta(minutes=5), max(created, sprint.start - timedelta(days=1)))
            item.changes.append(Change(at, "sprint", None, str(sprint.id), _lead(world, project).email, "added"))
        return
    committed = max(1, round(rng.gauss(12, 2) * scale))
    added = round(committed * rng.uniform(0.05, 0.25))
    # Planning happens the working day before (never on the start day itself), and no item is
    # finished in a sprint's last two days: every tool's way of bounding a sprint (Jira's exact
    # start and close, Azure's whole days) then agrees on its scope at start and at end.
    planning = sprint.start - timedelta(hours=rng.uniform(12, 60))
    for index in range(committed + added):
        late = index >= committed
        kind = _kind(rng)
        if late:
            joined = sprint.start + timedelta(days=rng.uniform(1, 10))
            if joined >= now:
                continue
            created = joined - timedelta(days=rng.uniform(0, 20)) if rng.random() < 0.5 else joined
        else:
            joined = planning
            created = planning - timedelta(days=rng.uniform(1, 40))
        item = world._new_item(rng, project, kind, created)
        if kind == "story" and rng.random() < 0.7:
            item.parent_id = rng.choice(epics).id
        lead = _lead(world, project)
        if item.initial_points is not None and not late and rng.random() < 0.06:
            # Re-estimated at planning.
            new_points = rng.choice(_POINTS[kind])
            if new_points != item.initial_points:
                at = planning - timedelta(minutes=5)
                item.changes.append(
                    Change(at, "story_points", _points_text(item.initial_points), _points_text(new_points), lead.email)
                )
        item.changes.append(Change(joined, "sprint", None, str(sprint.id), lead.email, "added"))
        _live(rng, world, item, sprint, later, now)


def _live(
    rng: random.Random, world: WorkWorld, item: WorkItem, sprint: Sprint, later: list[Sprint], now: datetime
) -> None:
    """Play one item's life in ``sprint`` (and the sprints it is carried into)."""
    joined = max(c.at for c in item.changes if c.field == "sprint")
    sprint_end = sprint.completed_at or sprint.end
    owner = world._member(rng, item.project_key)
    lead = _lead(world, world.project(item.project_key))
    if rng.random() < 0.07 and sprint.completed_at is not None:
        # Removed mid-sprint, back to the backlog (and maybe into a later sprint).
        removed = joined + timedelta(days=rng.uniform(1, 8))
        if removed < min(sprint_end - QUIET_END, now):
            item.changes.append(Change(removed, "sprint", str(sprint.id), None, lead.email, "removed"))
            if later and rng.random() < 0.5 and later[0].start < now:
                item.changes.append(
                    Change(later[0].start - timedelta(hours=2), "sprint", None, str(later[0].id), lead.email, "added")
                )
                _live(rng, world, item, later[0], later[1:], now)
            return
    start_work = max(joined, sprint.start) + timedelta(days=rng.uniform(0, 6))
    if start_work >= now:
        return
    item.changes.append(Change(start_work - timedelta(minutes=2), "assignee", None, owner.email, owner.email))
    item.changes.append(Change(start_work, "status", TODO, IN_PROGRESS, owner.email))
    t = start_work
    if rng.random() < 0.18:
        blocked_at = t + timedelta(days=rng.uniform(0.2, 3))
        unblocked = blocked_at + timedelta(days=rng.uniform(0.3, 4))
        if blocked_at < now:
            item.changes.append(Change(blocked_at, "status", IN_PROGRESS, BLOCKED, owner.email))
            if unblocked >= now:
                return
            item.changes.append(Change(unblocked, "status", BLOCKED, IN_PROGRESS, owner.email))
            t = unblocked
    review = t + timedelta(days=rng.uniform(0.5, 5) * (item.story_points or 2) / 3)
    done = review + timedelta(days=rng.uniform(0.1, 2.5))
    finishes_in_sprint = rng.random() < 0.8
    if not finishes_in_sprint and sprint.completed_at is not None:
        # Not finished: carried over into the next sprint when this one closes.
        if review < sprint_end:
            item.changes.append(Change(review, "status", IN_PROGRESS, IN_REVIEW, owner.email))
        if later and later[0].start < now:
            item.changes.append(
                Change(sprint.completed_at, "sprint", str(sprint.id), str(later[0].id), lead.email, "carried_over")
            )
            nxt = later[0]
            finish = max(nxt.start, review) + timedelta(days=rng.uniform(0.5, 6))
            if review >= sprint_end and review < now:
                item.changes.append(Change(review, "status", IN_PROGRESS, IN_REVIEW, owner.email))
            if finish < now and finish < (nxt.completed_at or nxt.end) - QUIET_END:
                item.changes.append(Change(finish, "status", IN_REVIEW, DONE, owner.email))
                _fill_dmt(rng, world, item, finish, done=True)
                _maybe_reopen(rng, world, item, finish, now, owner)
            elif review < now:
                _fill_dmt(rng, world, item, review, done=False)
        return
    if done >= sprint_end - QUIET_END:
        done = sprint_end - QUIET_END - timedelta(hours=rng.uniform(1, 20))
        review = min(review, done - timedelta(hours=1))
    if review >= now:
        return
    review = max(review, t + timedelta(minutes=30))
    item.changes.append(Change(review, "status", IN_PROGRESS, IN_REVIEW, owner.email))
    if done >= now or done <= review:
        _fill_dmt(rng, world, item, review, done=False)
        return
    item.changes.append(Change(done, "status", IN_REVIEW, DONE, owner.email))
    _fill_dmt(rng, world, item, done, done=True)
    _maybe_reopen(rng, world, item, done, now, owner)
    if item.type == "story" and rng.random() < 0.12:
        # A post-release bug traced back to this story.
        found = done + timedelta(days=rng.uniform(3, 30))
        if found < now:
            project = world.project(item.project_key)
            assert project is not None
            bug = world._new_item(rng, project, "bug", found)
            bug.caused_by_id = item.id
            bug.labels.append("post-release")
            bug.title = f"Regression: {item.title.lower()}"
            target = next((s for s in later if s.start > found), None)
            if target is not None and target.start < now:
                bug.changes.append(
                    Change(target.start - timedelta(hours=1), "sprint", None, str(target.id), lead.email, "added")
                )
                remaining = [s for s in later if s.start > target.start]
                _live(rng, world, bug, target, remaining, now)


def _maybe_reopen(
    rng: random.Random, world: WorkWorld, item: WorkItem, done: datetime, now: datetime, owner: Person
) -> None:
    """One item in 30 is re-opened after done, then done again."""
    if rng.random() >= 1 / 30:
        return
    reopened = done + timedelta(days=rng.uniform(0.5, 3))
    redone = reopened + timedelta(days=rng.uniform(0.5, 3))
    if reopened < now:
        item.changes.append(Change(reopened, "status", DONE, IN_PROGRESS, owner.email))
    if redone < now:
        item.changes.append(Change(redone, "status", IN_PROGRESS, DONE, owner.email))


def _fill_dmt(rng: random.Random, world: WorkWorld, item: WorkItem, at: datetime, *, done: bool) -> None:
    """The Done-Means-Tested fields as a team really fills them: mostly, with gaps."""
    if item.type == "epic":
        return
    dmt = item.dmt
    story = item.type == "story"
    dmt.ac_quality = _choice(
        rng,
        [("final", 0.68), ("testable", 0.16), ("incomplete", 0.08), (None, 0.08)]
        if story
        else [("testable", 0.4), ("final", 0.2), (None, 0.4)],
    )
    dmt.unit_test_task = _choice(rng, [(True, 0.8), (False, 0.12), (None, 0.08)])
    if done:
        dmt.unit_test_status = _choice(
            rng,
            [("done", 0.8), ("exception_approved", 0.06), ("in_progress", 0.08), ("not_started", 0.03), (None, 0.03)],
        )
    else:
        dmt.unit_test_status = _choice(rng, [("in_progress", 0.6), ("not_started", 0.25), ("done", 0.15)])
    if dmt.unit_test_status == "done" and rng.random() > 0.08:
        dmt.coverage_pct = round(min(100.0, max(35.0, rng.gauss(84, 9))), 1)
    if dmt.unit_test_status == "exception_approved":
        project = world.project(item.project_key)
        approver = _lead(world, project) if project else world.people[0]
        dmt.exception = True
        dmt.exception_reason = rng.choice(_EXCEPTION_REASONS)
        dmt.exception_approver = approver.email
        dmt.exception_expires = (at + timedelta(days=rng.randint(14, 90))).date()
    dmt.reviewer_signoff = _choice(rng, [(True, 0.84), (False, 0.06), (None, 0.1)]) if done else None


def _link_pull_requests(rng: random.Random, world: WorkWorld, github: GitHubWorld, now: datetime) -> None:
    """Tie merged pull requests to the stories, bugs and tasks they implement.

    Each finished item of a team may take one pull request of that team's repositories that
    was opened while the item was in progress; the pull request then names the item (in its
    title, branch or body), and the item's DMT fields carry the PR link and CI evidence.
    """
    candidates: dict[str, list[PullRequest]] = {}
    for pr in github.pull_requests():
        if pr.author.type == "User":
            candidates.setdefault(pr.repo.team, []).append(pr)
    for prs in candidates.values():
        prs.sort(key=lambda p: p.created_at)
    used: set[int] = set()
    team_of = {p.key: p.team for p in world.projects}
    for item in sorted(world.items, key=lambda i: i.first_in_progress_at or now):
        started = item.first_in_progress_at
        if item.type == "epic" or started is None:
            continue
        until = item.resolved_at or now
        prs = candidates.get(team_of[item.project_key], [])
        match = next((pr for pr in prs if pr.id not in used and started <= pr.created_at <= until), None)
        missing_link = rng.random() < (0.08 if item.type == "story" else 0.25)
        if match is None:
            continue
        used.add(match.id)
        item.pull_request_ids.append(match.id)
        _rename_pull_request(rng, match, item.ref(world.tracker))
        pr_url = f"https://github.com/{match.repo.full_name}/pull/{match.number}"
        if not missing_link:
            item.dmt.pr_links = [pr_url]
        if item.status == DONE and rng.random() < 0.9:
            item.dmt.ci_evidence = f"https://ci.{world.slug}.example/runs/{match.id % 10**7}"
    for prs in candidates.values():
        for pr in prs:
            if pr.id not in used:
                _rename_pull_request(rng, pr, None)  # no made-up keys that might match a real item


def _rename_pull_request(rng: random.Random, pr: PullRequest, ref: str | None) -> None:
    """Make ``pr`` name the work item ``ref`` as developers do: in the title, branch or body
    (with ``ref`` None: name no item at all)."""
    old = re.compile(r"\b[A-Z][A-Z0-9]+-\d+\b")
    title = old.sub("", pr.title).replace("()", "").strip(" :")
    branch_tail = pr.head_ref.split("/", 1)[-1]
    branch_tail = re.sub(r"^[a-z][a-z0-9]+-\d+-", "", branch_tail)
    if ref is None:
        pr.title = title
        if "/" in pr.head_ref and not pr.head_ref.startswith("dependabot/"):
            pr.head_ref = f"{pr.head_ref.split('/', 1)[0]}/{branch_tail}"
        pr.body = old.sub("", pr.body).replace("Closes ", "").rstrip() if pr.body else pr.body
        return
    branch_ref = ref.lower().replace("#", "-")
    where = rng.random()
    if where < 0.5:
        pr.title = f"{ref}: {title}"
    else:
        pr.title = title
    if where >= 0.3:
        prefix = pr.head_ref.split("/", 1)[0] if "/" in pr.head_ref else "feature"
        pr.head_ref = f"{prefix}/{branch_ref}-{branch_tail}"
    body = old.sub(ref, pr.body) if pr.body else None
    if where >= 0.7 and (body is None or ref not in body):
        body = f"{body or ''}\r\n\r\nCloses {ref}".strip()
    pr.body = body


# -- small helpers --------------------------------------------------------------------------


def _kind(rng: random.Random) -> str:
    return _choice(rng, [("story", 0.62), ("bug", 0.2), ("task", 0.18)])


def _lead(world: WorkWorld, project: Project | None) -> Person:
    if project is not None:
        leads = world.leads(project.team)
        if leads:
            return leads[0]
    return world.people[0]


def _choice(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(values, weights=weights)[0]


def _points_text(points: float) -> str:
    return f"{points:g}"


def _project_key(team: str) -> str:
    from connectors.sandbox.github.world import _TEAMS

    return dict(_TEAMS)[team]


def _description(rng: random.Random, kind: str, title: str) -> str:
    if kind == "bug":
        return f"Steps to reproduce:\n1. {title}\n2. Observe the error.\n\nExpected: it works."
    if kind == "epic":
        return f"{title}: the outcomes we want this quarter."
    return f"{title}.\n\nAcceptance criteria:\n- It works for every plan\n- It is documented"


def _clickup_id(slug: str, item_id: int) -> str:
    """A ClickUp-style task id: 9 lowercase base-36 characters, stable per tenant and item."""
    value = zlib.crc32(f"{slug}:{item_id}".encode()) * 7919 + item_id
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while len(out) < 8:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
    return "8" + out
