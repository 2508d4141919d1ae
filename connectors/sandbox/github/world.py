"""The simulated GitHub organisation of one tenant: people, teams, repositories, pull requests.

A world is a pure function of ``(seed, tenant slug, now truncated to the day, scale)``:
:func:`github_world` builds the same objects every time for the same inputs. The sandbox
server keeps one live world per tenant and changes it only through :meth:`GitHubWorld.touch`,
which is itself deterministic (seeded by the number of touches already applied).

Everything here is plain data; the JSON shapes the API returns are built in ``payloads.py``.
"""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

#: Pull requests are spread over this many days before ``now``.
HISTORY_DAYS = 180

_FIRST_NAMES = [
    "Ada", "Bruno", "Chen", "Dana", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kemi", "Lars", "Maya", "Nikhil", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara",
    "Uma", "Viktor", "Wen", "Yusuf", "Zoe",
]  # fmt: skip
_LAST_NAMES = [
    "Almeida", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Gupta", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quispe",
    "Rossi", "Silva", "Tanaka", "Urban", "Varga", "Weber", "Yilmaz", "Zhang",
]  # fmt: skip
_TEAMS = [
    ("platform", "PLAT"), ("payments", "PAY"), ("growth", "GRO"), ("mobile", "MOB"),
    ("data", "DATA"), ("identity", "IAM"),
]  # fmt: skip
_REPOS = [
    ("api", "Go", "Public REST API and its gateway"),
    ("web", "TypeScript", "Customer-facing web application"),
    ("billing-service", "Kotlin", "Invoices, subscriptions and payment provider integrations"),
    ("mobile-app", "Swift", "iOS and Android client"),
    ("data-pipeline", "Python", "Event ingestion and nightly batch jobs"),
    ("auth-service", "Go", "Sign-in, sessions and tokens"),
    ("infra", "HCL", "Terraform for all environments"),
]
_VERBS = ["Add", "Fix", "Refactor", "Remove", "Update", "Speed up", "Document", "Harden", "Rename"]
_OBJECTS = [
    "retry logic for webhook delivery", "pagination of the search endpoint", "null owner handling",
    "feature flag for the new checkout", "flaky integration test", "connection pool sizing",
    "audit log export", "invoice rounding", "session expiry", "dark mode toggle",
    "rate limiter", "CSV import validation", "dependency pins", "error messages on sign-in",
    "metrics for queue depth", "cache invalidation on update", "timezone handling in reports",
    "onboarding checklist", "N+1 query in team listing", "build cache",
]  # fmt: skip
_BRANCH_PREFIXES = ["feature", "fix", "chore", "refactor"]
_LABELS = [
    ("bug", "d73a4a"), ("enhancement", "a2eeef"), ("tech-debt", "fbca04"),
    ("security", "b60205"), ("documentation", "0075ca"), ("dependencies", "0366d6"),
]  # fmt: skip
_CHECK_NAMES = {
    "Go": ["build", "test", "golangci-lint"],
    "TypeScript": ["build", "test (node 20)", "eslint"],
    "Kotlin": ["gradle build", "unit tests"],
    "Swift": ["build ios", "unit tests"],
    "Python": ["test (3.11)", "ruff", "mypy"],
    "HCL": ["terraform plan", "tflint"],
}
_CONCLUSIONS = [("success", 0.87), ("failure", 0.09), ("cancelled", 0.02), ("skipped", 0.02)]


