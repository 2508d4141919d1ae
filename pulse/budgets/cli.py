"""``pulse budget …``: monthly agent-cost budgets, their thresholds and alerts, from the terminal.

Registered on the ``pulse`` group by ``pulse.cli._register_service_commands``. Changes are
audited with the actor ``PULSE_ACTOR`` or ``cli:<login>``.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import click
from sqlalchemy import Connection, text

F = TypeVar("F", bound=Callable[..., Any])


def _actor() -> str:
    return os.environ.get("PULSE_ACTOR") or f"cli:{getpass.getuser()}"


@contextmanager
def _transaction() -> Iterator[Connection]:
    from pulse.db import admin_engine
    from pulse.settings import get_settings

    with admin_engine(get_settings()).begin() as conn:
        yield conn


def _clear_errors(func: F) -> F:
    """Budget and control-plane refusals become one line and exit code 1."""
    from pulse.control import ControlError

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ControlError as error:
            raise click.ClickException(str(error)) from error

    return wrapper  # type: ignore[return-value]


def _when(value: datetime | None) -> str:
    """A moment to the minute in UTC, whatever the session's time zone."""
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.group()
def budget() -> None:
    """Monthly agent-cost budgets per organisation and team, and their alerts (docs/budgets.md)."""


@budget.command("set")
@click.option("--tenant", "tenant_id", required=True, help="Tenant slug.")
@click.option("--team", "team_slug", default=None, help="Team slug (default: the organisation's budget).")
@click.option("--amount", required=True, help="Monthly budget in USD, e.g. 1500 or 1500.00.")
@_clear_errors
def set_command(tenant_id: str, team_slug: str | None, amount: str) -> None:
    """Create or change a monthly budget. New budgets alert at 50, 80 and 100 %."""
    from pulse.budgets.store import get_budget, set_budget

    with _transaction() as conn:
        before = get_budget(conn, tenant_id, team_slug)
        after = set_budget(conn, tenant_id, amount, actor=_actor(), team_slug=team_slug)
    change = "created" if before is None else f"changed from USD {before.amount_usd:,.2f}"
    click.echo(
        f"{after.tenant_id}: {after.label} budget USD {after.amount_usd:,.2f} a month ({change}); "
        f"thresholds {', '.join(f'{pct} %' for pct in after.thresholds)}"
    )
    if before is not None and after.amount_usd > before.amount_usd:
        click.echo("Raised: thresholds now out of reach this month will alert again at the new amount.")


@budget.command("list")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant.")
@_clear_errors
def list_command(tenant_id: str | None) -> None:
    """Every budget with its thresholds and this month's spend (from the last marts refresh)."""
    from pulse.budgets.evaluate import period_start
    from pulse.budgets.store import current_utilization, list_budgets

    with _transaction() as conn:
        budgets = list_budgets(conn, tenant_id)
        if not budgets:
            click.echo("No budgets. Set one with `pulse budget set --tenant T --amount USD`.")
            return
        now: datetime = conn.execute(text("select now()")).scalar_one()
        zones: dict[str, str] = dict(conn.execute(text("select slug, timezone from control.tenants")).all())
        click.echo(
            f"{'ID':>4}  {'TENANT':<16} {'BUDGET':<22} {'USD/MONTH':>12}  {'THRESHOLDS':<16} "
            f"{'SPENT':>12} {'USED':>8} {'PROJECTED':>12}  MEASURED"
        )
        for item in budgets:
            usage = current_utilization(conn, item.budget_id, period_start(now, zones[item.tenant_id]))
            thresholds = ",".join(map(str, item.thresholds)) or "none"
            figures = (
                f"{usage.month_to_date_spend_usd:>12,.2f} {usage.share_used_pct:>7.1f}% "
                f"{(usage.projected_spend_usd or 0):>12,.2f}  {_when(usage.measured_at)}"
                if usage
                else f"{'—':>12} {'—':>8} {'—':>12}  not measured yet (refresh the marts)"
            )
            click.echo(
                f"{item.budget_id:>4}  {item.tenant_id:<16} {item.label:<22} {item.amount_usd:>12,.2f}  "
                f"{thresholds:<16} {figures}"
            )


@budget.command("thresholds")
@click.option("--tenant", "tenant_id", required=True, help="Tenant slug.")
@click.option("--team", "team_slug", default=None, help="Team slug (default: the organisation's budget).")
@click.option("--add", "to_add", type=int, multiple=True, help="Add a threshold (percent, 1-1000); repeatable.")
@click.option("--remove", "to_remove", type=int, multiple=True, help="Remove a threshold (percent); repeatable.")
@_clear_errors
def thresholds_command(
    tenant_id: str, team_slug: str | None, to_add: tuple[int, ...], to_remove: tuple[int, ...]
) -> None:
    """Show a budget's alert thresholds; --add / --remove change them (e.g. --add 90 --add 120)."""
    from pulse.budgets.store import add_threshold, remove_threshold, require_budget

    with _transaction() as conn:
        item = require_budget(conn, tenant_id, team_slug)
        for pct in to_add:
            item = add_threshold(conn, item, pct, actor=_actor())
        for pct in to_remove:
            item = remove_threshold(conn, item, pct, actor=_actor())
    shown = ", ".join(f"{pct} %" for pct in item.thresholds) or "none (this budget never alerts)"
    click.echo(f"{item.tenant_id}: {item.label} budget USD {item.amount_usd:,.2f}; thresholds {shown}")


