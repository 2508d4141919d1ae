"""Data access of the Notifications and Budgets pages, on top of data.py's rules.

Every read runs in :func:`data.scoped` — the reader role, the signed-in user's grants checked
in the database, the tenant declared for the transaction only — so row-level security on
``control.notifications``, ``control.budgets``, ``control.budget_alerts``,
``control.email_outbox`` and ``marts.fct_budget_utilization`` confines it to that tenant.
Writes are the security-definer functions of migration 0003, which check in the database
that the user may make them (their own notifications; org admins for budgets); the reader
role can change nothing else. Cached reads follow data.py: ``ttl=60``, keyed by the user
and the tenant; :func:`clear` forgets them after a change or on Refresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import data
import pandas as pd
import sqlalchemy as sa
import streamlit as st
from sqlalchemy import exc as sa_exc

UTILIZATION_MART = "marts.fct_budget_utilization"


class BudgetChangeError(RuntimeError):
    """The database refused a budget change; the message says why."""


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def notifications(email: str, tenant_id: str, limit: int = 200) -> pd.DataFrame:
    """``email``'s notifications in ``tenant_id``, newest first, with their email's delivery state."""
    sql = sa.text(
        """
        select n.notification_id, n.created_at, n.kind, n.title, n.body, n.read_at,
               e.status as email_status, e.attempts as email_attempts, e.last_error as email_error,
               e.next_attempt_at as email_next_attempt_at, e.sent_at as email_sent_at
        from control.notifications as n
        left join control.email_outbox as e on e.notification_id = n.notification_id
        where n.tenant_id = :tenant_id and n.recipient_email = lower(:email)
        order by n.created_at desc, n.notification_id desc
        limit :limit
        """
    )
    with data.scoped([tenant_id], email=email) as conn:
        result = conn.execute(sql, {"tenant_id": tenant_id, "email": email, "limit": limit})
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def mark_read(email: str, tenant_id: str, notification_ids: Sequence[int]) -> int:
    """Mark ``email``'s own notifications read; returns how many changed."""
    with data.scoped([tenant_id], email=email) as conn:
        changed: int = conn.execute(
            sa.text("select control.mark_notifications_read(:email, cast(:ids as bigint[]))"),
            {"email": email, "ids": [int(i) for i in notification_ids]},
        ).scalar_one()
    clear()
    return int(changed)


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def may_manage_budgets(email: str, tenant_id: str) -> bool:
    """Whether ``email`` is an org admin of ``tenant_id`` (or a platform admin), per the database."""
    with data.scoped([tenant_id], email=email) as conn:
        return bool(
            conn.execute(
                sa.text("select control.may_manage_budgets(:email, :tenant_id)"),
                {"email": email, "tenant_id": tenant_id},
            ).scalar_one()
        )


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def budgets(email: str, tenant_id: str) -> pd.DataFrame:
    """Every budget of the tenant, organisation first, with this month's figures from the mart.

    Columns: budget_id, budget (label), team_id, amount_usd, thresholds (e.g. "50, 80, 100 %"),
    spent_usd, share_used_pct, projected_usd, projected_share_pct, measured_at; the figures are
    empty until the usage marts have been refreshed since the budget was set.
    """
    sql = sa.text(
        f"""
        with thresholds as (
            select budget_id, string_agg(threshold_pct::text, ', ' order by threshold_pct) || ' %' as thresholds
            from control.budget_thresholds
            group by budget_id
        ),
        current_use as (
            select distinct on (budget_id) budget_id, month_to_date_spend_usd, share_used_pct,
                   projected_spend_usd, projected_share_pct, measured_at
            from {UTILIZATION_MART}
            where tenant_id = :tenant_id and is_current_period
            order by budget_id, measured_at desc
        )
        select b.budget_id,
               case when b.team_id is null then 'Organisation' else 'Team ' || t.name end as budget,
               b.team_id,
               cast(b.amount_usd as double precision) as amount_usd,
               coalesce(th.thresholds, 'none') as thresholds,
               cast(u.month_to_date_spend_usd as double precision) as spent_usd,
               cast(u.share_used_pct as double precision) as share_used_pct,
               cast(u.projected_spend_usd as double precision) as projected_usd,
               cast(u.projected_share_pct as double precision) as projected_share_pct,
               u.measured_at
        from control.budgets as b
        left join control.teams as t on t.team_id = b.team_id
        left join thresholds as th on th.budget_id = b.budget_id
        left join current_use as u on u.budget_id = b.budget_id
        where b.tenant_id = :tenant_id
        order by b.team_id nulls first, t.name
        """
    )
    with data.scoped([tenant_id], email=email) as conn, data._reading(UTILIZATION_MART):
        result = conn.execute(sql, {"tenant_id": tenant_id})
        return pd.DataFrame(result.all(), columns=list(result.keys()))


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def recent_alerts(email: str, tenant_id: str, limit: int = 50) -> pd.DataFrame:
    """The tenant's latest budget alerts: when, which budget, what, and whether still live."""
    sql = sa.text(
        """
        select a.fired_at, case when b.team_id is null then 'Organisation' else 'Team ' || t.name end as budget,
               case when a.kind = 'forecast' then 'Projected over budget'
                    else a.threshold_pct || ' % reached' end as alert,
               a.period_start as month,
               cast(a.spend_usd as double precision) as spent_usd,
               cast(a.budget_amount_usd as double precision) as amount_usd,
               a.rearmed_at is not null as rearmed
        from control.budget_alerts as a
        join control.budgets as b on b.budget_id = a.budget_id
        left join control.teams as t on t.team_id = b.team_id
        where a.tenant_id = :tenant_id
        order by a.fired_at desc, a.alert_id desc
        limit :limit
        """
    )
    with data.scoped([tenant_id], email=email) as conn:
        result = conn.execute(sql, {"tenant_id": tenant_id, "limit": limit})
        return pd.DataFrame(result.all(), columns=list(result.keys()))


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def undelivered_emails(email: str, tenant_id: str) -> pd.DataFrame:
    """Alert emails not sent (yet): recipient, subject, state, attempts, last error, next attempt."""
    sql = sa.text(
        """
        select recipient_email, subject, status, attempts, last_error, next_attempt_at
        from control.email_outbox
        where tenant_id = :tenant_id and status <> 'sent'
        order by created_at desc, email_id desc
        """
    )
    with data.scoped([tenant_id], email=email) as conn:
        result = conn.execute(sql, {"tenant_id": tenant_id})
        return pd.DataFrame(result.all(), columns=list(result.keys()))


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def teams(email: str, tenant_id: str) -> list[tuple[int, str]]:
    """(team_id, name) of the tenant's teams, by name."""
    with data.scoped([tenant_id], email=email) as conn:
        rows = conn.execute(
            sa.text("select team_id, name from control.teams where tenant_id = :tenant_id order by name"),
            {"tenant_id": tenant_id},
        ).all()
    return [(int(row.team_id), str(row.name)) for row in rows]