def truncate_to_day(moment: datetime | None) -> datetime:
    """``moment`` (default: the current time) at 00:00 UTC of its day, timezone-aware."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def node_id(prefix: str, *parts: int | str) -> str:
    """A GitHub-style global node id (``PR_kwDO…``): opaque, stable, unique per object."""
    raw = ":".join(str(part) for part in parts).encode()
    return f"{prefix}_kwDO{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"


@dataclass
class User:
    login: str
    id: int
    name: str
    email: str
    team: str | None
    type: str = "User"

    @property
    def node_id(self) -> str:
        return node_id("U" if self.type == "User" else "BOT", self.id)


@dataclass
class Review:
    id: int
    user: User
    state: str
    submitted_at: datetime | None
    commit_id: str
    body: str


@dataclass
class Commit:
    sha: str
    author: User | None  # the GitHub account the commit email maps to, if any
    author_name: str
    author_email: str
    authored_at: datetime
    committed_at: datetime
    message: str
    parent_sha: str


@dataclass
class CheckRun:
    id: int
    head_sha: str
    name: str
    status: str
    conclusion: str | None
    started_at: datetime
    completed_at: datetime | None
    check_suite_id: int


@dataclass
class PullRequest:
    id: int
    number: int
    repo: Repository
    title: str
    body: str | None
    author: User
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    merged_at: datetime | None
    merge_commit_sha: str | None
    draft: bool
    head_ref: str
    base_ref: str
    base_sha: str
    labels: list[tuple[str, str]]
    requested_reviewers: list[User]
    reviews: list[Review] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "closed" if self.closed_at is not None else "open"

    @property
    def head_sha(self) -> str:
        return self.commits[-1].sha

    @property
    def full_name(self) -> str:
        return self.repo.full_name


@dataclass
class Repository:
    id: int
    name: str
    org: str
    team: str
    language: str
    description: str
    created_at: datetime
    default_branch: str = "main"
    private: bool = True
    pulls: list[PullRequest] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.org}/{self.name}"

    @property
    def updated_at(self) -> datetime:
        return max([self.created_at, *(pr.updated_at for pr in self.pulls)])

    @property
    def pushed_at(self) -> datetime:
        pushes = [c.committed_at for pr in self.pulls for c in pr.commits]
        return max([self.created_at, *pushes])


@dataclass(frozen=True)
class TouchResult:
    """What one :meth:`GitHubWorld.touch` changed, for tests to compare against a re-run."""

    at: datetime
    updated_pull_request_ids: tuple[int, ...]
    new_pull_request_ids: tuple[int, ...]
    new_review_ids: tuple[int, ...]
    new_commit_shas: tuple[str, ...]
    new_check_run_ids: tuple[int, ...]

    @property
    def changed_pull_request_ids(self) -> tuple[int, ...]:
        return self.updated_pull_request_ids + self.new_pull_request_ids


@dataclass
class GitHubWorld:
    """One tenant's GitHub organisation, generated by :func:`github_world`."""

    slug: str
    seed: int
    now: datetime
    org: str
    org_id: int
    users: list[User]
    teams: dict[str, list[User]]
    repos: list[Repository]
    check_runs: dict[str, list[CheckRun]]
    clock: datetime
    _ids: dict[str, int] = field(default_factory=dict, repr=False)
    touches: int = 0

    # -- look-ups ---------------------------------------------------------------------

    def repo(self, name: str) -> Repository | None:
        for repo in self.repos:
            if repo.name.lower() == name.lower():
                return repo
        return None

    def repo_by_id(self, repo_id: int) -> Repository | None:
        return next((repo for repo in self.repos if repo.id == repo_id), None)

    def pull_requests(self) -> Iterator[PullRequest]:
        for repo in self.repos:
            yield from repo.pulls

    def reviews(self) -> Iterator[tuple[PullRequest, Review]]:
        for pr in self.pull_requests():
            for review in pr.reviews:
                yield pr, review

    def commits(self) -> Iterator[tuple[PullRequest, Commit]]:
        for pr in self.pull_requests():
            for commit in pr.commits:
                yield pr, commit

    def head_check_runs(self) -> Iterator[tuple[PullRequest, CheckRun]]:
        """Check runs on each pull request's current head commit (what a full load sees)."""
        for pr in self.pull_requests():
            for run in self.check_runs.get(pr.head_sha, []):
                yield pr, run

    def counts(self) -> dict[str, int]:
        """Row counts a full load of this world lands, table by table."""
        return {
            "repositories": len(self.repos),
            "pull_requests": sum(1 for _ in self.pull_requests()),
            "reviews": sum(1 for _ in self.reviews()),
            "commits": sum(min(len(pr.commits), 250) for pr in self.pull_requests()),
            "check_runs": len({run.id for _, run in self.head_check_runs()}),
        }

    def malformed_target(self) -> PullRequest:
        """The pull request the ``malformed_pull_request`` fault breaks: the first repository's
        oldest one (it stays the same when the world is touched)."""
        repo = self.repos[0]
        return min(repo.pulls, key=lambda pr: pr.number)

    # -- changes ----------------------------------------------------------------------

    def touch(self, n: int = 3, *, at: datetime | None = None) -> TouchResult:
        """Change ``n`` pull requests and open one new one, as an hour of real activity would.

        Open pull requests get an approval and are merged, or get a new commit (new head,
        new check runs) and a comment review; closed ones get a late comment review. Every
        changed pull request's ``updated_at`` moves to the new clock, past everything before.
        """
        self.touches += 1
        rng = random.Random(f"github-touch:{self.seed}:{self.slug}:{self.touches}")
        self.clock = max(self.clock + timedelta(hours=1), at or self.clock)
        now = self.clock
        new_reviews: list[int] = []
        new_commits: list[str] = []
        new_runs: list[int] = []
        everything = sorted(self.pull_requests(), key=lambda p: (p.updated_at, p.id), reverse=True)
        open_prs = [pr for pr in everything if pr.state == "open"]
        closed_prs = [pr for pr in everything if pr.state == "closed"]
        chosen = (open_prs + closed_prs)[: max(0, n)]
        for index, pr in enumerate(chosen):
            moment = now - timedelta(seconds=10 * (len(chosen) - index))
            reviewer = _pick_reviewer(rng, self, pr.author, pr.repo.team)
            if pr.state == "open" and (index % 2 == 0 or pr.draft):
                pr.draft = False
                review = self._review(pr, reviewer, "APPROVED", moment - timedelta(minutes=3), rng)
                new_reviews.append(review.id)
                pr.merged_at = pr.closed_at = moment
                pr.merge_commit_sha = _sha(rng)
                pr.requested_reviewers = []
            elif pr.state == "open":
                commit = self._commit(pr, pr.author, moment - timedelta(minutes=4), rng)
                new_commits.append(commit.sha)
                new_runs.extend(r.id for r in self._check_runs(pr, rng, now))
                review = self._review(pr, reviewer, "COMMENTED", moment, rng)
                new_reviews.append(review.id)
            else:
                review = self._review(pr, reviewer, "COMMENTED", moment, rng)
                new_reviews.append(review.id)
            pr.updated_at = moment
        repo = self.repos[self.touches % len(self.repos)]
        author = rng.choice(self.teams[repo.team])
        new_pr = self._new_pull_request(repo, author, now - timedelta(minutes=1), rng)
        new_commits.extend(c.sha for c in new_pr.commits)
        new_runs.extend(r.id for r in self._check_runs(new_pr, rng, now))
        return TouchResult(
            at=now,
            updated_pull_request_ids=tuple(pr.id for pr in chosen),
            new_pull_request_ids=(new_pr.id,),
            new_review_ids=tuple(new_reviews),
            new_commit_shas=tuple(new_commits),
            new_check_run_ids=tuple(new_runs),
        )

    # -- building blocks (shared by generation and touches) -----------------------------

    def next_id(self, kind: str, rng: random.Random) -> int:
        self._ids[kind] = self._ids[kind] + rng.randint(1, 4000)
        return self._ids[kind]

    def _review(self, pr: PullRequest, user: User, state: str, at: datetime, rng: random.Random) -> Review:
        review = Review(
            id=self.next_id("review", rng),
            user=user,
            state=state,
            submitted_at=at,
            commit_id=pr.head_sha,
            body=_review_body(rng, state),
        )
        pr.reviews.append(review)
        return review

    def _commit(self, pr: PullRequest, author: User, at: datetime, rng: random.Random) -> Commit:
        parent = pr.commits[-1].sha if pr.commits else pr.base_sha
        commit = _make_commit(rng, author, at, parent, pr.title)
        pr.commits.append(commit)
        return commit

    def _check_runs(self, pr: PullRequest, rng: random.Random, now: datetime) -> list[CheckRun]:
        head = pr.commits[-1]
        suite = self.next_id("check_suite", rng)
        runs: list[CheckRun] = []
        for name in _CHECK_NAMES[pr.repo.language]:
            started = head.committed_at + timedelta(seconds=rng.randint(20, 180))
            duration = timedelta(seconds=_lognormal_seconds(rng, median=360, sigma=0.6))
            completed: datetime | None = started + duration
            status: str = "completed"
            conclusion: str | None = _weighted(rng, _CONCLUSIONS)
            if completed is not None and completed > now:
                status, conclusion, completed = "in_progress", None, None
            runs.append(
                CheckRun(
                    id=self.next_id("check_run", rng),
                    head_sha=head.sha,
                    name=name,
                    status=status,
                    conclusion=conclusion,
                    started_at=started,
                    completed_at=completed,
                    check_suite_id=suite,
                )
            )
        self.check_runs[head.sha] = runs
        return runs

    def _new_pull_request(
        self, repo: Repository, author: User, created_at: datetime, rng: random.Random
    ) -> PullRequest:
        number = (max((p.number for p in repo.pulls), default=0)) + rng.randint(1, 2)
        key = f"{_team_key(repo.team)}-{rng.randint(1, 480)}" if rng.random() < 0.75 else None
        title, head_ref = _title_and_branch(rng, key, author)
        pr = PullRequest(
            id=self.next_id("pull", rng),
            number=number,
            repo=repo,
            title=title,
            body=_pr_body(rng, key),
            author=author,
            created_at=created_at,
            updated_at=created_at,
            closed_at=None,
            merged_at=None,
            merge_commit_sha=None,
            draft=False,
            head_ref=head_ref,
            base_ref=repo.default_branch,
            base_sha=_sha(rng),
            labels=_labels(rng, author),
            requested_reviewers=[_pick_reviewer(rng, self, author, repo.team)],
        )
        self._commit(pr, author, created_at - timedelta(minutes=rng.randint(2, 90)), rng)
        repo.pulls.append(pr)
        return pr


