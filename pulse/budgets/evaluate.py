"""Budget evaluation: which thresholds the month's spend crossed, alerted exactly once.

For each budget, the current month (tenant time zone) is compared with the budget:

- a threshold is crossed when ``spend × 100 ≥ threshold × amount`` (exact decimals: 50 % of
  400.00 is crossed at 200.00, not at 200.01);
- each crossed threshold gets a row in ``control.budget_alerts``; the partial unique index
  ``(budget, month, kind, threshold) where rearmed_at is null`` admits one live row, so an
  evaluation that runs again (a sensor re-run, a restart, a backfill that rebuilds the marts,
  two evaluators at once) inserts nothing and notifies nobody twice;
- several thresholds crossed at once (spend jumps from 40 % to 105 %) are all recorded, and
  announced together by one notification about the highest;
- raising a budget re-arms the live alerts that were raised at a lower amount and that the
  new amount puts back out of reach (``rearmed_at``), so they alert again at the new level;
- an early warning (kind ``forecast``) when the projected month-end spend exceeds the budget
  while the spend is still under it, once per budget and month, re-armed the same way.

The notifications (one per recipient) and their emails (``control.email_outbox``) are written
in the caller's transaction together with the ledger rows: either all of an alert exists, or
none of it. Emails are sent later by :mod:`pulse.budgets.mail`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from pulse.budgets.mail import queue_email
from pulse.budgets.store import Budget, current_utilization, list_budgets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    user_id: int
    email: str
    name: str


@dataclass(frozen=True)
class Alert:
    """An alert that fired in this evaluation (and was notified)."""

    alert_id: int
    tenant_id: str
    budget_id: int
    kind: str  # threshold | forecast
    threshold_pct: int
    #: Every threshold newly crossed with it (ascending), itself included.
    crossed: tuple[int, ...]
    period_start: date
    amount_usd: Decimal
    spend_usd: Decimal
    projected_usd: Decimal | None
    title: str
    recipients: tuple[str, ...]


# -- pure rules -----------------------------------------------------------------------------


def period_start(moment: datetime, timezone: str) -> date:
    """First day of the calendar month that contains ``moment`` in ``timezone``."""
    return moment.astimezone(ZoneInfo(timezone)).date().replace(day=1)


def crossed_thresholds(spend: Decimal, amount: Decimal, thresholds: Iterable[int]) -> list[int]:
    """The thresholds (percent) that ``spend`` reached, ascending: spend × 100 ≥ pct × amount."""
    return sorted(pct for pct in set(thresholds) if spend * 100 >= Decimal(pct) * amount)


def forecast_exceeds(spend: Decimal, projected: Decimal | None, amount: Decimal) -> bool:
    """Warn early: the projection is over the budget while the spend is still under it."""
    return projected is not None and projected > amount and spend < amount


def money(value: Decimal) -> str:
    return f"USD {value:,.2f}"


def percent(part: Decimal, whole: Decimal) -> str:
    return f"{(100 * part / whole):.1f} %"


# -- evaluation -----------------------------------------------------------------------------


def recipients(conn: Connection, budget: Budget) -> list[Recipient]:
    """Who hears about a budget: its tenant's org admins, and for a team budget the team's leads."""
    rows = conn.execute(
        text(
            "select distinct u.user_id, u.email, u.name from control.role_grants as g "
            "join control.users as u on u.user_id = g.user_id "
            "where g.tenant_id = :t and (g.role = 'org_admin' "
            "  or (g.role = 'team_lead' and g.team_id = cast(:team as bigint))) "
            "order by u.email"
        ),
        {"t": budget.tenant_id, "team": budget.team_id},
    )
    return [Recipient(int(row.user_id), row.email, row.name) for row in rows]


def _rearm(
    conn: Connection, budget: Budget, period: date, spend: Decimal, projected: Decimal | None, now: datetime
) -> list[int]:
    """Re-arm the live alerts raised at a lower amount that the current amount puts out of reach."""
    rows = conn.execute(
        text(
            "update control.budget_alerts set rearmed_at = :now "
            "where budget_id = :b and period_start = :p and rearmed_at is null and budget_amount_usd < :amount "
            "  and ((kind = 'threshold' and :spend * 100 < threshold_pct * :amount) "
            "    or (kind = 'forecast' and coalesce(cast(:projected as numeric), 0) <= :amount)) "
            "returning alert_id"
        ),
        {
            "now": now,
            "b": budget.budget_id,
            "p": period,
            "amount": budget.amount_usd,
            "spend": spend,
            "projected": projected,
        },
    )
    return [int(row[0]) for row in rows]


def _record(
    conn: Connection,
    budget: Budget,
    period: date,
    kind: str,
    pct: int,
    spend: Decimal,
    projected: Decimal | None,
    now: datetime,
) -> int | None:
    """Insert a live ledger row; None when one exists already (the alert fired before)."""
    alert_id = conn.execute(
        text(
            "insert into control.budget_alerts (tenant_id, budget_id, period_start, kind, threshold_pct, "
            "budget_amount_usd, spend_usd, projected_usd, fired_at) "
            "values (:t, :b, :p, :kind, :pct, :amount, :spend, :projected, :now) "
            "on conflict (budget_id, period_start, kind, threshold_pct) where rearmed_at is null do nothing "
            "returning alert_id"
        ),
        {
            "t": budget.tenant_id,
            "b": budget.budget_id,
            "p": period,
            "kind": kind,
            "pct": pct,
            "amount": budget.amount_usd,
            "spend": spend,
            "projected": projected,
            "now": now,
        },
    ).scalar_one_or_none()
    return None if alert_id is None else int(alert_id)


def _message(
    budget: Budget,
    tenant_name: str,
    period: date,
    kind: str,
    crossed: tuple[int, ...],
    spend: Decimal,
    projected: Decimal | None,
) -> tuple[str, str]:
    """Title and body of an alert, for the notification and the email alike."""
    month = f"{period:%B %Y}"
    amount = budget.amount_usd
    what = f"{tenant_name}'s {budget.label} budget"
    if kind == "forecast":
        assert projected is not None
        title = f"{what} is projected to be exceeded"
        body = (
            f"At the rate of the last 7 days, agent spend for {month} will reach {money(projected)}, "
            f"{percent(projected, amount)} of the {money(amount)} monthly {budget.label} budget. "
            f"Spent so far: {money(spend)} ({percent(spend, amount)})."
        )
        return title, body
    top = crossed[-1]
    title = f"{what} {top} % used"
    body = (
        f"Agent spend for {month} is {money(spend)}, {percent(spend, amount)} of the {money(amount)} "
        f"monthly {budget.label} budget"
        + (
            f": it crossed the {', '.join(f'{pct} %' for pct in crossed)} thresholds at once."
            if len(crossed) > 1
            else f": it crossed the {top} % threshold."
        )
    )
    if projected is not None and top < 100:
        body += f" Projected month-end spend: {money(projected)}."
    return title, body


def _notify(
    conn: Connection,
    budget: Budget,
    alert_id: int,
    kind: str,
    title: str,
    body: str,
    tenant_name: str,
    people: list[Recipient],
    now: datetime,
) -> None:
    """One in-app notification per recipient and, for each, one email due at ``now`` in the outbox."""
    for person in people:
        notification_id = conn.execute(
            text(
                "insert into control.notifications (tenant_id, user_id, recipient_email, kind, title, body, alert_id) "
                "values (:t, :u, :email, :kind, :title, :body, :alert) "
                "on conflict (alert_id, user_id) do nothing returning notification_id"
            ),
            {
                "t": budget.tenant_id,
                "u": person.user_id,
                "email": person.email,
                "kind": f"budget_{kind}",
                "title": title,
                "body": body,
                "alert": alert_id,
            },
        ).scalar_one_or_none()
        if notification_id is None:
            continue
        queue_email(
            conn,
            tenant_id=budget.tenant_id,
            notification_id=notification_id,
            email=person.email,
            subject=f"[Pulse] {title}",
            body=(
                f"Hello {person.name},\n\n{body}\n\n"
                f"The Budgets page of Pulse shows every budget of {tenant_name} and its alerts.\n"
                "You receive this because you are an org admin"
                + (" or a lead of the team." if budget.team_id is not None else ".")
                + "\n"
            ),
            now=now,
        )


def evaluate_budget(conn: Connection, budget: Budget, *, now: datetime) -> list[Alert]:
    """Evaluate one budget for the month that contains ``now`` (tenant time zone)."""
    tenant = conn.execute(
        text("select name, timezone from control.tenants where slug = :t"), {"t": budget.tenant_id}
    ).one()
    period = period_start(now, tenant.timezone)
    usage = current_utilization(conn, budget.budget_id, period)
    spend = usage.month_to_date_spend_usd if usage else Decimal(0)
    projected = usage.projected_spend_usd if usage else None
    rearmed = _rearm(conn, budget, period, spend, projected, now)
    if rearmed:
        log.info("budget %s: re-armed alerts %s after the budget rose", budget.budget_id, rearmed)

    fired: list[Alert] = []
    new: list[tuple[int, int]] = []
    for pct in crossed_thresholds(spend, budget.amount_usd, budget.thresholds):
        alert_id = _record(conn, budget, period, "threshold", pct, spend, projected, now)
        if alert_id is not None:
            new.append((pct, alert_id))
    kinds: list[tuple[str, int, tuple[int, ...]]] = []
    if new:
        crossed = tuple(pct for pct, _ in new)
        top_id = new[-1][1]
        conn.execute(
            text("update control.budget_alerts set announced_by = :top where alert_id = any(:ids)"),
            {"top": top_id, "ids": [alert_id for _, alert_id in new]},
        )
        kinds.append(("threshold", top_id, crossed))
    if forecast_exceeds(spend, projected, budget.amount_usd):
        alert_id = _record(conn, budget, period, "forecast", 100, spend, projected, now)
        if alert_id is not None:
            kinds.append(("forecast", alert_id, ()))

    people = recipients(conn, budget) if kinds else []
    if kinds and not people:
        log.warning(
            "budget %s of %s alerted but has no recipients: grant org_admin (or team_lead) to someone",
            budget.budget_id,
            budget.tenant_id,
        )
    for kind, alert_id, crossed in kinds:
        title, body = _message(budget, tenant.name, period, kind, crossed, spend, projected)
        _notify(conn, budget, alert_id, kind, title, body, tenant.name, people, now)
        fired.append(
            Alert(
                alert_id=alert_id,
                tenant_id=budget.tenant_id,
                budget_id=budget.budget_id,
                kind=kind,
                threshold_pct=crossed[-1] if crossed else 100,
                crossed=crossed,
                period_start=period,
                amount_usd=budget.amount_usd,
                spend_usd=spend,
                projected_usd=projected,
                title=title,
                recipients=tuple(person.email for person in people),
            )
        )
    return fired


def evaluate_budgets(
    conn: Connection,
    *,
    tenant_ids: Iterable[str] | None = None,
    budget_ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> list[Alert]:
    """Evaluate every budget of the active tenants (or of ``tenant_ids`` / ``budget_ids``; empty: none).

    ``now`` (default: the transaction's time) decides the month. The caller owns the
    transaction; commit it to keep the ledger, notifications and emails together.
    """
    wanted_tenants = None if tenant_ids is None else set(tenant_ids)
    wanted_budgets = None if budget_ids is None else set(budget_ids)
    if wanted_tenants == set() or wanted_budgets == set():
        return []
    if now is None:
        now = conn.execute(text("select now()")).scalar_one()
    assert now is not None
    active: set[str] = set(
        conn.execute(text("select slug from control.tenants where is_active and deleted_at is null")).scalars()
    )
    fired: list[Alert] = []
    for budget in list_budgets(conn):
        if budget.tenant_id not in active:
            continue
        if wanted_tenants is not None and budget.tenant_id not in wanted_tenants:
            continue
        if wanted_budgets is not None and budget.budget_id not in wanted_budgets:
            continue
        fired.extend(evaluate_budget(conn, budget, now=now))
    return fired