@budget.command("evaluate")
@click.option("--tenant", "tenant_ids", multiple=True, help="Only this tenant (repeatable; default all).")
@_clear_errors
def evaluate_command(tenant_ids: tuple[str, ...]) -> None:
    """Evaluate budgets now and deliver due emails (what the Dagster sensor does after a refresh)."""
    from pulse.budgets import run_budget_alerts
    from pulse.db import admin_engine
    from pulse.settings import get_settings

    result = run_budget_alerts(admin_engine(get_settings()), tenant_ids=tenant_ids or None)
    for alert in result.alerts:
        click.echo(f"alert {alert.alert_id}: {alert.title} → {', '.join(alert.recipients) or 'nobody (no org admin)'}")
    if not result.alerts:
        click.echo("No new alerts.")
    _echo_delivery(result.delivery)


def _echo_delivery(report: Any) -> None:
    if report.skipped:
        click.echo(f"Email: {report.skipped}.")
        return
    click.echo(
        f"Email: {len(report.sent)} sent, {len(report.retrying)} failed and will be retried, "
        f"{len(report.gave_up)} given up."
    )


@budget.group("notifications")
def notifications() -> None:
    """In-app notifications of budget alerts and the state of their emails."""


@notifications.command("list")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant.")
@click.option("--user", "email", default=None, help="Only this recipient (email).")
@click.option(
    "--email-status",
    type=click.Choice(["pending", "sent", "failed"]),
    default=None,
    help="Only notifications whose email is in this state.",
)
@click.option("--limit", type=int, default=50, show_default=True)
@_clear_errors
def notifications_list(tenant_id: str | None, email: str | None, email_status: str | None, limit: int) -> None:
    """Notifications, newest first, each with its email: sent, retrying (attempts, last error,
    next attempt) or failed."""
    from pulse.budgets.mail import SmtpSettings

    with _transaction() as conn:
        rows = conn.execute(
            text(
                "select n.notification_id, n.tenant_id, n.recipient_email, n.title, n.created_at, n.read_at, "
                "e.email_id, e.status, e.attempts, e.last_error, e.next_attempt_at, e.sent_at "
                "from control.notifications as n "
                "left join control.email_outbox as e on e.notification_id = n.notification_id "
                "where (cast(:t as text) is null or n.tenant_id = :t) "
                "  and (cast(:u as text) is null or n.recipient_email = lower(:u)) "
                "  and (cast(:s as text) is null or e.status = :s) "
                "order by n.created_at desc, n.notification_id desc limit :limit"
            ),
            {"t": tenant_id, "u": email, "s": email_status, "limit": limit},
        ).all()
    if not rows:
        click.echo("No notifications.")
        return
    for row in rows:
        click.echo(
            f"#{row.notification_id} {_when(row.created_at)} {row.tenant_id} → {row.recipient_email}"
            f"{'' if row.read_at else ' (unread)'}\n  {row.title}"
        )
        if row.email_id is None:
            continue
        if row.status == "sent":
            state = f"sent {_when(row.sent_at)}"
        elif row.status == "failed":
            state = (
                f"FAILED after {row.attempts} attempts: {row.last_error} "
                f"(retry: pulse budget notifications retry {row.email_id})"
            )
        elif row.attempts:
            state = (
                f"retrying: {row.attempts} failed attempt(s), last error: {row.last_error}; "
                f"next attempt {_when(row.next_attempt_at)}"
            )
        else:
            state = "pending"
        click.echo(f"  email {row.email_id}: {state}")
    if not SmtpSettings.from_env().configured:
        click.echo("Note: PULSE_SMTP_HOST is not set here, so this process sends no email.")


@notifications.command("retry")
@click.argument("email_id", type=int)
@_clear_errors
def notifications_retry(email_id: int) -> None:
    """Queue email EMAIL_ID again now (a failed one gets a fresh round of attempts)."""
    from pulse.budgets.mail import retry_email

    with _transaction() as conn:
        retry_email(conn, email_id)
    click.echo(f"Email {email_id} is queued; the budget sensor (or `pulse budget notifications deliver`) sends it.")


@notifications.command("deliver")
@_clear_errors
def notifications_deliver() -> None:
    """Send every due email of the outbox now."""
    from pulse.budgets.mail import SmtpSettings, deliver_due_emails
    from pulse.db import admin_engine
    from pulse.settings import get_settings

    _echo_delivery(deliver_due_emails(admin_engine(get_settings()), SmtpSettings.from_env()))
