"""Data access of the Sprint delivery dashboard, on top of data.py's rules.

Every read runs in :func:`data.scoped` — the reader role, the signed-in user's grants checked
in the database, the tenant declared for this transaction only — so row-level security on the
marts confines it to that tenant, and each query also names ``tenant_id`` (and the sprint or
project keys) in its predicates, so it reads through the marts' primary-key indexes and stays
distributable by ``tenant_id``. Lists are bounded (``limit``). Only marts are read: the
intermediate models (int_sprint_scope and the like) are not the reader role's.

What the page shows for one sprint (``sprint_uid`` as dim_sprints has it):

* the picker: :func:`projects` (with the teams that own them, dim_teams' naming rule) and a
  project's :func:`sprints`;
* :func:`sprint_headline`: the fct_sprints row;
* :func:`sprint_trend`: velocity and say/do of the last sprints of the same project and board;
* :func:`sprint_developers`: fct_developer_sprints with the people's names;
* :func:`sprint_open_flags`: open compliance flags of the items in the sprint, critical first;
* :func:`sprint_pr_health`: weekly PR health of the repositories the sprint's people work in.

Cached reads follow data.py (``ttl=60``, keyed by the user, the tenant and the sprint); the
keyword ``_bind`` (left out of the cache key) runs a read on another reader engine, and
:func:`uncached` gives the function under the cache — what bench/dashboard_queries.py times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, cast

import data
import pandas as pd
import sqlalchemy as sa
import streamlit as st

P = ParamSpec("P")
R = TypeVar("R")

PROJECTS_MART = "marts.dim_projects"
SPRINTS_MART = "marts.dim_sprints"
SPRINT_FACTS_MART = "marts.fct_sprints"
DEVELOPERS_MART = "marts.fct_developer_sprints"
FLAGS_MART = "marts.fct_compliance_flags"
PR_HEALTH_MART = "marts.fct_pr_health"

#: Sprints the velocity and say/do trend shows by default.
TREND_SPRINTS = 12
#: Upper bounds of the lists (a sprint has a few dozen people and flags; these are guards).
PICKER_LIMIT = 500
LIST_LIMIT = 500


@dataclass(frozen=True)
class SprintHeadline:
    """One sprint's figures (marts.fct_sprints; the model's docs say what counts where)."""

    sprint_uid: str
    sprint_name: str | None
    source_system: str | None
    project_key: str | None
    board_id: str | None
    state: str | None
    start_at: datetime | None
    #: Planned end (dim_sprints).
    end_at: datetime | None
    #: End of the measured window (exclusive): completion, else planned end, capped at the build's "now".
    window_end_at: datetime | None
    committed_items: int
    committed_points: float
    added_items: int
    added_points: float
    removed_items: int
    removed_points: float
    #: Velocity.
    completed_points: float
    committed_points_completed: float
    #: 0–1; None when nothing was committed or the sprint has not started.
    say_do_ratio: float | None
    #: Items completed (every type).
    throughput: int
    completed_stories: int
    completed_bugs: int
    completed_tasks: int
    mean_cycle_time_days: float | None
    median_cycle_time_days: float | None
    mean_lead_time_days: float | None
    median_lead_time_days: float | None
    scope_items: int
    blocked_days_total: float
    blocked_days_per_item: float | None
    post_release_defects: int
    #: Post-release defects per 100 completed points.
    defect_density: float | None
    dmt_assessed_items: int
    dmt_compliant_items: int
    #: 0–100; None when no item is assessed.
    dmt_compliance_rate: float | None
    prs_merged: int
    prs_merged_without_review: int
    mean_hours_to_first_review: float | None
    #: 0–100; None when no pull request was merged.
    share_reviewed: float | None


_HEADLINE_SQL = sa.text(
    f"""
    select
        facts.sprint_uid, facts.sprint_name, facts.source_system, facts.project_key, sprints.board_id,
        facts.state, facts.start_at, sprints.end_at, facts.window_end_at,
        facts.committed_items, facts.committed_points, facts.added_items, facts.added_points,
        facts.removed_items, facts.removed_points, facts.completed_points, facts.committed_points_completed,
        facts.say_do_ratio, facts.throughput, facts.completed_stories, facts.completed_bugs, facts.completed_tasks,
        facts.mean_cycle_time_days, facts.median_cycle_time_days, facts.mean_lead_time_days,
        facts.median_lead_time_days, facts.scope_items, facts.blocked_days_total, facts.blocked_days_per_item,
        facts.post_release_defects, facts.defect_density, facts.dmt_assessed_items, facts.dmt_compliant_items,
        facts.dmt_compliance_rate, facts.prs_merged, facts.prs_merged_without_review,
        facts.mean_hours_to_first_review, facts.share_reviewed
    from {SPRINT_FACTS_MART} as facts
    left join {SPRINTS_MART} as sprints
        on sprints.tenant_id = facts.tenant_id and sprints.sprint_uid = facts.sprint_uid
    where facts.tenant_id = :tenant_id and facts.sprint_uid = :sprint_uid
    """
)

_INTEGERS = frozenset(
    {
        "committed_items", "added_items", "removed_items", "throughput", "completed_stories", "completed_bugs",
        "completed_tasks", "scope_items", "post_release_defects", "dmt_assessed_items", "dmt_compliant_items",
        "prs_merged", "prs_merged_without_review",
    }
)  # fmt: skip
_TEXTS = frozenset({"sprint_uid", "sprint_name", "source_system", "project_key", "board_id", "state"})
_MOMENTS = frozenset({"start_at", "end_at", "window_end_at"})
#: Figures that are never null in the mart (0 when there is nothing to count).
_ZERO_WHEN_EMPTY = frozenset(
    {"committed_points", "added_points", "removed_points", "completed_points", "committed_points_completed",
     "blocked_days_total"}
)  # fmt: skip


def uncached(function: Callable[P, R]) -> Callable[P, R]:
    """The function under ``st.cache_data``: every call reads the database (benchmarks, tests)."""
    return cast(Callable[P, R], getattr(function, "__wrapped__", function))


# -- the picker --------------------------------------------------------------------------------


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def projects(email: str, tenant_id: str, *, _bind: sa.Engine | None = None) -> pd.DataFrame:
    """The tenant's projects for the picker, by name.

    Columns: project_key, project_name, source_system, teams (names of the teams that own the
    project by dim_teams' naming rule, comma-separated; '' when none), sprints (how many the
    project has), latest_start_at (start of its latest sprint; None when it has none).
    """
    sql = sa.text(
        f"""
        with sprint_counts as (
            select project_key, count(*) as sprints, max(start_at) as latest_start_at
            from {SPRINTS_MART}
            where tenant_id = :tenant_id
            group by project_key
        ),
        owners as (
            select owned.project_key, string_agg(teams.team_name, ', ' order by teams.team_name) as teams
            from marts.dim_teams as teams
            cross join lateral unnest(string_to_array(nullif(teams.project_keys, ''), ', ')) as owned (project_key)
            where teams.tenant_id = :tenant_id
            group by owned.project_key
        )
        select
            projects.project_key,
            projects.project_name,
            projects.source_system,
            coalesce(owners.teams, '') as teams,
            coalesce(sprint_counts.sprints, 0)::integer as sprints,
            sprint_counts.latest_start_at
        from {PROJECTS_MART} as projects
        left join sprint_counts on sprint_counts.project_key = projects.project_key
        left join owners on owners.project_key = projects.project_key
        where projects.tenant_id = :tenant_id
        order by projects.project_name, projects.project_key
        limit :limit
        """
    )
    with data.scoped([tenant_id], email=email, bind=_bind) as conn, data._reading(PROJECTS_MART):
        frame = data._frame(conn.execute(sql, {"tenant_id": tenant_id, "limit": PICKER_LIMIT}))
    return frame.astype({"sprints": "int64"})


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def sprints(
    email: str, tenant_id: str, project_key: str, limit: int = PICKER_LIMIT, *, _bind: sa.Engine | None = None
) -> pd.DataFrame:
    """The sprints of one project for the picker, latest first (undated ones on top).

    Columns: sprint_uid, sprint_name, board_id, state (closed, active, future), start_at,
    end_at (planned), completed_at.
    """
    sql = sa.text(
        f"""
        select sprint_uid, sprint_name, board_id, state, start_at, end_at, completed_at
        from {SPRINTS_MART}
        where tenant_id = :tenant_id and project_key = :project_key
        order by start_at desc nulls first, sprint_uid desc
        limit :limit
        """
    )
    params = {"tenant_id": tenant_id, "project_key": project_key, "limit": limit}
    with data.scoped([tenant_id], email=email, bind=_bind) as conn, data._reading(SPRINTS_MART):
        return data._frame(conn.execute(sql, params))


# -- one sprint ---------------------------------------------------------------------------------


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def sprint_headline(
    email: str, tenant_id: str, sprint_uid: str, *, _bind: sa.Engine | None = None
) -> SprintHeadline | None:
    """The sprint's figures; None when the tenant has no such sprint (or its marts lack it)."""
    with data.scoped([tenant_id], email=email, bind=_bind) as conn, data._reading(SPRINT_FACTS_MART):
        row = conn.execute(_HEADLINE_SQL, {"tenant_id": tenant_id, "sprint_uid": sprint_uid}).one_or_none()
    if row is None:
        return None
    values: dict[str, Any] = {}
    for name, value in row._mapping.items():
        if name in _TEXTS:
            values[name] = None if value is None else str(value)
        elif name in _MOMENTS:
            values[name] = value
        elif name in _INTEGERS:
            values[name] = int(value or 0)
        elif name in _ZERO_WHEN_EMPTY:
            values[name] = float(value or 0)
        else:
            values[name] = data._float_or_none(value)
    return SprintHeadline(**values)


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def sprint_trend(
    email: str, tenant_id: str, sprint_uid: str, last: int = TREND_SPRINTS, *, _bind: sa.Engine | None = None
) -> pd.DataFrame:
    """Velocity and say/do of the ``last`` sprints of the sprint's project and board that started
    no later than it (itself included), oldest first; for a sprint without a start date, it and
    the latest ``last - 1`` that have one.

    Columns: sprint_uid, sprint_name, state, start_at, window_end_at, committed_points,
    completed_points (velocity), committed_points_completed, say_do_ratio (0–1 or NaN),
    throughput. Empty when the tenant has no such sprint.
    """
    if last < 1:
        raise ValueError(f"The trend needs at least one sprint, not {last}.")
    sql = sa.text(
        f"""
        with chosen as (
            select project_key, board_id, start_at
            from {SPRINTS_MART}
            where tenant_id = :tenant_id and sprint_uid = :sprint_uid
        ),
        recent as (
            select sprints.sprint_uid, sprints.start_at
            from {SPRINTS_MART} as sprints
            inner join chosen
                on chosen.project_key = sprints.project_key
                and chosen.board_id is not distinct from sprints.board_id
            where sprints.tenant_id = :tenant_id
              and (
                  sprints.sprint_uid = :sprint_uid
                  or sprints.start_at <= coalesce(chosen.start_at, 'infinity'::timestamptz)
              )
            order by sprints.start_at desc nulls first, sprints.sprint_uid desc
            limit :last
        )
        select
            facts.sprint_uid,
            facts.sprint_name,
            facts.state,
            facts.start_at,
            facts.window_end_at,
            facts.committed_points::double precision as committed_points,
            facts.completed_points::double precision as completed_points,
            facts.committed_points_completed::double precision as committed_points_completed,
            facts.say_do_ratio::double precision as say_do_ratio,
            facts.throughput
        from recent
        inner join {SPRINT_FACTS_MART} as facts
            on facts.tenant_id = :tenant_id and facts.sprint_uid = recent.sprint_uid
        order by recent.start_at nulls last, recent.sprint_uid
        """
    )
    params = {"tenant_id": tenant_id, "sprint_uid": sprint_uid, "last": last}
    with data.scoped([tenant_id], email=email, bind=_bind) as conn, data._reading(SPRINT_FACTS_MART):
        frame = data._frame(conn.execute(sql, params))
    return frame.astype({"say_do_ratio": "float64", "throughput": "int64"})


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def sprint_developers(
    email: str, tenant_id: str, sprint_uid: str, limit: int = LIST_LIMIT, *, _bind: sa.Engine | None = None
) -> pd.DataFrame:
    """The sprint's people (fct_developer_sprints) by points completed, then name.

    Columns: person_id, display_name (dim_people; the email when unknown), is_assignee,
    is_project_member, items_completed, points_completed, commits, prs_authored, prs_merged,
    prs_reviewed, mean_review_turnaround_hours, defects_attributed, dmt_assessed_items,
    dmt_compliant_items, dmt_compliance_rate (0–100), mean_dmt_coverage_pct. Activity is in
    the sprint window, in any repository (not additive across sprints).
    """
    sql = sa.text(
        f"""
        select
            developers.person_id,
            coalesce(
                (
                    select people.display_name
                    from marts.dim_people as people
                    where people.tenant_id = developers.tenant_id and people.person_id = developers.person_id
                ),
                developers.person_id
            ) as display_name,
            developers.is_assignee,
            developers.is_project_member,
            developers.items_completed,
            developers.points_completed::double precision as points_completed,
            developers.commits,
            developers.prs_authored,
            developers.prs_merged,
            developers.prs_reviewed,
            developers.mean_review_turnaround_hours::double precision as mean_review_turnaround_hours,
            developers.defects_attributed,
            developers.dmt_assessed_items,
            developers.dmt_compliant_items,
            developers.dmt_compliance_rate::double precision as dmt_compliance_rate,
            developers.mean_dmt_coverage_pct::double precision as mean_dmt_coverage_pct
        from {DEVELOPERS_MART} as developers
        where developers.tenant_id = :tenant_id and developers.sprint_uid = :sprint_uid
        order by developers.points_completed desc, display_name, developers.person_id
        limit :limit
        """
    )
    params = {"tenant_id": tenant_id, "sprint_uid": sprint_uid, "limit": limit}
    with data.scoped([tenant_id], email=email, bind=_bind) as conn, data._reading(DEVELOPERS_MART):
        frame = data._frame(conn.execute(sql, params))
    return frame.astype(
        {
            "mean_review_turnaround_hours": "float64",
            "dmt_compliance_rate": "float64",
            "mean_dmt_coverage_pct": "float64",
        }
    )


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def sprint_open_flags(
    email: str, tenant_id: str, sprint_uid: str, limit: int = LIST_LIMIT, *, _bind: sa.Engine | None = None
) -> pd.DataFrame:
    """Open compliance flags of the sprint's items: critical first, then warning, then info;
    within a severity the oldest first.

    An item is the sprint's when fct_work_item_compliance says it is in the sprint now (its
    sprint_uid); only done and in-review items are assessed, so only they carry flags.
    Columns: work_item_uid, work_item_key, title, item_type, dmt_stage, assignee (name, else
    email, else None), flag_type, severity, message, opened_at.
    """
    sql = sa.text(
        f"""
        select
            flags.work_item_uid,
            flags.work_item_key,
            items.title,
            items.item_type,
            items.dmt_stage,
            coalesce(
                (
                    select people.display_name
                    from marts.dim_people as people
                    where people.tenant_id = items.tenant_id and people.person_id = items.assignee_person_id
                ),
                items.assignee_person_id
            ) as assignee,
            flags.flag_type,
            flags.severity,
            flags.message,
            flags.opened_at
        from marts.fct_work_item_compliance as items
        inner join {FLAGS_MART} as flags
            on flags.tenant_id = items.tenant_id and flags.work_item_uid = items.work_item_uid
        where items.tenant_id = :tenant_id and items.sprint_uid = :sprint_uid and flags.is_open
        order by
            case flags.severity when 'critical' then 0 when 'warning' then 1 else 2 end,
            flags.opened_at, flags.work_item_key, flags.flag_type
        limit :limit
        """
    )
    params = {"tenant_id": tenant_id, "sprint_uid": sprint_uid, "limit": limit}
    with data.scoped([tenant_id], email=email, bind=_bind) as conn, data._reading(FLAGS_MART):
        return data._frame(conn.execute(sql, params))


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def sprint_pr_health(
    email: str, tenant_id: str, sprint_uid: str, limit: int = LIST_LIMIT, *, _bind: sa.Engine | None = None
) -> pd.DataFrame:
    """Weekly PR health (fct_pr_health) of the sprint team's repositories, over the sprint's weeks.

    The data ties no repository to a team, so the team is the sprint's people
    (fct_developer_sprints) and its repositories are those in which one of them opened a pull
    request in the sprint window (fct_pull_requests; a GitHub author by login, an Azure DevOps
    one by email). The weeks are those fct_pr_health has (Mondays in the tenant's time zone)
    from the Monday of the sprint's first UTC day to its window's last UTC day.
    Columns: week_start, iso_week, source_system, repository, prs_opened, prs_reviewed,
    prs_merged, merged_without_review, share_reviewed (0–100), p50_hours_to_first_review,
    p90_hours_to_first_review, mean_reviews_per_pr, mean_reviewers_per_pr; by week, then
    repository. Empty when none of the sprint's people opened a pull request in its window.
    """
    sql = sa.text(
        f"""
        with sprint as (
            select
                start_at,
                window_end_at,
                date_trunc('week', start_at at time zone 'UTC')::date as first_week,
                ((window_end_at at time zone 'UTC') - interval '1 microsecond')::date as last_day
            from {SPRINT_FACTS_MART}
            where tenant_id = :tenant_id and sprint_uid = :sprint_uid
        ),
        people as (
            select
                developers.person_id,
                (
                    select people.github_login
                    from marts.dim_people as people
                    where people.tenant_id = developers.tenant_id and people.person_id = developers.person_id
                ) as github_login
            from {DEVELOPERS_MART} as developers
            where developers.tenant_id = :tenant_id and developers.sprint_uid = :sprint_uid
        ),
        repositories as (
            select distinct
                pull_requests.source_type as source_system,
                coalesce(pull_requests.repository, '(unknown)') as repository
            from marts.fct_pull_requests as pull_requests
            cross join sprint
            where pull_requests.tenant_id = :tenant_id
              and pull_requests.opened_at >= sprint.start_at
              and pull_requests.opened_at < sprint.window_end_at
              and (
                  (pull_requests.source_type = 'github'
                   and pull_requests.author_login in (select github_login from people))
                  or (pull_requests.source_type = 'azure_devops_git'
                      and pull_requests.author_login in (select person_id from people))
              )
        )
        select
            health.week_start,
            health.iso_week,
            health.source_system,
            health.repository,
            health.prs_opened,
            health.prs_reviewed,
            health.prs_merged,
            health.merged_without_review,
            health.share_reviewed::double precision as share_reviewed,
            health.p50_hours_to_first_review::double precision as p50_hours_to_first_review,
            health.p90_hours_to_first_review::double precision as p90_hours_to_first_review,
            health.mean_reviews_per_pr::double precision as mean_reviews_per_pr,
            health.mean_reviewers_per_pr::double precision as mean_reviewers_per_pr
        from {PR_HEALTH_MART} as health
        inner join repositories
            on repositories.source_system = health.source_system and repositories.repository = health.repository
        cross join sprint
        where health.tenant_id = :tenant_id
          and health.week_start >= sprint.first_week
          and health.week_start <= sprint.last_day
        order by health.week_start, health.source_system, health.repository
        limit :limit
        """
    )
    params = {"tenant_id": tenant_id, "sprint_uid": sprint_uid, "limit": limit}
    with data.scoped([tenant_id], email=email, bind=_bind) as conn, data._reading(PR_HEALTH_MART):
        frame = data._frame(conn.execute(sql, params))
    return frame.astype({"p50_hours_to_first_review": "float64", "p90_hours_to_first_review": "float64"})


def clear() -> None:
    """Forget the cached reads of the Sprint dashboard (the Refresh button)."""
    for cached in (projects, sprints, sprint_headline, sprint_trend, sprint_developers, sprint_open_flags,
                   sprint_pr_health):  # fmt: skip
        cached.clear()