def _change(email: str, tenant_id: str, sql: str, params: dict[str, object]) -> None:
    try:
        with data.scoped([tenant_id], email=email) as conn:
            conn.execute(sa.text(sql), params)
    except sa_exc.DBAPIError as error:
        diagnostics = getattr(error.orig, "diag", None)
        message = getattr(diagnostics, "message_primary", None) or str(error.orig)
        raise BudgetChangeError(message) from error
    finally:
        clear()


def set_budget(email: str, tenant_id: str, team_id: int | None, amount: Decimal) -> None:
    """Create or change a monthly budget (org admins only; the database checks and audits it)."""
    _change(
        email,
        tenant_id,
        "select control.app_set_budget(:email, :tenant_id, cast(:team_id as bigint), :amount)",
        {"email": email, "tenant_id": tenant_id, "team_id": team_id, "amount": amount},
    )


def add_threshold(email: str, tenant_id: str, budget_id: int, pct: int) -> None:
    """Add an alert threshold (percent) to a budget (org admins only)."""
    _change(
        email,
        tenant_id,
        "select control.app_add_budget_threshold(:email, :budget_id, :pct)",
        {"email": email, "budget_id": budget_id, "pct": pct},
    )


def clear() -> None:
    """Forget the cached reads of these pages."""
    for cached in (notifications, may_manage_budgets, budgets, recent_alerts, undelivered_emails, teams):
        cached.clear()
