"""Great Expectations suites on the marts, declared as data: one suite per mart.

Every expectation carries a severity. ``error`` means the mart is wrong in a way nobody should
build on (a success rate above 100 %, a key missing, a negative cost): in a Dagster run, the
failed check stops the assets downstream of the mart. ``warn`` means someone should look (stale
data, odd input typed into a tool): the check reports it and the run goes on.

Nothing here imports Great Expectations; :mod:`pulse.quality.runner` turns these declarations
into GE expectations when it validates a tenant's partition. To add an expectation, add a line
to the mart's suite below (docs/quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    """The mart is wrong; a failure stops the assets downstream of it."""
    WARN = "warn"
    """Worth a look; a failure is reported and the run goes on."""


ERROR = Severity.ERROR
WARN = Severity.WARN


@dataclass(frozen=True)
class Expectation:
    """One property of a mart's rows. Subclasses say which GE expectation checks it."""

    severity: Severity

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the expectation reads."""
        raise NotImplementedError

    @property
    def gx_type(self) -> str:
        """The class name in ``great_expectations.expectations``."""
        raise NotImplementedError

    def gx_kwargs(self, *, fresh_after: Any = None) -> dict[str, Any]:
        """Keyword arguments of the GE expectation (``fresh_after``: see :class:`Fresh`)."""
        raise NotImplementedError

    def describe(self) -> str:
        """What is expected, in words."""
        raise NotImplementedError

    @property
    def key(self) -> str:
        """Unique within a suite: names the expectation in results and metadata."""
        return f"{type(self).__name__.lower()}:{','.join(self.columns)}"


@dataclass(frozen=True)
class Between(Expectation):
    """Every non-null value of ``column`` lies in [minimum, maximum] (either bound may be open)."""

    column: str
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.minimum is None and self.maximum is None:
            raise ValueError(f"Between({self.column!r}) needs a minimum, a maximum or both")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"Between({self.column!r}): minimum {self.minimum} is above maximum {self.maximum}")

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def gx_type(self) -> str:
        return "ExpectColumnValuesToBeBetween"

    def gx_kwargs(self, *, fresh_after: Any = None) -> dict[str, Any]:
        return {"column": self.column, "min_value": self.minimum, "max_value": self.maximum}

    def describe(self) -> str:
        if self.maximum is None:
            return f"{self.column} ≥ {_number(self.minimum)}"
        if self.minimum is None:
            return f"{self.column} ≤ {_number(self.maximum)}"
        return f"{self.column} between {_number(self.minimum)} and {_number(self.maximum)}"


@dataclass(frozen=True)
class NotNull(Expectation):
    """Completeness: ``column`` is never null."""

    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def gx_type(self) -> str:
        return "ExpectColumnValuesToNotBeNull"

    def gx_kwargs(self, *, fresh_after: Any = None) -> dict[str, Any]:
        return {"column": self.column}

    def describe(self) -> str:
        return f"{self.column} is never empty"


@dataclass(frozen=True)
class Ordered(Expectation):
    """``lower`` ≤ ``upper`` in every row where both are set (e.g. p50 ≤ p90)."""

    lower: str
    upper: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.lower, self.upper)

    @property
    def gx_type(self) -> str:
        return "ExpectColumnPairValuesAToBeGreaterThanB"

    def gx_kwargs(self, *, fresh_after: Any = None) -> dict[str, Any]:
        return {
            "column_A": self.upper,
            "column_B": self.lower,
            "or_equal": True,
            "ignore_row_if": "either_value_is_missing",
        }

    def describe(self) -> str:
        return f"{self.lower} ≤ {self.upper}"


@dataclass(frozen=True)
class Fresh(Expectation):
    """Freshness: the tenant's newest ``column`` (a timestamp or a date) is at most ``max_age`` old.

    A partition without rows passes: a tenant without, say, agent data has nothing to be stale.
    """

    column: str
    max_age: timedelta

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def gx_type(self) -> str:
        return "ExpectColumnMaxToBeBetween"

    def gx_kwargs(self, *, fresh_after: Any = None) -> dict[str, Any]:
        if fresh_after is None:
            raise ValueError(f"Fresh({self.column!r}) needs the moment its newest value must be after")
        return {"column": self.column, "min_value": fresh_after}

    def describe(self) -> str:
        return f"newest {self.column} at most {age_words(self.max_age)} old"

    def oldest_allowed(self, now: datetime, *, is_date: bool) -> datetime | date:
        """The newest value must be at least this (a date for a date column, UTC)."""
        moment = now.astimezone(UTC) - self.max_age
        return moment.date() if is_date else moment


@dataclass(frozen=True)
class Suite:
    """The expectations on one mart, checked on one tenant's partition at a time."""

    model: str
    """The dbt model (its table has the same name)."""
    description: str
    expectations: tuple[Expectation, ...]
    key_columns: tuple[str, ...] = ()
    """Columns that identify a row; failed expectations list the offending rows by them."""
    schema: str = "marts"

    def __post_init__(self) -> None:
        keys = [expectation.key for expectation in self.expectations]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"suite {self.table}: expectations declared twice: {', '.join(duplicates)}")

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.model}"

    @property
    def asset_key_path(self) -> list[str]:
        """The dbt asset's key (``[schema, model]``, as PulseDbtTranslator names it)."""
        return [self.schema, self.model]

    @property
    def blocking(self) -> bool:
        """Whether a failure can stop downstream assets: the suite has an error-severity expectation."""
        return any(expectation.severity is Severity.ERROR for expectation in self.expectations)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the suite reads, in order of first use (key columns last)."""
        seen: dict[str, None] = {}
        for expectation in self.expectations:
            seen.update(dict.fromkeys(expectation.columns))
        seen.update(dict.fromkeys(self.key_columns))
        return tuple(seen)


def _number(value: float | None) -> str:
    return f"{value:g}" if value is not None else "∞"


def age_words(age: timedelta) -> str:
    """``timedelta(hours=48)`` → "2 days"; ``timedelta(hours=26)`` → "26 hours"."""
    hours = age.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def _ranks(*columns: str, severity: Severity = ERROR) -> tuple[Expectation, ...]:
    return tuple(Between(severity, column, minimum=1) for column in columns)


#: One suite per mart. Suites whose model is not in the dbt manifest yet are skipped by the
#: Dagster checks (orchestration/defs/quality), so a suite may be declared before its mart.
SUITES: tuple[Suite, ...] = (
    Suite(
        model="fct_agent_runs",
        description="One row per agent run: keys, no negative tokens or costs, runs keep arriving.",
        key_columns=("agent_run_id",),
        expectations=(
            NotNull(ERROR, "agent_run_id"),
            NotNull(ERROR, "tenant_id"),
            NotNull(ERROR, "run_date"),
            Between(ERROR, "total_tokens", minimum=0),
            Between(ERROR, "cost_usd", minimum=0),
            # Clock skew between a source's start and end times is the source's, not ours.
            Between(WARN, "duration_seconds", minimum=0),
            Fresh(WARN, "updated_at", max_age=timedelta(hours=48)),
        ),
    ),
    Suite(
        model="fct_agent_usage_daily",
        description="Daily agent usage: success rate is a share (0 to 1), counts and percentiles are consistent.",
        key_columns=("usage_date", "team_name", "user_email", "agent_type", "model_name", "status"),
        expectations=(
            NotNull(ERROR, "tenant_id"),
            NotNull(ERROR, "usage_date"),
            # success_rate is succeeded / finished runs, a share from 0 to 1 (not a percentage).
            Between(ERROR, "success_rate", minimum=0, maximum=1),
            Between(ERROR, "runs", minimum=0),
            Ordered(ERROR, "succeeded_runs", "finished_runs"),
            Ordered(ERROR, "finished_runs", "runs"),
            Between(ERROR, "cost_usd", minimum=0),
            Ordered(ERROR, "p50_duration_seconds", "p90_duration_seconds"),
            Fresh(WARN, "usage_date", max_age=timedelta(days=3)),
        ),
    ),
    Suite(
        model="fct_agent_team_ranks_monthly",
        description="Ranks within a team start at 1 and never exceed the team's headcount.",
        key_columns=("usage_month", "team_name", "user_email"),
        expectations=(
            NotNull(ERROR, "user_email"),
            *_ranks("runs_rank", "tokens_rank", "cost_rank"),
            Ordered(ERROR, "runs_rank", "team_people"),
        ),
    ),
    Suite(
        model="fct_agent_top_users_monthly",
        description="The top 10 per measure: ranks 1 to 10.",
        key_columns=("usage_month", "measure", "user_email"),
        expectations=(
            NotNull(ERROR, "user_email"),
            Between(ERROR, "measure_rank", minimum=1, maximum=10),
        ),
    ),
    Suite(
        model="fct_agent_spend_monthly",
        description="Spend per month and team: every row counts at least one run, and no cost is negative.",
        key_columns=("spend_month", "team_id"),
        # Warnings: fct_agent_runs' own (blocking) suite checks the runs it sums, and a blocking
        # suite here would put fct_budget_utilization in a dbt build of its own.
        expectations=(
            NotNull(WARN, "spend_month"),
            Between(WARN, "runs", minimum=1),
            Between(WARN, "cost_usd", minimum=0),
        ),
    ),
    Suite(
        model="fct_budget_utilization",
        description="Budget use: no negative spend or share; the projection never falls below what was spent.",
        key_columns=("budget_id", "period_start"),
        expectations=(
            NotNull(ERROR, "budget_id"),
            Between(ERROR, "month_to_date_spend_usd", minimum=0),
            # Over budget is allowed (above 100 %); below 0 is not.
            Between(ERROR, "share_used_pct", minimum=0),
            Ordered(ERROR, "month_to_date_spend_usd", "projected_spend_usd"),
            Fresh(WARN, "measured_at", max_age=timedelta(hours=26)),
        ),
    ),
    Suite(
        model="fct_pull_requests",
        description="Pull requests: keys and open time present, review counts consistent, still arriving.",
        key_columns=("pull_request_id",),
        expectations=(
            NotNull(ERROR, "pull_request_id"),
            NotNull(ERROR, "opened_at"),
            Between(ERROR, "review_count", minimum=0),
            Ordered(ERROR, "reviewer_count", "review_count"),
            # A review stamped before the PR opened is a tool's clock, worth a look only.
            Between(WARN, "hours_to_first_review", minimum=0),
            Fresh(WARN, "updated_at", max_age=timedelta(days=7)),
        ),
    ),
    Suite(
        model="fct_sprints",
        description="Sprint delivery: say/do is a share (0 to 1), points never negative, compliance and review "
        "shares are percentages, sprints keep starting.",
        key_columns=("sprint_uid",),
        expectations=(
            NotNull(ERROR, "sprint_uid"),
            # Completed-of-committed points at the start estimate: a share from 0 to 1 by construction.
            Between(ERROR, "say_do_ratio", minimum=0, maximum=1),
            Between(ERROR, "dmt_compliance_rate", minimum=0, maximum=100),
            Between(ERROR, "share_reviewed", minimum=0, maximum=100),
            Between(ERROR, "committed_points", minimum=0),
            Ordered(ERROR, "committed_points_completed", "committed_points"),
            Fresh(WARN, "start_at", max_age=timedelta(days=30)),
        ),
    ),
    Suite(
        model="fct_work_item_compliance",
        description="Done-Means-Tested per work item: every row names its work item.",
        key_columns=("work_item_uid",),
        expectations=(
            NotNull(ERROR, "work_item_uid"),
            NotNull(ERROR, "tenant_id"),
            # Coverage is typed into the tool by people: 120 % is worth a look, not a stop.
            Between(WARN, "dmt_coverage_pct", minimum=0, maximum=100),
        ),
    ),
    Suite(
        model="fct_pr_health",
        description="PR health per repository and week: review share is a percentage, the median time to "
        "first review never above the 90th percentile.",
        key_columns=("source_system", "repository", "week_start"),
        expectations=(
            NotNull(ERROR, "repository"),
            Between(ERROR, "share_reviewed", minimum=0, maximum=100),
            Ordered(ERROR, "p50_hours_to_first_review", "p90_hours_to_first_review"),
            Ordered(ERROR, "merged_without_review", "prs_merged"),
            Fresh(WARN, "week_start", max_age=timedelta(days=14)),
        ),
    ),
)


def suites_by_model(suites: tuple[Suite, ...] = SUITES) -> dict[str, Suite]:
    """The suites keyed by dbt model name (one suite per mart)."""
    found: dict[str, Suite] = {}
    for suite in suites:
        if suite.model in found:
            raise ValueError(f"two suites for {suite.table}; put the expectations in one")
        found[suite.model] = suite
    return found
