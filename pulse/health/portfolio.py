"""The reads behind the app's Account health page, as the row-level-security reader role.

Every function takes a connection of ``pulse_reader`` inside a transaction that
:func:`declare_scope` opened: the database decides which tenants the signed-in person may see
(``control.declare_health_scope``: account managers their assigned tenants, account directors
and platform admins every active tenant, anyone else none) and declares them, with the
account-health scope the mart's restrictive policy requires, for that transaction only. The
queries themselves never filter by who is asking: what is not declared is not visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from pulse.health.evaluate import HEALTH_MART


def declare_scope(conn: Connection, email: str) -> list[str]:
    """Declare, for this transaction, the tenants whose health ``email`` may see; returns them."""
    visible: list[str] | None = conn.execute(
        text("select control.declare_health_scope(:email)"), {"email": email}
    ).scalar_one()
    return [str(tenant) for tenant in visible or []]


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(text(sql), params).mappings()]


def portfolio(conn: Connection, email: str) -> list[dict[str, Any]]:
    """Every visible tenant with its latest day's score, worst first (tenants not scored yet last).

    Keys: tenant_id, tenant_name, account_managers, score_date, health_score, health_band,
    score_change (vs the previous period), previous_period_score, previous_day_score,
    previous_day_band, the six factor scores, factors_without_data, measured_at.
    """
    return _rows(
        conn,
        f"""
        with latest as (
            select distinct on (tenant_id) *
            from {HEALTH_MART}
            order by tenant_id, score_date desc
        )
        select t.tenant_id, t.tenant_name, t.account_managers,
               h.score_date, h.health_score, h.health_band, h.score_change, h.previous_period_score,
               h.previous_day_score, h.previous_day_band,
               h.agent_runs_trend_score, h.active_users_trend_score, h.agent_success_rate_score,
               h.budget_adherence_score, h.dmt_compliance_trend_score, h.data_freshness_score,
               h.factors_without_data, h.measured_at
        from control.health_tenants(:email) as t
        left join latest as h on h.tenant_id = t.tenant_id
        order by h.health_score nulls last, t.tenant_name, t.tenant_id
        """,
        {"email": email},
    )


def history(conn: Connection, tenant_id: str, since: date) -> list[dict[str, Any]]:
    """One visible tenant's days from ``since``, oldest first, every column of the mart."""
    return _rows(
        conn,
        f"select * from {HEALTH_MART} where tenant_id = :t and score_date >= :since order by score_date",
        {"t": tenant_id, "since": since},
    )


def recent_alerts(conn: Connection, tenant_ids: Sequence[str], limit: int = 50) -> list[dict[str, Any]]:
    """The latest health alerts of the visible tenants, newest first."""
    return _rows(
        conn,
        """
        select a.fired_at, a.tenant_id, a.score_date, a.previous_score, a.previous_band, a.health_score,
               a.health_band, a.reason
        from control.health_alerts as a
        where a.tenant_id = any(cast(:tenants as text[]))
        order by a.fired_at desc, a.health_alert_id desc
        limit :limit
        """,
        {"tenants": list(tenant_ids), "limit": limit},
    )


def _count(value: Any) -> int:
    return int(value or 0)


def factor_details(day: dict[str, Any], weights: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The six factors of one day of the mart, for people: label, score (None: no data), figures.

    ``weights`` (factor → weight) adds each factor's share of the day's score, renormalized over
    the factors with data; without it the share is left out.
    """
    from pulse.health.rules import FACTOR_LABELS

    runs = f"{_count(day['runs_current'])} runs in the period, {_count(day['runs_previous'])} in the one before"
    people = _count(day["active_users_current"])
    users = (
        f"{people} {'person' if people == 1 else 'people'} ran agents in the period, "
        f"{_count(day['active_users_previous'])} in the one before"
    )
    finished = _count(day["finished_runs_current"])
    success = (
        f"{_count(day['succeeded_runs_current'])} of {finished} finished runs succeeded"
        if finished
        else "no run finished in the period"
    )
    if day["budget_amount_usd"] is None:
        budget = "no organisation budget"
    else:
        budget = (
            f"projected month-end spend USD {day['projected_spend_usd']:,.2f} of a USD "
            f"{day['budget_amount_usd']:,.2f} budget ({day['projected_share_pct']:.1f} %)"
        )
    if not _count(day["done_items_current"]):
        compliance = "no work item done in the period"
    else:
        compliance = (
            f"{_count(day['compliant_items_current'])} of {_count(day['done_items_current'])} items done were "
            f"DMT compliant ({day['compliance_rate_current']:.1f} %)"
        )
        if day["compliance_rate_previous"] is not None:
            compliance += f"; {day['compliance_rate_previous']:.1f} % in the period before"
    if day["last_load_at"] is None:
        freshness = "no dlt load yet"
    else:
        freshness = f"newest load {day['hours_since_last_load']:.1f} h before the end of the day"
    figures = {
        "agent_runs_trend": runs,
        "active_users_trend": users,
        "agent_success_rate": success,
        "budget_adherence": budget,
        "dmt_compliance_trend": compliance,
        "data_freshness": freshness,
    }
    present = {factor for factor in FACTOR_LABELS if day[f"{factor}_score"] is not None}
    total = sum(weights[factor] for factor in present) if weights else 0
    details = []
    for factor, label in FACTOR_LABELS.items():
        score = day[f"{factor}_score"]
        detail: dict[str, Any] = {
            "factor": label,
            "score": None if score is None else float(score),
            "figures": figures[factor],
        }
        if weights:
            detail["share_pct"] = round(100 * weights[factor] / total, 1) if factor in present and total else None
        details.append(detail)
    return details
