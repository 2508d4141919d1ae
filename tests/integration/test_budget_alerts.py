"""Budget alerts against a real PostgreSQL and a real local SMTP server (aiosmtpd).

Each test gets its own tenant (America/New_York) with two teams, an org admin (Olga), the
leads of both teams (Leo for platform, Wes for web) and a member (Mia). Spend is written
into ``marts.fct_budget_utilization`` as the dbt build would leave it (that mart's figures
are proven in test_agent_marts.py); everything after it — ledger, notifications, outbox,
SMTP — is the real code. Unless a test says otherwise, "now" is 2026-11-15 17:00 UTC, so
the month is November.
"""

from __future__ import annotations

import email
import itertools
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from pulse import control
from pulse.budgets import run_budget_alerts
from pulse.budgets.evaluate import Alert, evaluate_budgets
from pulse.budgets.mail import SmtpSettings, deliver_due_emails
from pulse.budgets.store import Budget, add_threshold, set_budget
from pulse.db import admin_engine, reader_url, sqlalchemy_url
from pulse.settings import Settings
from tests.conftest import run_dbt

NOW = datetime(2026, 11, 15, 17, 0, tzinfo=UTC)
NOVEMBER, OCTOBER = date(2026, 11, 1), date(2026, 10, 1)
_serial = itertools.count(1)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(settings: Settings) -> sa.Engine:
    """Admin engine; the utilization mart exists (built once if no other test built it)."""
    engine = admin_engine(settings)
    with engine.connect() as conn:
        missing = conn.execute(sa.text("select to_regclass('marts.fct_budget_utilization')")).scalar() is None
    if missing:
        run_dbt(["build", "--select", "+marts.agents", "--exclude", "test_type:unit"])
    return engine


@dataclass
class World:
    """One tenant's people and budgets, and the helpers the tests speak in."""

    engine: sa.Engine
    tenant: str
    emails: dict[str, str] = field(default_factory=dict)

    def budget(self, amount: str, team: str | None = None) -> Budget:
        with self.engine.begin() as conn:
            return set_budget(conn, self.tenant, amount, actor="test", team_slug=team)

    def spend(self, budget: Budget, spend: str, *, period: date = NOVEMBER, projected: str | None = None) -> None:
        """What a marts refresh would leave for this budget and month (delete, then insert)."""
        amount = budget_amount(self.engine, budget.budget_id)
        spent, forecast = Decimal(spend), Decimal(projected) if projected is not None else Decimal(spend)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("delete from marts.fct_budget_utilization where budget_id = :b and period_start = :p"),
                {"b": budget.budget_id, "p": period},
            )
            conn.execute(
                sa.text(
                    "insert into marts.fct_budget_utilization (budget_id, tenant_id, scope, team_id, team_name,"
                    " period_start, period_end, is_current_period, budget_amount_usd, month_to_date_spend_usd,"
                    " share_used_pct, trailing_7d_spend_usd, projected_spend_usd, projected_share_pct, measured_at)"
                    " values (:b, :t, :scope, :team, :team_name, :p, (:p + interval '1 month')::date - 1, true,"
                    " :amount, :spend, round(100 * :spend / :amount, 2), 0, :projected,"
                    " round(100 * :projected / :amount, 2), :at)"
                ),
                {
                    "b": budget.budget_id,
                    "t": self.tenant,
                    "scope": budget.scope,
                    "team": budget.team_id,
                    "team_name": budget.team_name,
                    "p": period,
                    "amount": amount,
                    "spend": spent,
                    "projected": forecast,
                    "at": NOW,
                },
            )

    def evaluate(self, now: datetime = NOW) -> list[Alert]:
        with self.engine.begin() as conn:
            return evaluate_budgets(conn, tenant_ids=[self.tenant], now=now)

    def ledger(self, budget: Budget) -> list[tuple[date, str, int, Decimal, bool]]:
        """(month, kind, threshold, amount at the time, still live) per alert, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select period_start, kind, threshold_pct, budget_amount_usd, rearmed_at is null"
                    " from control.budget_alerts where budget_id = :b order by alert_id"
                ),
                {"b": budget.budget_id},
            ).all()
        return [tuple(row) for row in rows]  # type: ignore[misc]

    def notifications(self) -> list[tuple[str, str]]:
        """(recipient's short name, title) of every notification, oldest first."""
        names = {address: name for name, address in self.emails.items()}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select recipient_email, title from control.notifications where tenant_id = :t"
                    " order by notification_id"
                ),
                {"t": self.tenant},
            ).all()
        return [(names[row[0]], row[1]) for row in rows]

    def outbox(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("select * from control.email_outbox where tenant_id = :t order by email_id"), {"t": self.tenant}
            ).mappings()
            return [dict(row) for row in rows]


