"""The Pulse app's one data-access module: every database read of the app goes through here.

The app connects only as ``pulse_reader``, the role that row-level security confines. Each
tenant-scoped query runs in :func:`scoped`: a transaction that first checks the signed-in
user's grants (``control.user_grants``, in the database, not the UI state), then declares
the tenants for this transaction only (``set_config('pulse.tenant_ids', ..., true)``).
Nothing declared means nothing visible.

Connections live in ``st.cache_resource``; query results in ``st.cache_data(ttl=60)``, keyed
by every argument, so the signed-in user and the tenant are always part of the cache key and
results of one tenant are never served for another.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
import streamlit as st
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc

from pulse.db import reader_url, sqlalchemy_url
from pulse.settings import TENANT_SLUG_PATTERN, get_settings

log = logging.getLogger(__name__)

TTL_SECONDS = 60
PLATFORM_ADMIN = "platform_admin"
PULL_REQUESTS_MART = "marts.fct_pull_requests"
#: Most recent pull requests the table shows; the figures always cover the whole window.
TABLE_ROW_LIMIT = 2000

_SLUG = re.compile(TENANT_SLUG_PATTERN)


class TenantAccessError(PermissionError):
    """The signed-in user asked for a tenant their grants do not allow."""


class DataNotReadyError(RuntimeError):
    """A relation the app reads does not exist (yet) or the reader role may not read it."""


@dataclass(frozen=True)
class Grant:
    """One role grant of a user, as ``control.user_grants`` returns it."""

    email: str
    name: str
    role: str
    tenant_id: str | None
    tenant_name: str | None
    team_id: int | None
    team_name: str | None


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    tenant_name: str


@dataclass(frozen=True)
class PullRequestSummary:
    """Figures over the pull requests opened in a window (computed in SQL)."""

    opened: int
    merged: int
    merged_without_review: int
    reviewed: int
    #: Median hours from opening to the first review, over PRs that have one; None if none has.
    median_hours_to_first_review: float | None
    #: 100 × merged without review / merged; None when nothing was merged.
    merged_without_review_pct: float | None


# -- connection and scope ---------------------------------------------------------------------


def reader_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 5, application_name: str = "pulse-streamlit"
) -> sa.Engine:
    """An engine on ``url`` (the reader role's) with the app's session settings.

    The app's :func:`engine` is one; a benchmark that measures what the app's users wait for
    makes its own with the same settings and passes it to :func:`scoped` as ``bind``.
    """
    return sa.create_engine(
        sqlalchemy_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={
            "application_name": application_name,
            # Timestamps come back in UTC; a runaway query cannot hold a connection forever.
            "options": "-c timezone=UTC -c statement_timeout=30000",
        },
    )


@st.cache_resource(show_spinner=False)
def engine() -> sa.Engine:
    """Engine of the row-level-security reader role (never the admin role)."""
    return reader_engine(reader_url(get_settings()))


_ALLOWED_TENANTS_SQL = sa.text(
    """
    with grants as (
        select g.role, g.tenant_id, g.tenant_name from control.user_grants(:email) as g
    )
    select grants.tenant_id, grants.tenant_name
    from grants
    where grants.tenant_id is not null
    union
    select t.tenant_id, t.tenant_name
    from control.active_tenants() as t
    where exists (select from grants where grants.role = 'platform_admin')
    order by tenant_name, tenant_id
    """
)


def _allowed_tenants(conn: sa.Connection, email: str) -> list[Tenant]:
    rows = conn.execute(_ALLOWED_TENANTS_SQL, {"email": email}).all()
    return [Tenant(row.tenant_id, row.tenant_name) for row in rows]


@contextmanager
def scoped(tenant_ids: Sequence[str], *, email: str, bind: sa.Engine | None = None) -> Iterator[sa.Connection]:
    """Begin a reader transaction in which exactly ``tenant_ids`` are visible to ``email``.

    Raises :class:`TenantAccessError` when ``email``'s grants (read from the database in this
    same transaction) do not allow one of the tenants. The declaration is transaction-local,
    so it ends with the block and never leaks to the next user of the pooled connection.
    ``bind``: a reader-role engine of :func:`reader_engine` to use instead of the app's
    :func:`engine` (benchmarks, which must not depend on the process's settings).
    """
    wanted = sorted(set(tenant_ids))
    if not wanted:
        raise TenantAccessError("No tenant is selected: pick a tenant in the sidebar.")
    malformed = [tenant for tenant in wanted if not _SLUG.fullmatch(tenant)]
    if malformed:
        raise TenantAccessError(f"{', '.join(map(repr, malformed))} is not a tenant id.")
    with (engine() if bind is None else bind).begin() as conn:
        allowed = {tenant.tenant_id for tenant in _allowed_tenants(conn, email)}
        refused = [tenant for tenant in wanted if tenant not in allowed]
        if refused:
            log.warning("refused tenant(s) %s to %s", refused, email)
            raise TenantAccessError(
                f"{email} has no grant for tenant {', '.join(refused)}. Pick one of your "
                "tenants in the sidebar, or ask an org admin of that tenant for access."
            )
        conn.execute(
            sa.text("select set_config('pulse.tenant_ids', :tenant_ids, true)"),
            {"tenant_ids": ",".join(wanted)},
        )
        yield conn


@contextmanager
def _reading(relation: str) -> Iterator[None]:
    """Turn "relation missing" and "permission denied" into a :class:`DataNotReadyError`."""
    try:
        yield
    except sa_exc.ProgrammingError as error:
        if isinstance(error.orig, pg_errors.UndefinedTable):
            raise DataNotReadyError(
                f"{relation} does not exist yet. Build the marts (`dbt build`, or materialize "
                "the transform assets in Dagster), then press Refresh."
            ) from error
        if isinstance(error.orig, pg_errors.InsufficientPrivilege):
            raise DataNotReadyError(
                f"The app's reader role may not read {relation}. The dbt models grant it; "
                "rebuild the marts, then press Refresh."
            ) from error
        raise


def _frame(result: sa.CursorResult[Any]) -> pd.DataFrame:
    return pd.DataFrame(result.all(), columns=list(result.keys()))


# -- sign-in and grants (control plane, through security-definer functions) ------------------


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def sign_in_choices() -> pd.DataFrame:
    """Every grant of every user (development sign-in only): email, name, role, tenant, team."""
    with engine().connect() as conn:
        return _frame(
            conn.execute(
                sa.text(
                    "select email, name, role, tenant_id, tenant_name, team_id, team_name "
                    "from control.dev_sign_in_choices()"
                )
            )
        )


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def grants_for(email: str) -> list[Grant]:
    """The role grants of ``email`` (empty when the user is unknown or has none)."""
    with engine().connect() as conn:
        rows = conn.execute(
            sa.text(
                "select email, name, role, tenant_id, tenant_name, team_id, team_name "
                "from control.user_grants(:email) order by tenant_id nulls first, role"
            ),
            {"email": email},
        ).all()
    return [Grant(**row._asdict()) for row in rows]


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def visible_tenants(email: str) -> list[Tenant]:
    """Tenants ``email`` may select: their granted tenants; for a platform admin every active one."""
    with engine().connect() as conn:
        return _allowed_tenants(conn, email)


# -- pull requests (marts.fct_pull_requests) ---------------------------------------------------

# Window: pull requests opened from the start of ``start`` to the end of ``end`` (UTC days).
_WINDOW = """
    tenant_id = :tenant_id
    and opened_at >= cast(:start as date)::timestamp at time zone 'UTC'
    and opened_at < (cast(:end as date) + 1)::timestamp at time zone 'UTC'
"""


def _window_params(tenant_id: str, start: date, end: date) -> dict[str, object]:
    if end < start:
        raise ValueError(f"The window ends ({end}) before it starts ({start}).")
    return {"tenant_id": tenant_id, "start": start, "end": end}


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Loading pull requests…")
def pull_request_summary(email: str, tenant_id: str, start: date, end: date) -> PullRequestSummary:
    """Figures over ``tenant_id``'s pull requests opened between ``start`` and ``end`` (inclusive)."""
    sql = sa.text(
        f"""
        select
            count(*) as opened,
            count(*) filter (where is_merged) as merged,
            count(*) filter (where is_merged_without_review) as merged_without_review,
            count(*) filter (where hours_to_first_review is not null) as reviewed,
            percentile_cont(0.5) within group (order by hours_to_first_review)
                filter (where hours_to_first_review is not null) as median_hours_to_first_review,
            100.0 * count(*) filter (where is_merged_without_review)
                / nullif(count(*) filter (where is_merged), 0) as merged_without_review_pct
        from {PULL_REQUESTS_MART}
        where {_WINDOW}
        """
    )
    with scoped([tenant_id], email=email) as conn, _reading(PULL_REQUESTS_MART):
        row = conn.execute(sql, _window_params(tenant_id, start, end)).one()
    return PullRequestSummary(
        opened=int(row.opened),
        merged=int(row.merged),
        merged_without_review=int(row.merged_without_review),
        reviewed=int(row.reviewed),
        median_hours_to_first_review=_float_or_none(row.median_hours_to_first_review),
        merged_without_review_pct=_float_or_none(row.merged_without_review_pct),
    )


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def weekly_pull_requests(email: str, tenant_id: str, start: date, end: date) -> pd.DataFrame:
    """Per ISO week (Monday, UTC) of the window: PRs opened, and PRs of the window merged.

    Columns ``week`` (date of the Monday), ``opened``, ``merged``; every week of the window
    has a row, zero when nothing happened. "Merged" counts the window's PRs by the week of
    their merge, up to the end of the window.
    """
    sql = sa.text(
        f"""
        with window_prs as (
            select opened_at, merged_at, is_merged
            from {PULL_REQUESTS_MART}
            where {_WINDOW}
        ),
        weeks as (
            select cast(week as date) as week
            from generate_series(
                date_trunc('week', cast(:start as date)::timestamp),
                date_trunc('week', cast(:end as date)::timestamp),
                interval '1 week'
            ) as week
        ),
        opened as (
            select cast(date_trunc('week', opened_at at time zone 'UTC') as date) as week,
                   count(*) as opened
            from window_prs
            group by date_trunc('week', opened_at at time zone 'UTC')
        ),
        merged as (
            select cast(date_trunc('week', merged_at at time zone 'UTC') as date) as week,
                   count(*) as merged
            from window_prs
            where is_merged
              and merged_at < (cast(:end as date) + 1)::timestamp at time zone 'UTC'
            group by date_trunc('week', merged_at at time zone 'UTC')
        )
        select weeks.week,
               coalesce(opened.opened, 0) as opened,
               coalesce(merged.merged, 0) as merged
        from weeks
        left join opened on opened.week = weeks.week
        left join merged on merged.week = weeks.week
        order by weeks.week
        """
    )
    with scoped([tenant_id], email=email) as conn, _reading(PULL_REQUESTS_MART):
        frame = _frame(conn.execute(sql, _window_params(tenant_id, start, end)))
    return frame.astype({"opened": "int64", "merged": "int64"})


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def pull_requests(email: str, tenant_id: str, start: date, end: date, limit: int = TABLE_ROW_LIMIT) -> pd.DataFrame:
    """``tenant_id``'s pull requests opened in the window, most recent first (at most ``limit``)."""
    sql = sa.text(
        f"""
        select pull_request_id, repository, pull_request_number, title, author_login, state,
               is_draft, opened_at, first_review_at, merged_at,
               cast(hours_to_first_review as double precision) as hours_to_first_review,
               review_count, is_merged_without_review
        from {PULL_REQUESTS_MART}
        where {_WINDOW}
        order by opened_at desc, pull_request_id
        limit :limit
        """
    )
    with scoped([tenant_id], email=email) as conn, _reading(PULL_REQUESTS_MART):
        return _frame(conn.execute(sql, {**_window_params(tenant_id, start, end), "limit": limit}))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def last_updated(email: str, tenant_id: str) -> datetime | None:
    """When a source of ``tenant_id`` last synced (max ``last_sync_at``); None if never."""
    sql = sa.text("select max(last_sync_at) from control.sources where tenant_id = :tenant_id")
    with scoped([tenant_id], email=email) as conn:
        value = conn.execute(sql, {"tenant_id": tenant_id}).scalar()
    return value if isinstance(value, datetime) else None


def clear_cached_queries() -> None:
    """Forget every cached result, so the next read goes to the database (the Refresh button)."""
    for cached in (
        sign_in_choices,
        grants_for,
        visible_tenants,
        pull_request_summary,
        weekly_pull_requests,
        pull_requests,
        last_updated,
    ):
        cached.clear()


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
