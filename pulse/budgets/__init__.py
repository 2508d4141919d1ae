"""Budgets and alerts: monthly agent-cost budgets per organisation and team, and their alerts.

Why a package of its own: a budget is control-plane state (``control.budgets``, migration
0003), its spend comes from the marts (``marts.fct_budget_utilization``), and its alerts go
to people (in-app notifications) and mailboxes (SMTP). The pieces:

- :mod:`pulse.budgets.store` — set budgets and thresholds (audited), list them;
- :mod:`pulse.budgets.evaluate` — compare spend with every threshold, once per budget, month
  and threshold (the alert ledger), and write the notifications and the emails to send;
- :mod:`pulse.budgets.mail` — SMTP settings from the environment and the outbox delivery,
  with retries and backoff;
- :mod:`pulse.budgets.cli` — ``pulse budget …``.

Dagster's budget sensor (orchestration/defs/budgets) calls :func:`run_budget_alerts` after
each refresh of the usage marts. docs/budgets.md explains the rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pulse.budgets.evaluate import Alert, evaluate_budgets
from pulse.budgets.mail import DeliveryReport, SmtpSettings, deliver_due_emails
from pulse.budgets.store import Budget, BudgetError

__all__ = [
    "Alert",
    "AlertRun",
    "Budget",
    "BudgetError",
    "DeliveryReport",
    "SmtpSettings",
    "deliver_due_emails",
    "evaluate_budgets",
    "run_budget_alerts",
]


@dataclass(frozen=True)
class AlertRun:
    """What one pass did: alerts fired (notifications written) and emails delivered."""

    alerts: list[Alert]
    delivery: DeliveryReport


def run_budget_alerts(
    engine: sa.Engine,
    *,
    tenant_ids: Iterable[str] | None = None,
    smtp: SmtpSettings | None = None,
    now: datetime | None = None,
    delivery_time_budget_seconds: float | None = None,
) -> AlertRun:
    """Evaluate the budgets (of ``tenant_ids``, default all), then deliver every due email.

    The alerts and their in-app notifications are committed before any email is attempted,
    so a mail server that is down never holds back, or rolls back, a notification.
    """
    with engine.begin() as conn:
        alerts = evaluate_budgets(conn, tenant_ids=tenant_ids, now=now)
    delivery = deliver_due_emails(
        engine,
        smtp if smtp is not None else SmtpSettings.from_env(),
        now=now,
        time_budget_seconds=delivery_time_budget_seconds,
    )
    return AlertRun(alerts, delivery)
