"""The Notifications and Budgets pages in Streamlit's AppTest, against a real PostgreSQL.

Seed (committed, removed afterwards): tenant ``bpage_acme`` with an org admin (Ada), the lead
of team platform (Leo) and a member (Mia); budgets of USD 400 (organisation) and 200 (team
platform); this month's spend 340 (85 %: the 50 and 80 % alerts, one notification) and 100
(50 %: one alert, to Leo and Ada). Emails went to an SMTP port where nothing listens, so all
three are "not delivered yet". Tenant ``bpage_globex`` has its own admin (Gus) and alert.
The alerts are made by the real evaluation (pulse.budgets); the pages read them as
``pulse_reader`` through ``data.scoped``.
"""

from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from pulse import control
from pulse.budgets import run_budget_alerts
from pulse.budgets.evaluate import period_start
from pulse.budgets.mail import SmtpSettings
from pulse.budgets.store import Budget, set_budget
from pulse.db import admin_engine
from pulse.settings import Settings
from tests.conftest import run_dbt

APP = Path(__file__).resolve().parents[2] / "apps" / "streamlit" / "streamlit_app.py"
ACME, GLOBEX = "bpage_acme", "bpage_globex"
ADA, LEO, MIA = "ada@bpage-acme.example", "leo@bpage-acme.example", "mia@bpage-acme.example"
GUS = "gus@bpage-globex.example"
PEOPLE = {
    ADA: ("Ada Admin", "org_admin", ACME, None),
    LEO: ("Leo Lead", "team_lead", ACME, "platform"),
    MIA: ("Mia Member", "member", ACME, None),
    GUS: ("Gus Admin", "org_admin", GLOBEX, None),
}
REFUSED = "connection refused: is the SMTP server at PULSE_SMTP_HOST:PULSE_SMTP_PORT running?"


def _cleanup(conn: sa.Connection) -> None:
    params = {"t": [ACME, GLOBEX]}
    for table in (
        "marts.fct_budget_utilization",
        "control.email_outbox",
        "control.notifications",
    ):
        conn.execute(sa.text(f"delete from {table} where tenant_id = any(:t)"), params)
    conn.execute(sa.text("update control.budget_alerts set announced_by = null where tenant_id = any(:t)"), params)
    for table in ("control.budget_alerts", "control.budget_thresholds", "control.budgets"):
        conn.execute(sa.text(f"delete from {table} where tenant_id = any(:t)"), params)
    conn.execute(sa.text("delete from control.users where email = any(:e)"), {"e": list(PEOPLE)})
    conn.execute(sa.text("delete from control.teams where tenant_id = any(:t)"), params)
    conn.execute(sa.text("delete from control.tenants where slug = any(:t)"), params)


def _spend(conn: sa.Connection, budget: Budget, period: Any, spend: str, projected: str) -> None:
    conn.execute(
        sa.text(
            "insert into marts.fct_budget_utilization (budget_id, tenant_id, scope, team_id, team_name,"
            " period_start, period_end, is_current_period, budget_amount_usd, month_to_date_spend_usd,"
            " share_used_pct, trailing_7d_spend_usd, projected_spend_usd, projected_share_pct, measured_at)"
            " values (:b, :t, :scope, :team, :team_name, :p, (:p + interval '1 month')::date - 1, true, :amount,"
            " :spend, round(100 * :spend / :amount, 2), 0, :projected, round(100 * :projected / :amount, 2),"
            " :measured)"
        ),
        {
            "b": budget.budget_id,
            "t": budget.tenant_id,
            "scope": budget.scope,
            "team": budget.team_id,
            "team_name": budget.team_name,
            "p": period,
            "amount": budget.amount_usd,
            "spend": Decimal(spend),
            "projected": Decimal(projected),
            "measured": datetime(2026, 11, 20, 6, 0, tzinfo=UTC),
        },
    )