def budget_amount(engine: sa.Engine, budget_id: int) -> Decimal:
    with engine.connect() as conn:
        value: Decimal = conn.execute(
            sa.text("select amount_usd from control.budgets where budget_id = :b"), {"b": budget_id}
        ).scalar_one()
    return value


def cleanup(engine: sa.Engine, tenant: str) -> None:
    with engine.begin() as conn:
        params = {"t": tenant}
        conn.execute(sa.text("delete from marts.fct_budget_utilization where tenant_id = :t"), params)
        conn.execute(sa.text("delete from control.email_outbox where tenant_id = :t"), params)
        conn.execute(sa.text("delete from control.notifications where tenant_id = :t"), params)
        conn.execute(sa.text("update control.budget_alerts set announced_by = null where tenant_id = :t"), params)
        conn.execute(sa.text("delete from control.budget_alerts where tenant_id = :t"), params)
        conn.execute(sa.text("delete from control.budget_thresholds where tenant_id = :t"), params)
        conn.execute(sa.text("delete from control.budgets where tenant_id = :t"), params)
        conn.execute(
            sa.text(
                "delete from control.users where user_id in"
                " (select user_id from control.role_grants where tenant_id = :t)"
            ),
            params,
        )
        conn.execute(sa.text("delete from control.role_grants where tenant_id = :t"), params)
        conn.execute(sa.text("delete from control.teams where tenant_id = :t"), params)
        conn.execute(sa.text("delete from control.tenants where slug = :t"), params)


