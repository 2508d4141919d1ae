"""Health alerts: a tenant whose score fell is announced to its account managers, once a day.

For each tenant, the latest day of ``marts.fct_account_health_daily`` (``is_latest``) is
compared with the day before (``previous_day_score`` / ``previous_day_band``) by
:func:`pulse.health.rules.alert_reason`: a fall of ``PULSE_HEALTH_ALERT_DROP`` points (default
10) or more, or to a lower band, alerts.

- Only a current day alerts: the tenant's today or yesterday (its time zone) at evaluation
  time. A backfill that rebuilds the mart up to a past ``as_of`` rewrites history; it is not
  news, and announces nothing.
- ``control.health_alerts`` admits one row per tenant and day (migration 0005). The evaluation
  inserts it with ``on conflict do nothing``: a sensor re-run, a lost cursor, a rebuild of the
  same day or two evaluators at once insert nothing more and notify nobody twice. A later fall
  on the same day is not announced again; the next day's is.
- Recipients are the tenant's account managers (``role_grants`` role ``account_manager`` for
  the tenant). Each gets an in-app notification (``control.notifications``, linked by
  ``health_alert_id``) and an email in ``control.email_outbox``, written in the caller's
  transaction with the ledger row; :func:`pulse.budgets.mail.deliver_due_emails` sends them,
  retries included, as it does for budget alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from pulse.budgets.evaluate import Recipient
from pulse.budgets.mail import queue_email
from pulse.health.rules import FACTOR_LABELS, alert_drop_from_env, alert_reason

log = logging.getLogger(__name__)

HEALTH_MART = "marts.fct_account_health_daily"


@dataclass(frozen=True)
class HealthAlert:
    """A health alert that fired in this evaluation (and was notified)."""

    health_alert_id: int
    tenant_id: str
    score_date: date
    health_score: int
    health_band: str
    previous_score: int
    previous_band: str
    reason: str  # drop | band | drop_and_band
    title: str
    recipients: tuple[str, ...]


_LATEST_SQL = f"""
    select h.*, t.name as tenant_name
    from {HEALTH_MART} as h
    join control.tenants as t on t.slug = h.tenant_id
    where h.is_latest
      and t.is_active and t.deleted_at is null
      and h.previous_day_score is not null
      and h.score_date >= (cast(:now as timestamptz) at time zone t.timezone)::date - 1
      and (cast(:tenants as text[]) is null or h.tenant_id = any(cast(:tenants as text[])))
    order by h.tenant_id
"""


def account_managers(conn: Connection, tenant_id: str) -> list[Recipient]:
    """The tenant's account managers, by email."""
    rows = conn.execute(
        text(
            "select distinct u.user_id, u.email, u.name from control.role_grants as g "
            "join control.users as u on u.user_id = g.user_id "
            "where g.role = 'account_manager' and g.tenant_id = :t order by u.email"
        ),
        {"t": tenant_id},
    )
    return [Recipient(int(row.user_id), row.email, row.name) for row in rows]


def _number(value: Any) -> str:
    return f"{Decimal(value):.0f}" if value is not None else "no data"


def factor_lines(row: Mapping[str, Any]) -> list[str]:
    """One line per factor, lowest score first, those without data last."""
    scored = [(label, row[f"{factor}_score"]) for factor, label in FACTOR_LABELS.items()]
    ordered = sorted(scored, key=lambda item: (item[1] is None, item[1] if item[1] is not None else 0))
    return [f"- {label}: {_number(score)}" for label, score in ordered]


def message(row: Mapping[str, Any], reason: str) -> tuple[str, str]:
    """Title and body of a health alert, for the notification and the email alike."""
    name = row["tenant_name"]
    score, band = int(row["health_score"]), row["health_band"]
    previous, previous_band = int(row["previous_day_score"]), row["previous_day_band"]
    fall = previous - score
    title = f"{name}'s account health fell to {score} ({band})"
    why = f"down {fall} point{'s' if fall != 1 else ''} from {previous} ({previous_band}) the day before"
    if reason in ("band", "drop_and_band"):
        why += f", from the {previous_band} band to {band}"
    body = f"The health score of {name} on {row['score_date']:%Y-%m-%d} is {score} out of 100: {why}."
    if row.get("previous_period_score") is not None:
        body += f" A period earlier it was {int(row['previous_period_score'])}."
    body += "\n\nFactors (0-100, weakest first):\n" + "\n".join(factor_lines(row))
    return title, body