# -- generation ---------------------------------------------------------------------------


def github_world(
    slug: str, seed: int = 42, now: datetime | None = None, scale: float = 1.0, history_days: int = HISTORY_DAYS
) -> GitHubWorld:
    """Generate tenant ``slug``'s organisation ``<slug>-eng`` as of ``now`` (default: today).

    ``scale`` multiplies the number of pull requests (1.0 gives a few hundred per tenant over
    the default ``history_days``; a longer history gets proportionally more, at the same pace).
    """
    day = truncate_to_day(now)
    rng = random.Random(f"github-world:{seed}:{slug}:{day.date().isoformat()}:{scale}")
    org = f"{slug}-eng"

    team_count = rng.randint(2, 3)
    teams = rng.sample(_TEAMS, team_count)
    people = _people(rng, slug, rng.randint(8, 12))
    team_members: dict[str, list[User]] = {name: [] for name, _ in teams}
    for index, person in enumerate(people):
        team = teams[index % team_count][0]
        person.team = team
        team_members[team].append(person)
    bot = User(
        login="dependabot[bot]", id=49699333, name="dependabot[bot]",
        email="49699333+dependabot[bot]@users.noreply.github.com", team=None, type="Bot",
    )  # fmt: skip

    repo_specs = rng.sample(_REPOS, rng.randint(3, 4))
    world = GitHubWorld(
        slug=slug,
        seed=seed,
        now=day,
        org=org,
        org_id=rng.randint(10_000_000, 190_000_000),
        users=[*people, bot],
        teams=team_members,
        repos=[],
        check_runs={},
        clock=day,
        _ids={
            "pull": rng.randint(1_500_000_000, 2_100_000_000),
            "review": rng.randint(1_800_000_000, 2_400_000_000),
            "check_run": rng.randint(20_000_000_000, 30_000_000_000),
            "check_suite": rng.randint(20_000_000_000, 30_000_000_000),
        },
    )
    repo_id = rng.randint(500_000_000, 900_000_000)
    for index, (name, language, description) in enumerate(sorted(repo_specs)):
        repo_id += rng.randint(1_000, 5_000_000)
        world.repos.append(
            Repository(
                id=repo_id,
                name=name,
                org=org,
                team=teams[index % team_count][0],
                language=language,
                description=description,
                created_at=day - timedelta(days=rng.randint(400, 2500), seconds=rng.randint(0, 86399)),
            )
        )

    total = max(len(world.repos), round(rng.randint(180, 320) * scale * (history_days / HISTORY_DAYS)))
    weights = [rng.uniform(0.6, 1.6) for _ in world.repos]
    # Creation times first, so that ids and numbers grow with time as on GitHub.
    plans: list[tuple[datetime, Repository]] = []
    for _ in range(total):
        repo = rng.choices(world.repos, weights=weights)[0]
        created = _working_time(rng, day - timedelta(days=rng.uniform(0, history_days)))
        if created > day - timedelta(hours=1):
            created = day - timedelta(hours=rng.uniform(1, 20))
        plans.append((created.replace(microsecond=0), repo))
    plans.sort(key=lambda plan: plan[0])
    numbers = {repo.id: rng.randint(1, 900) for repo in world.repos}
    for created_at, repo in plans:
        numbers[repo.id] += 1 if rng.random() < 0.7 else rng.randint(2, 4)
        if rng.random() < 0.05:
            author = bot
        elif rng.random() < 0.85:
            author = rng.choice(team_members[repo.team])
        else:
            author = rng.choice(people)
        _generate_pull_request(world, rng, repo, author, created_at, numbers[repo.id], day)
    # Events are generated per pull request; give reviews ids in submission order, as GitHub does.
    reviews = sorted((r for _, r in world.reviews()), key=lambda r: (r.submitted_at or day, r.id))
    for review, new_id in zip(reviews, sorted(r.id for r in reviews), strict=True):
        review.id = new_id
    return world