@pytest.fixture
def world(engine: sa.Engine) -> Iterator[World]:
    tenant = f"bud_{next(_serial)}"
    cleanup(engine, tenant)
    people = {
        "olga": ("Olga Admin", "org_admin", None),
        "leo": ("Leo Lead", "team_lead", "platform"),
        "wes": ("Wes Lead", "team_lead", "web"),
        "mia": ("Mia Member", "member", None),
    }
    made = World(engine, tenant)
    with engine.begin() as conn:
        control.add_tenant(conn, tenant, f"Budget Co {tenant}", actor="test", timezone="America/New_York")
        control.add_team(conn, tenant, "platform", "Platform", actor="test")
        control.add_team(conn, tenant, "web", "Web", actor="test")
        for short, (name, role, team) in people.items():
            address = f"{short}@{tenant.replace('_', '-')}.example"
            made.emails[short] = address
            control.add_user(conn, address, name, actor="test")
            control.grant_role(conn, address, role, actor="test", tenant_id=tenant, team_slug=team)
    try:
        yield made
    finally:
        cleanup(engine, tenant)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """aiosmtpd handler: keeps every message the server accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    mailbox: Mailbox
    settings: SmtpSettings


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on a free local port."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(mailbox, SmtpSettings(host="127.0.0.1", port=port, sender="pulse@budgets.example"))
    finally:
        controller.stop()


# -- thresholds ---------------------------------------------------------------------------------


def test_thresholds_fire_exactly_at_50_80_and_100_percent(world: World) -> None:
    org = world.budget("400")
    world.spend(org, "199.99")
    assert world.evaluate() == []

    world.spend(org, "200.00")  # exactly 50 %
    (alert,) = world.evaluate()
    assert (alert.kind, alert.threshold_pct, alert.crossed, alert.spend_usd) == ("threshold", 50, (50,), Decimal("200"))
    assert alert.recipients == (world.emails["olga"],)  # the org budget: org admins only

    world.spend(org, "319.99")
    assert world.evaluate() == []
    world.spend(org, "320.00")  # exactly 80 %
    assert [a.threshold_pct for a in world.evaluate()] == [80]
    world.spend(org, "400.00")  # exactly 100 %
    assert [a.threshold_pct for a in world.evaluate()] == [100]

    assert world.ledger(org) == [(NOVEMBER, "threshold", pct, Decimal("400.00"), True) for pct in (50, 80, 100)]
    title = f"Budget Co {world.tenant}'s organisation budget"
    assert world.notifications() == [("olga", f"{title} {pct} % used") for pct in (50, 80, 100)]
    with world.engine.connect() as conn:
        body = conn.execute(
            sa.text("select body from control.notifications where tenant_id = :t order by notification_id limit 1"),
            {"t": world.tenant},
        ).scalar_one()
    assert body == (
        "Agent spend for November 2026 is USD 200.00, 50.0 % of the USD 400.00 monthly organisation budget: "
        "it crossed the 50 % threshold. Projected month-end spend: USD 200.00."
    )


def test_several_thresholds_crossed_at_once_are_announced_once(world: World) -> None:
    team = world.budget("200", team="platform")
    world.spend(team, "0")
    assert world.evaluate() == []
    world.spend(team, "210.00")  # 0 → 105 %: 50, 80 and 100 at once

    (alert,) = world.evaluate()
    assert (alert.threshold_pct, alert.crossed) == (100, (50, 80, 100))
    # a team budget: the team's leads and the org admins, not the other team's lead nor members
    assert sorted(alert.recipients) == sorted([world.emails["leo"], world.emails["olga"]])
    title = f"Budget Co {world.tenant}'s team Platform budget 100 % used"
    assert sorted(world.notifications()) == [("leo", title), ("olga", title)]
    assert [len(world.outbox()), {row["status"] for row in world.outbox()}] == [2, {"pending"}]
    assert "it crossed the 50 %, 80 %, 100 % thresholds at once" in world.outbox()[0]["body"]
    with world.engine.connect() as conn:
        announced = conn.execute(
            sa.text("select threshold_pct, announced_by from control.budget_alerts where budget_id = :b"),
            {"b": team.budget_id},
        ).all()
    assert {pct: by for pct, by in announced} == {50: alert.alert_id, 80: alert.alert_id, 100: alert.alert_id}


def test_custom_thresholds_alert_like_the_defaults(world: World) -> None:
    org = world.budget("1000")
    with world.engine.begin() as conn:
        org = add_threshold(conn, org, 90, actor="test")
        org = add_threshold(conn, org, 120, actor="test")
    assert org.thresholds == (50, 80, 90, 100, 120)
    world.spend(org, "900")
    assert [a.crossed for a in world.evaluate()] == [(50, 80, 90)]
    world.spend(org, "1200")
    assert [a.crossed for a in world.evaluate()] == [(100, 120)]


# -- idempotency ---------------------------------------------------------------------------------


def test_re_runs_restarts_backfills_and_racing_evaluators_alert_once(world: World) -> None:
    org = world.budget("400")
    world.spend(org, "330")
    with ThreadPoolExecutor(max_workers=3) as pool:  # three evaluators at the same moment
        fired = list(pool.map(lambda _: world.evaluate(), range(3)))
    assert sorted(len(alerts) for alerts in fired) == [0, 0, 1]

    for _ in range(3):  # sensor re-runs and a restart that lost its cursor
        assert world.evaluate() == []
        assert (
            run_budget_alerts(world.engine, tenant_ids=[world.tenant], smtp=SmtpSettings(host=None), now=NOW).alerts
            == []
        )
    world.spend(org, "330")  # a backfill rebuilds the mart with the same figures
    assert world.evaluate(NOW + timedelta(hours=5)) == []

    assert [row[2] for row in world.ledger(org)] == [50, 80]
    assert len(world.notifications()) == 1
    assert len(world.outbox()) == 1


# -- months in the tenant's time zone ---------------------------------------------------------


def test_months_are_the_tenants_calendar_months(world: World) -> None:
    org = world.budget("400")
    world.spend(org, "400", period=OCTOBER)
    world.spend(org, "0", period=NOVEMBER)

    # 03:30 UTC on 1 November is 23:30 on 31 October in New York: still October's budget.
    (october,) = world.evaluate(datetime(2026, 11, 1, 3, 30, tzinfo=UTC))
    assert (october.period_start, october.crossed) == (OCTOBER, (50, 80, 100))
    assert "October 2026" in world.outbox()[0]["body"]
    # 04:30 UTC is 00:30 on 1 November: a new month, nothing spent yet.
    assert world.evaluate(datetime(2026, 11, 1, 4, 30, tzinfo=UTC)) == []

    world.spend(org, "200", period=NOVEMBER)  # November's 50 % is its own alert
    (november,) = world.evaluate(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    assert (november.period_start, november.crossed) == (NOVEMBER, (50,))
    assert [(row[0], row[2]) for row in world.ledger(org)] == [
        (OCTOBER, 50),
        (OCTOBER, 80),
        (OCTOBER, 100),
        (NOVEMBER, 50),
    ]


# -- raising a budget mid-month -------------------------------------------------------------------


def test_raising_a_budget_mid_month_re_arms_the_thresholds_above_the_new_level(world: World) -> None:
    org = world.budget("400")
    world.spend(org, "340")  # 85 %
    assert [a.crossed for a in world.evaluate()] == [(50, 80)]

    org = world.budget("600")  # 340 is now 56.7 %: 80 % is out of reach again, 50 % is not
    assert world.evaluate() == []
    assert world.ledger(org) == [
        (NOVEMBER, "threshold", 50, Decimal("400.00"), True),
        (NOVEMBER, "threshold", 80, Decimal("400.00"), False),  # re-armed
    ]
    world.spend(org, "479.99")
    assert world.evaluate() == []
    world.spend(org, "480")  # 80 % of 600
    (again,) = world.evaluate()
    assert (again.crossed, again.amount_usd) == ((80,), Decimal("600.00"))

    org = world.budget("1000")  # 480 is 48 %: both live alerts re-arm
    assert world.evaluate() == []
    world.spend(org, "500")
    assert [a.crossed for a in world.evaluate()] == [(50,)]
    assert [(row[2], row[3], row[4]) for row in world.ledger(org)] == [
        (50, Decimal("400.00"), False),
        (80, Decimal("400.00"), False),
        (80, Decimal("600.00"), False),
        (50, Decimal("1000.00"), True),
    ]
    titles = [title.rsplit(" ", 3)[-3] for _, title in world.notifications()]
    assert titles == ["80", "80", "50"]  # 50 & 80 at 400, 80 at 600, 50 at 1000


# -- early warning --------------------------------------------------------------------------------


def test_a_projection_over_the_budget_warns_once(world: World) -> None:
    org = world.budget("400")
    world.spend(org, "170", projected="400")  # on budget exactly: no warning
    assert world.evaluate() == []
    world.spend(org, "170", projected="420")
    (warning,) = world.evaluate()
    assert (warning.kind, warning.projected_usd) == ("forecast", Decimal("420"))
    assert warning.title == f"Budget Co {world.tenant}'s organisation budget is projected to be exceeded"
    assert world.outbox()[0]["body"].count("will reach USD 420.00, 105.0 % of the USD 400.00") == 1
    world.spend(org, "180", projected="500")
    assert world.evaluate() == []  # once per month


# -- email ----------------------------------------------------------------------------------------


def test_the_alert_email_is_read_back_from_a_real_smtp_server(world: World, smtp_server: SmtpServer) -> None:
    team = world.budget("200", team="platform")
    world.spend(team, "160.00", projected="190")  # exactly 80 %

    result = run_budget_alerts(world.engine, tenant_ids=[world.tenant], smtp=smtp_server.settings, now=NOW)
    assert len(result.alerts) == 1 and len(result.delivery.sent) == 2

    received = {tuple(rcpt): message for rcpt, message in smtp_server.mailbox.messages}
    assert set(received) == {(world.emails["leo"],), (world.emails["olga"],)}
    message = received[(world.emails["leo"],)]
    assert message["From"] == "pulse@budgets.example"
    assert message["To"] == world.emails["leo"]
    assert message["Subject"] == f"[Pulse] Budget Co {world.tenant}'s team Platform budget 80 % used"
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")  # SMTP lines end in CRLF
    assert body.startswith("Hello Leo Lead,\n\nAgent spend for November 2026 is USD 160.00, 80.0 % of the USD 200.00")
    assert "Projected month-end spend: USD 190.00." in body
    assert "or a lead of the team" in body
    assert [(row["status"], row["attempts"], row["last_error"]) for row in world.outbox()] == [("sent", 1, None)] * 2

    again = run_budget_alerts(world.engine, tenant_ids=[world.tenant], smtp=smtp_server.settings, now=NOW)
    assert (again.alerts, again.delivery.sent) == ([], [])
    assert len(smtp_server.mailbox.messages) == 2  # nothing sent twice


def test_a_failed_email_is_retried_with_backoff_and_visible_while_the_notification_exists(
    world: World, smtp_server: SmtpServer, settings: Settings
) -> None:
    org = world.budget("100")
    world.spend(org, "50")
    down = SmtpSettings(host="127.0.0.1", port=free_port())  # nothing listens there

    result = run_budget_alerts(world.engine, tenant_ids=[world.tenant], smtp=down, now=NOW)
    assert len(result.alerts) == 1 and result.delivery.sent == [] and len(result.delivery.retrying) == 1
    (row,) = world.outbox()
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 1, NOW + timedelta(minutes=1))
    assert row["last_error"] == "connection refused: is the SMTP server at PULSE_SMTP_HOST:PULSE_SMTP_PORT running?"

    # The in-app notification is there already, for its reader (row-level security, reader role).
    reader = sa.create_engine(sqlalchemy_url(reader_url(settings)), poolclass=sa.NullPool)
    with reader.begin() as conn:
        conn.execute(sa.text("select set_config('pulse.tenant_ids', :t, true)"), {"t": world.tenant})
        seen = conn.execute(
            sa.text(
                "select n.title, e.status, e.attempts, e.last_error from control.notifications as n"
                " join control.email_outbox as e on e.notification_id = n.notification_id"
                " where n.recipient_email = :me"
            ),
            {"me": world.emails["olga"]},
        ).one()
    reader.dispose()
    assert seen[0] == f"Budget Co {world.tenant}'s organisation budget 50 % used"
    assert seen[1:] == ("pending", 1, row["last_error"])

    listed = CliRunner().invoke(_pulse(), ["budget", "notifications", "list", "--tenant", world.tenant])
    assert listed.exit_code == 0, listed.output
    assert f"→ {world.emails['olga']} (unread)" in listed.output
    assert (
        "retrying: 1 failed attempt(s), last error: connection refused: is the SMTP server at "
        "PULSE_SMTP_HOST:PULSE_SMTP_PORT running?; next attempt 2026-11-15 17:01 UTC"
    ) in listed.output

    # Not due before its backoff ends, even with the server back; sent after it.
    assert deliver_due_emails(world.engine, smtp_server.settings, now=NOW + timedelta(seconds=30)).sent == []
    retry = deliver_due_emails(world.engine, smtp_server.settings, now=NOW + timedelta(seconds=61))
    assert retry.sent == [row["email_id"]]
    (after,) = world.outbox()
    assert (after["status"], after["attempts"], after["last_error"]) == ("sent", 2, None)
    assert [rcpt for rcpt, _ in smtp_server.mailbox.messages] == [[world.emails["olga"]]]
    listed = CliRunner().invoke(_pulse(), ["budget", "notifications", "list", "--tenant", world.tenant])
    assert f"email {row['email_id']}: sent " in listed.output


def test_an_email_that_keeps_failing_is_given_up_and_can_be_queued_again(world: World, smtp_server: SmtpServer) -> None:
    from pulse.budgets.mail import MAX_ATTEMPTS

    org = world.budget("100")
    world.spend(org, "100")
    world.evaluate()
    down = SmtpSettings(host="127.0.0.1", port=free_port())
    moment = NOW
    for _ in range(MAX_ATTEMPTS):
        deliver_due_emails(world.engine, down, now=moment)
        moment += timedelta(hours=2)
    (row,) = world.outbox()
    assert (row["status"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    listed = CliRunner().invoke(_pulse(), ["budget", "notifications", "list", "--email-status", "failed"])
    assert f"FAILED after {MAX_ATTEMPTS} attempts" in listed.output
    assert f"pulse budget notifications retry {row['email_id']}" in listed.output

    retried = CliRunner().invoke(_pulse(), ["budget", "notifications", "retry", str(row["email_id"])])
    assert retried.exit_code == 0, retried.output
    assert deliver_due_emails(world.engine, smtp_server.settings).sent == [row["email_id"]]


def _pulse() -> Any:
    from pulse.cli import main

    return main


# -- who may change budgets ------------------------------------------------------------------------


def test_only_org_admins_change_budgets_through_the_app_functions(world: World, settings: Settings) -> None:
    org = world.budget("100")
    reader = sa.create_engine(sqlalchemy_url(reader_url(settings)), poolclass=sa.NullPool)
    try:
        with reader.begin() as conn:
            conn.execute(
                sa.text("select control.app_add_budget_threshold(:me, :b, 90)"),
                {"me": world.emails["olga"], "b": org.budget_id},
            )
            conn.execute(
                sa.text("select control.app_set_budget(:me, :t, null, 250)"),
                {"me": world.emails["olga"], "t": world.tenant},
            )
        with pytest.raises(sa.exc.DBAPIError, match="is not an org admin"), reader.begin() as conn:
            conn.execute(
                sa.text("select control.app_set_budget(:me, :t, null, 1)"),
                {"me": world.emails["mia"], "t": world.tenant},
            )
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), reader.begin() as conn:
            conn.execute(sa.text("select control.set_budget('me', :t, null, 1)"), {"t": world.tenant})
    finally:
        reader.dispose()
    with world.engine.connect() as conn:
        budget = conn.execute(
            sa.text("select amount_usd from control.budgets where budget_id = :b"), {"b": org.budget_id}
        ).scalar_one()
        thresholds = conn.execute(
            sa.text(
                "select array_agg(threshold_pct order by threshold_pct) from control.budget_thresholds"
                " where budget_id = :b"
            ),
            {"b": org.budget_id},
        ).scalar_one()
        audit = conn.execute(
            sa.text(
                "select actor, action from control.audit_log where tenant_id = :t and action like 'budget%'"
                " order by audit_id"
            ),
            {"t": world.tenant},
        ).all()
    assert (budget, thresholds) == (Decimal("250.00"), [50, 80, 90, 100])
    olga = f"app:{world.emails['olga']}"
    assert audit == [("test", "budget.set"), (olga, "budget.threshold.add"), (olga, "budget.set")]