def _record(conn: Connection, row: Mapping[str, Any], reason: str, drop_threshold: int, now: datetime) -> int | None:
    """Insert the day's ledger row; None when the tenant's day alerted before."""
    alert_id = conn.execute(
        text(
            "insert into control.health_alerts (tenant_id, score_date, health_score, health_band, previous_score, "
            "previous_band, reason, drop_threshold, fired_at) "
            "values (:t, :d, :score, :band, :prev, :prev_band, :reason, :drop, :now) "
            "on conflict (tenant_id, score_date) do nothing returning health_alert_id"
        ),
        {
            "t": row["tenant_id"],
            "d": row["score_date"],
            "score": row["health_score"],
            "band": row["health_band"],
            "prev": row["previous_day_score"],
            "prev_band": row["previous_day_band"],
            "reason": reason,
            "drop": drop_threshold,
            "now": now,
        },
    ).scalar_one_or_none()
    return None if alert_id is None else int(alert_id)


def _notify(
    conn: Connection, tenant_id: str, alert_id: int, title: str, body: str, people: list[Recipient], now: datetime
) -> None:
    """One in-app notification per account manager and, for each, one email due at ``now``."""
    for person in people:
        notification_id = conn.execute(
            text(
                "insert into control.notifications (tenant_id, user_id, recipient_email, kind, title, body, "
                "health_alert_id) values (:t, :u, :email, 'account_health', :title, :body, :alert) "
                "on conflict (health_alert_id, user_id) do nothing returning notification_id"
            ),
            {
                "t": tenant_id,
                "u": person.user_id,
                "email": person.email,
                "title": title,
                "body": body,
                "alert": alert_id,
            },
        ).scalar_one_or_none()
        if notification_id is None:
            continue
        queue_email(
            conn,
            tenant_id=tenant_id,
            notification_id=notification_id,
            email=person.email,
            subject=f"[Pulse] {title}",
            body=(
                f"Hello {person.name},\n\n{body}\n\n"
                "The Account health page of Pulse shows the score's history and every factor.\n"
                "You receive this because you are the account manager of this customer.\n"
            ),
            now=now,
        )


def evaluate_health(
    conn: Connection,
    *,
    tenant_ids: Iterable[str] | None = None,
    now: datetime | None = None,
    drop_threshold: int | None = None,
) -> list[HealthAlert]:
    """Evaluate the latest health day of every active tenant (or of ``tenant_ids``; empty: none).

    ``now`` (default: the transaction's time) decides which days are current;
    ``drop_threshold`` (default: ``PULSE_HEALTH_ALERT_DROP``, else 10) the fall that alerts. The
    caller owns the transaction; commit it to keep the ledger, notifications and emails together.
    """
    wanted = None if tenant_ids is None else sorted(set(tenant_ids))
    if wanted == []:
        return []
    drop = alert_drop_from_env() if drop_threshold is None else drop_threshold
    if now is None:
        now = conn.execute(text("select now()")).scalar_one()
    assert now is not None
    if conn.execute(text("select to_regclass(:m)"), {"m": HEALTH_MART}).scalar() is None:
        log.warning("%s does not exist yet: build the marts before evaluating account health", HEALTH_MART)
        return []
    rows = conn.execute(text(_LATEST_SQL), {"now": now, "tenants": wanted}).mappings().all()
    fired: list[HealthAlert] = []
    for found in rows:
        row: dict[str, Any] = dict(found)
        reason = alert_reason(
            int(row["health_score"]),
            row["health_band"],
            int(row["previous_day_score"]),
            row["previous_day_band"],
            drop,
        )
        if reason is None:
            continue
        alert_id = _record(conn, row, reason, drop, now)
        if alert_id is None:
            continue
        people = account_managers(conn, row["tenant_id"])
        if not people:
            log.warning(
                "account health of %s fell (%s → %s) but it has no account manager: grant account_manager to someone",
                row["tenant_id"],
                row["previous_day_score"],
                row["health_score"],
            )
        title, body = message(row, reason)
        _notify(conn, row["tenant_id"], alert_id, title, body, people, now)
        fired.append(
            HealthAlert(
                health_alert_id=alert_id,
                tenant_id=row["tenant_id"],
                score_date=row["score_date"],
                health_score=int(row["health_score"]),
                health_band=row["health_band"],
                previous_score=int(row["previous_day_score"]),
                previous_band=row["previous_day_band"],
                reason=reason,
                title=title,
                recipients=tuple(person.email for person in people),
            )
        )
    return fired