@pytest.fixture(scope="module")
def seeded(settings: Settings) -> Iterator[dict[str, Budget]]:
    engine = admin_engine(settings)
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass('marts.fct_budget_utilization')")).scalar() is None:
            run_dbt(["build", "--select", "+marts.agents", "--exclude", "test_type:unit"])
    with engine.begin() as conn:
        _cleanup(conn)
        control.add_tenant(conn, ACME, "Acme Budgets", actor="test", timezone="Europe/Paris")
        control.add_tenant(conn, GLOBEX, "Globex Budgets", actor="test")
        control.add_team(conn, ACME, "platform", "Platform", actor="test")
        for email, (name, role, tenant, team) in PEOPLE.items():
            control.add_user(conn, email, name, actor="test")
            control.grant_role(conn, email, role, actor="test", tenant_id=tenant, team_slug=team)
        budgets = {
            "org": set_budget(conn, ACME, "400", actor="test"),
            "team": set_budget(conn, ACME, "200", actor="test", team_slug="platform"),
            "globex": set_budget(conn, GLOBEX, "10", actor="test"),
        }
        now: datetime = conn.execute(sa.text("select now()")).scalar_one()
        _spend(conn, budgets["org"], period_start(now, "Europe/Paris"), "340", "380")
        _spend(conn, budgets["team"], period_start(now, "Europe/Paris"), "100", "150")
        _spend(conn, budgets["globex"], period_start(now, "UTC"), "10", "10")
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        down = SmtpSettings(host="127.0.0.1", port=int(sock.getsockname()[1]))
    run_budget_alerts(engine, tenant_ids=[ACME, GLOBEX], smtp=down)
    try:
        yield budgets
    finally:
        with engine.begin() as conn:
            _cleanup(conn)


