"""Customer-account health for platform staff: a daily score per tenant and its alerts.

The score is SQL (``marts.fct_account_health_daily``, dbt_project/models/marts/accounts): six
weighted factors, bands, the change since the previous period and since the day before. This
package is what happens around it:

- :mod:`pulse.health.rules` — bands, when a fall alerts, ``PULSE_HEALTH_ALERT_DROP``;
- :mod:`pulse.health.evaluate` — compare each tenant's latest day with the day before and
  alert its account managers once a day (ledger ``control.health_alerts``, migration 0005), in
  the app and by email through the notifications and outbox of the budget alerts;
- :mod:`pulse.health.portfolio` — the reads of the app's Account health page, scoped in the
  database by ``control.declare_health_scope`` (account managers: their tenants; account
  directors and platform admins: all).

Dagster's health sensor (orchestration/defs/health) calls :func:`run_health_alerts` after each
refresh of the mart. docs/health.md explains the rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pulse.budgets.mail import DeliveryReport, SmtpSettings, deliver_due_emails
from pulse.health.evaluate import HealthAlert, evaluate_health

__all__ = ["HealthAlert", "HealthAlertRun", "evaluate_health", "run_health_alerts"]


@dataclass(frozen=True)
class HealthAlertRun:
    """What one pass did: alerts fired (notifications written) and emails delivered."""

    alerts: list[HealthAlert]
    delivery: DeliveryReport


def run_health_alerts(
    engine: sa.Engine,
    *,
    tenant_ids: Iterable[str] | None = None,
    smtp: SmtpSettings | None = None,
    now: datetime | None = None,
    drop_threshold: int | None = None,
    delivery_time_budget_seconds: float | None = None,
) -> HealthAlertRun:
    """Evaluate account health (of ``tenant_ids``, default all), then deliver every due email.

    The alerts and their notifications are committed before any email is attempted, so a mail
    server that is down never holds back, or rolls back, an in-app notification.
    """
    with engine.begin() as conn:
        alerts = evaluate_health(conn, tenant_ids=tenant_ids, now=now, drop_threshold=drop_threshold)
    delivery = deliver_due_emails(
        engine,
        smtp if smtp is not None else SmtpSettings.from_env(),
        now=now,
        time_budget_seconds=delivery_time_budget_seconds,
    )
    return HealthAlertRun(alerts, delivery)