def _generate_pull_request(
    world: GitHubWorld,
    rng: random.Random,
    repo: Repository,
    author: User,
    created_at: datetime,
    number: int,
    now: datetime,
) -> None:
    is_bot = author.type == "Bot"
    key = None if is_bot or rng.random() > 0.75 else f"{_team_key(repo.team)}-{rng.randint(1, 480)}"
    if is_bot:
        package = rng.choice(["lodash", "golang.org/x/net", "requests", "eslint", "kotlinx-coroutines"])
        title = f"Bump {package} from 1.{rng.randint(0, 9)}.{rng.randint(0, 9)} to 1.{rng.randint(10, 20)}.0"
        head_ref = f"dependabot/{package.replace('/', '-')}-1.{rng.randint(10, 20)}.0"
    else:
        title, head_ref = _title_and_branch(rng, key, author)
    age_days = (now - created_at).total_seconds() / 86400
    roll = rng.random()
    if age_days < 4:
        outcome = "open" if roll < 0.55 else ("closed" if roll < 0.6 else "merged")
    else:
        outcome = "open" if roll < 0.05 else ("closed" if roll < 0.15 else "merged")
    draft_now = outcome == "open" and not is_bot and rng.random() < 0.25
    pr = PullRequest(
        id=world.next_id("pull", rng),
        number=number,
        repo=repo,
        title=title,
        body=None if not is_bot and rng.random() < 0.12 else _pr_body(rng, key),
        author=author,
        created_at=created_at,
        updated_at=created_at,
        closed_at=None,
        merged_at=None,
        merge_commit_sha=None,
        draft=draft_now,
        head_ref=head_ref,
        base_ref=repo.default_branch,
        base_sha=_sha(rng),
        labels=[("dependencies", "0366d6")] if is_bot else _labels(rng, author),
        requested_reviewers=[],
    )
    repo.pulls.append(pr)

    # Commits before opening.
    commit_total = 1 + min(7, int(rng.expovariate(1 / 1.8)))
    first_batch = max(1, commit_total - rng.randint(0, commit_total - 1))
    offsets = sorted((rng.randint(1, 60 * 30) for _ in range(first_batch)), reverse=True)
    for minutes in offsets:
        world._commit(pr, author, created_at - timedelta(minutes=minutes), rng)
    remaining_commits = commit_total - first_batch
    events_end = now  # nothing may happen after the world's "now"

    def add_review(user: User, state: str, at: datetime) -> bool:
        if at >= events_end:
            return False
        world._review(pr, user, state, at, rng)
        return True

    def push(at: datetime) -> bool:
        nonlocal remaining_commits
        if at >= events_end:
            return False
        world._commit(pr, author, at, rng)
        remaining_commits = max(0, remaining_commits - 1)
        return True

    reviewed = not (outcome == "merged" and rng.random() < 0.10) and not (outcome != "merged" and rng.random() < 0.45)
    if draft_now:
        reviewed = False
    ready_at = created_at
    if outcome == "merged" and rng.random() < 0.12:
        # Opened as a draft, marked ready later.
        ready_at = created_at + timedelta(seconds=_lognormal_seconds(rng, median=5 * 3600, sigma=1.0))
    t = ready_at
    approved_at: datetime | None = None
    if reviewed:
        reviewers = _reviewers(rng, world, author, repo.team)
        if outcome == "open":
            pr.requested_reviewers = reviewers[:1]
        rounds = 0
        while rounds < 4:
            rounds += 1
            t += timedelta(seconds=_lognormal_seconds(rng, median=3.5 * 3600, sigma=1.1))
            reviewer = reviewers[(rounds - 1) % len(reviewers)]
            state = _weighted(rng, [("APPROVED", 0.6), ("CHANGES_REQUESTED", 0.22), ("COMMENTED", 0.18)])
            if is_bot:
                state = "APPROVED"
            if not add_review(reviewer, state, t):
                break
            if state == "APPROVED":
                approved_at = t
                if remaining_commits and rng.random() < 0.5:
                    # A push after the approval; one in three approvals gets dismissed as stale.
                    t += timedelta(seconds=_lognormal_seconds(rng, median=2 * 3600, sigma=0.9))
                    if not push(t):
                        break
                    if rng.random() < 0.33:
                        pr.reviews[-1].state = "DISMISSED"
                        approved_at = None
                        continue
                break
            # Changes requested or comments: the author answers with a push.
            t += timedelta(seconds=_lognormal_seconds(rng, median=2.5 * 3600, sigma=0.9))
            if not push(t):
                break
        if approved_at and len(reviewers) > 1 and rng.random() < 0.3:
            extra = approved_at + timedelta(seconds=_lognormal_seconds(rng, median=3600, sigma=1.0))
            add_review(reviewers[-1], rng.choice(["APPROVED", "COMMENTED"]), extra)
    elif outcome == "open" and not draft_now:
        pr.requested_reviewers = _reviewers(rng, world, author, repo.team)[:2]
    # Remaining commits before the end of the pull request's life.
    while remaining_commits and outcome != "merged":
        t += timedelta(seconds=_lognormal_seconds(rng, median=4 * 3600, sigma=1.0))
        if not push(t):
            break

    last_event = max(
        [pr.created_at, *(c.committed_at for c in pr.commits), *(r.submitted_at for r in pr.reviews if r.submitted_at)]
    )
    if outcome == "merged":
        merged = last_event + timedelta(seconds=_lognormal_seconds(rng, median=50 * 60, sigma=1.0))
        if not pr.reviews:
            merged = pr.created_at + timedelta(seconds=_lognormal_seconds(rng, median=6 * 3600, sigma=1.2))
            merged = max(merged, last_event + timedelta(minutes=2))
        if merged < now:
            pr.merged_at = pr.closed_at = merged
            pr.merge_commit_sha = _sha(rng)
    elif outcome == "closed":
        closed = last_event + timedelta(seconds=_lognormal_seconds(rng, median=2 * 86400, sigma=1.0))
        if closed < now:
            pr.closed_at = closed
    if pr.closed_at is None and not draft_now and not pr.requested_reviewers and not pr.reviews:
        pr.requested_reviewers = _reviewers(rng, world, author, repo.team)[:1]
    if pr.closed_at is not None:
        pr.requested_reviewers = []

    world._check_runs(pr, rng, now)
    run_end = max([r.completed_at or r.started_at for r in world.check_runs[pr.head_sha]], default=last_event)
    last = max(last_event, pr.closed_at or last_event, min(run_end, now - timedelta(seconds=1)))
    # Labels, comments and CI statuses also bump updated_at a little past the last event.
    pr.updated_at = min(now - timedelta(seconds=1), last + timedelta(seconds=rng.randint(0, 1800)))
    pr.updated_at = max(pr.updated_at, last)