@pytest.fixture
def app(seeded: dict[str, Budget], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("PULSE_AUTH", "dev")
    return AppTest.from_file(APP, default_timeout=60)


def open_page(at: AppTest, email: str, tenant_id: str, page: str) -> AppTest:
    """Sign in as ``email`` in ``tenant_id`` and open ``app_pages/<page>.py``."""
    at.run()
    at.button(key=f"sign_in:{tenant_id}:{email}").click().run()
    assert not at.exception, at.exception
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def plain(elements: Any) -> list[str]:
    """Element texts with Markdown escapes removed."""
    return [str(element.value).replace("\\", "") for element in elements]


def test_notifications_show_alerts_with_their_email_state_and_mark_read(app: AppTest, settings: Settings) -> None:
    open_page(app, ADA, ACME, "notifications")

    titles = [text for text in plain(app.markdown) if text.startswith("**New** · ")]
    assert titles == [
        "**New** · **Acme Budgets's team Platform budget 50 % used**",
        "**New** · **Acme Budgets's organisation budget 80 % used**",
    ]
    bodies = plain(app.text)
    assert any(
        body.startswith("Agent spend for ") and "USD 340.00, 85.0 % of the USD 400.00" in body for body in bodies
    )
    assert "Acme Budgets · 2 unread of 2" in plain(app.caption)
    states = [text.split(" · ", 1)[1] for text in plain(app.caption) if " · Email" in text]
    assert len(states) == 2
    assert all(
        state.startswith(f"Email not delivered yet (1 failed attempts, last error: {REFUSED}); next attempt 20")
        for state in states
    )

    app.button(key="notifications_mark_read").click().run()
    assert not app.exception, app.exception
    assert "Acme Budgets · 0 unread of 2" in plain(app.caption)
    assert not [text for text in plain(app.markdown) if text.startswith("**New**")]
    with admin_engine(settings).connect() as conn:
        unread = dict(
            conn.execute(
                sa.text(
                    "select recipient_email, count(*) filter (where read_at is null) from control.notifications"
                    " where tenant_id = :t group by recipient_email"
                ),
                {"t": ACME},
            ).all()
        )
    assert unread == {ADA: 0, LEO: 1}  # only Ada's own were marked


def test_a_team_lead_sees_the_team_alert_and_a_member_sees_none(app: AppTest) -> None:
    open_page(app, LEO, ACME, "notifications")
    assert [text for text in plain(app.markdown) if "budget" in text] == [
        "**New** · **Acme Budgets's team Platform budget 50 % used**"
    ]

    member = AppTest.from_file(APP, default_timeout=60)
    open_page(member, MIA, ACME, "notifications")
    assert any(text.startswith("No notifications for you in Acme Budgets") for text in plain(member.info))


def test_another_tenants_admin_sees_only_their_own_alert(app: AppTest) -> None:
    open_page(app, GUS, GLOBEX, "notifications")
    assert [text for text in plain(app.markdown) if "budget" in text] == [
        "**New** · **Globex Budgets's organisation budget 100 % used**"
    ]


def test_the_budgets_page_shows_spend_alerts_and_undelivered_emails(app: AppTest) -> None:
    open_page(app, ADA, ACME, "budgets")

    budgets, alerts, emails = (element.value for element in app.dataframe)
    assert list(budgets["budget"]) == ["Organisation", "Team Platform"]
    assert list(budgets["amount_usd"]) == [400.0, 200.0]
    assert list(budgets["spent_usd"]) == [340.0, 100.0]
    assert list(budgets["share_used_pct"]) == [85.0, 50.0]
    assert list(budgets["projected_usd"]) == [380.0, 150.0]
    assert list(budgets["thresholds"]) == ["50, 80, 100 %", "50, 80, 100 %"]
    assert sorted(zip(alerts["budget"], alerts["alert"], strict=True)) == [
        ("Organisation", "50 % reached"),
        ("Organisation", "80 % reached"),
        ("Team Platform", "50 % reached"),
    ]
    assert sorted(emails["recipient_email"]) == [ADA, ADA, LEO]
    assert set(emails["last_error"]) == {REFUSED}
    assert "This month's figures as of 2026-11-20 06:00 UTC" in plain(app.caption)


def test_an_org_admin_sets_a_budget_and_adds_a_threshold(app: AppTest, settings: Settings) -> None:
    open_page(app, ADA, ACME, "budgets")
    app.selectbox(key="set_budget_scope").set_value("Organisation")
    app.number_input(key="set_budget_amount").set_value(500.0)
    app.button(key="FormSubmitter:set_budget-Save budget").click().run()
    assert not app.exception, app.exception
    assert "Organisation budget set to USD 500.00 a month." in plain(app.success)

    app.selectbox(key="add_threshold_budget").set_value("Team Platform")
    app.number_input(key="add_threshold_pct").set_value(90)
    app.button(key="FormSubmitter:add_threshold-Add threshold").click().run()
    assert not app.exception, app.exception
    assert "Team Platform: alerts at 90 % too." in plain(app.success)
    budgets = app.dataframe[0].value
    assert list(budgets["amount_usd"]) == [500.0, 200.0]
    assert list(budgets["thresholds"]) == ["50, 80, 100 %", "50, 80, 90, 100 %"]

    with admin_engine(settings).connect() as conn:
        audit = conn.execute(
            sa.text(
                "select actor, action from control.audit_log where tenant_id = :t and actor like 'app:%'"
                " order by audit_id"
            ),
            {"t": ACME},
        ).all()
    assert audit[-2:] == [(f"app:{ADA}", "budget.set"), (f"app:{ADA}", "budget.threshold.add")]


def test_members_get_no_budgets_page_and_the_database_refuses_their_changes(app: AppTest) -> None:
    app.run()
    app.button(key=f"sign_in:{ACME}:{MIA}").click().run()
    with pytest.raises(ValueError, match=r"Known pages: \[[^]]*pull_requests\.py', '[^']*notifications\.py'\]"):
        app.switch_page("app_pages/budgets.py")

    sys.path.insert(0, str(APP.parent))
    try:
        alerts_data = importlib.import_module("alerts_data")
        alerts_data.clear()
        assert alerts_data.may_manage_budgets(ADA, ACME)
        assert not alerts_data.may_manage_budgets(MIA, ACME)
        with pytest.raises(alerts_data.BudgetChangeError, match=f"{MIA} is not an org admin of {ACME}"):
            alerts_data.set_budget(MIA, ACME, None, Decimal("1.00"))
        with pytest.raises(alerts_data.BudgetChangeError, match="is not an org admin of the tenant of budget"):
            alerts_data.add_threshold(MIA, ACME, 1, 90)
    finally:
        sys.path.remove(str(APP.parent))