# -- small helpers --------------------------------------------------------------------------


def _people(rng: random.Random, slug: str, count: int) -> list[User]:
    firsts = rng.sample(_FIRST_NAMES, count)
    lasts = rng.sample(_LAST_NAMES, count)
    people: list[User] = []
    used: set[str] = set()
    for first, last in zip(firsts, lasts, strict=True):
        style = rng.randint(0, 3)
        login = [
            f"{first[0]}{last}".lower(),
            f"{first}-{last}".lower(),
            f"{first.lower()}{last[0].lower()}{rng.randint(1, 99)}",
            f"{first.lower()}-{slug.replace('_', '-')}",
        ][style]
        while login in used:
            login += str(rng.randint(0, 9))
        used.add(login)
        people.append(
            User(
                login=login,
                id=rng.randint(1_000_000, 160_000_000),
                name=f"{first} {last}",
                email=f"{first}.{last}@{slug.replace('_', '-')}.example".lower(),
                team=None,
            )
        )
    return people


def _team_key(team: str) -> str:
    return dict(_TEAMS)[team]


def _title_and_branch(rng: random.Random, key: str | None, author: User) -> tuple[str, str]:
    verb, thing = rng.choice(_VERBS), rng.choice(_OBJECTS)
    title = f"{verb} {thing}"
    if key:
        title = f"{key}: {title}" if rng.random() < 0.6 else f"{title} ({key})"
    slug = "-".join(thing.lower().replace("+", "").split()[:4])
    prefix = rng.choice(_BRANCH_PREFIXES)
    branch = f"{prefix}/{key.lower() + '-' if key else ''}{slug}"
    if rng.random() < 0.2:
        branch = f"{author.login.split('-')[0]}/{slug}"
    return title, branch


def _pr_body(rng: random.Random, key: str | None) -> str:
    lines = ["## What", rng.choice(_OBJECTS).capitalize() + ".", "", "## Why"]
    lines.append(rng.choice(["Customer report.", "Found while on call.", "Part of the quarterly plan.", "Cleanup."]))
    if key:
        lines += ["", f"Closes {key}"]
    return "\r\n".join(lines)


def _review_body(rng: random.Random, state: str) -> str:
    if state == "APPROVED":
        return rng.choice(["", "LGTM", "Looks good, thanks!", "Ship it"])
    if state == "CHANGES_REQUESTED":
        return rng.choice(
            ["Please add a test for the error path.", "This breaks the retry contract.", "Can we skip the query?"]
        )
    return rng.choice(["", "A couple of nits inline.", "Question about the migration order.", "Not blocking."])


def _labels(rng: random.Random, author: User) -> list[tuple[str, str]]:
    if rng.random() < 0.55:
        return []
    return rng.sample(_LABELS[:5], rng.randint(1, 2))


def _reviewers(rng: random.Random, world: GitHubWorld, author: User, team: str) -> list[User]:
    mates = [u for u in world.teams[team] if u.login != author.login]
    others = [u for u in world.users if u.type == "User" and u.login != author.login and u not in mates]
    pool = mates if mates and rng.random() < 0.85 else (others or mates)
    count = 1 if rng.random() < 0.7 else 2
    return rng.sample(pool, min(count, len(pool)))


def _pick_reviewer(rng: random.Random, world: GitHubWorld, author: User, team: str) -> User:
    return _reviewers(rng, world, author, team)[0]


def _make_commit(rng: random.Random, author: User, at: datetime, parent: str, title: str) -> Commit:
    message = rng.choice(
        [title, f"{title}\n\nCo-authored-by: pair <pair@example.com>", "Address review comments",
         "Fix tests", "WIP", "Apply suggestions from code review", "Rename per review"]
    )  # fmt: skip
    linked = author if rng.random() > 0.05 else None  # 1 in 20 emails is not linked to an account
    authored = at - timedelta(seconds=rng.randint(0, 3600))
    return Commit(
        sha=_sha(rng),
        author=linked,
        author_name=author.name,
        author_email=author.email,
        authored_at=authored,
        committed_at=at,
        message=message,
        parent_sha=parent,
    )


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _lognormal_seconds(rng: random.Random, *, median: float, sigma: float) -> float:
    """A log-normal duration in whole seconds (GitHub timestamps have second precision)."""
    return float(max(60, round(rng.lognormvariate(math.log(median), sigma))))


def _weighted(rng: random.Random, options: list[tuple[str, float]]) -> str:
    values, weights = zip(*options, strict=True)
    return rng.choices(values, weights=weights)[0]


def _working_time(rng: random.Random, moment: datetime) -> datetime:
    """Move ``moment`` into working hours on a weekday, most of the time."""
    if moment.weekday() >= 5 and rng.random() < 0.85:
        moment += timedelta(days=7 - moment.weekday())
    hour = min(22, max(7, int(rng.gauss(13, 3))))
    return moment.replace(hour=hour, minute=rng.randint(0, 59), second=rng.randint(0, 59), microsecond=0)
