"""The Account health page in Streamlit's AppTest, against a real PostgreSQL, for every role.

Seed (committed, removed afterwards): tenants ``ap_acme`` (yesterday 82 green, today 70
amber: a 12-point fall that alerted its account manager), ``ap_globex`` (90 green) and
``ap_initech`` (45 red). Amy manages acme and globex; Dora is the account director; Pat a
platform admin; Olga and Mia are acme's org admin and member. The days are written into the
mart as a build would leave them (its figures are proven in test_account_health.py); the
page reads them as ``pulse_reader`` in the scope ``control.declare_health_scope`` declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from pulse import control
from pulse.budgets.mail import SmtpSettings
from pulse.db import admin_engine
from pulse.health import run_health_alerts
from pulse.health.rules import band_of
from pulse.settings import Settings
from tests.conftest import run_dbt

APP = Path(__file__).resolve().parents[2] / "apps" / "streamlit" / "streamlit_app.py"
ACME, GLOBEX, INITECH = "ap_acme", "ap_globex", "ap_initech"
TENANTS = {ACME: "Acme Pages", GLOBEX: "Globex Pages", INITECH: "Initech Pages"}
AMY, DORA, PAT = "amy@ap-pulse.example", "dora@ap-pulse.example", "pat@ap-pulse.example"
OLGA, MIA = "olga@ap-acme.example", "mia@ap-acme.example"
PEOPLE: dict[str, tuple[str, list[tuple[str, str | None]]]] = {
    AMY: ("Amy Accounts", [("account_manager", ACME), ("account_manager", GLOBEX)]),
    DORA: ("Dora Director", [("account_director", None)]),
    PAT: ("Pat Platform", [("platform_admin", None)]),
    OLGA: ("Olga Admin", [("org_admin", ACME)]),
    MIA: ("Mia Member", [("member", ACME)]),
}


def _cleanup(conn: sa.Connection) -> None:
    params = {"t": list(TENANTS)}
    conn.execute(sa.text("delete from marts.fct_account_health_daily where tenant_id = any(:t)"), params)
    conn.execute(sa.text("delete from control.users where email = any(:e)"), {"e": list(PEOPLE)})
    conn.execute(sa.text("delete from control.email_outbox where tenant_id = any(:t)"), params)
    conn.execute(sa.text("delete from control.notifications where tenant_id = any(:t)"), params)
    conn.execute(sa.text("delete from control.tenants where slug = any(:t)"), params)


def _day(tenant: str, day: date, score: int, before: int | None, latest: bool, now: datetime) -> dict[str, Any]:
    return {
        "t": tenant,
        "d": day,
        "latest": latest,
        "runs": score,
        "score": score,
        "band": band_of(score),
        "before": before,
        "before_band": None if before is None else band_of(before),
        "measured": now,
    }


@pytest.fixture(scope="module")
def seeded(settings: Settings) -> Iterator[date]:
    engine = admin_engine(settings)
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass('marts.fct_account_health_daily')")).scalar() is None:
            run_dbt(["build", "--select", "+fct_account_health_daily", "--exclude", "test_type:unit", "test_type:data"])
    with engine.begin() as conn:
        _cleanup(conn)
        for tenant, name in TENANTS.items():
            control.add_tenant(conn, tenant, name, actor="test")
        for email, (name, grants) in PEOPLE.items():
            control.add_user(conn, email, name, actor="test")
            for role, tenant in grants:
                control.grant_role(conn, email, role, actor="test", tenant_id=tenant)
        now: datetime = conn.execute(sa.text("select now()")).scalar_one()
        today = now.astimezone(UTC).date()
        yesterday = today - timedelta(days=1)
        rows = [
            _day(ACME, yesterday, 82, None, False, now),
            _day(ACME, today, 70, 82, True, now),
            _day(GLOBEX, today, 90, None, True, now),
            _day(INITECH, today, 45, None, True, now),
        ]
        conn.execute(
            sa.text(
                "insert into marts.fct_account_health_daily (tenant_id, score_date, is_latest, runs_current,"
                " runs_previous, agent_runs_trend_score, finished_runs_current, succeeded_runs_current,"
                " agent_success_rate_score, factors_with_data, factors_without_data, weighted_score, health_score,"
                " health_band, previous_day_score, previous_day_band, measured_at)"
                " values (:t, :d, :latest, :runs, 100, :runs, 10, 7, 70, 2,"
                " 'active_users_trend, budget_adherence, dmt_compliance_trend, data_freshness', :score, :score,"
                " :band, :before, :before_band, :measured)"
            ),
            rows,
        )
    # Acme's fall alerts Amy; the email goes nowhere (no SMTP server), the notification stays.
    run_health_alerts(engine, tenant_ids=list(TENANTS), smtp=SmtpSettings(host=None))
    try:
        yield today
    finally:
        with engine.begin() as conn:
            _cleanup(conn)


@pytest.fixture
def app(seeded: date, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("PULSE_AUTH", "dev")
    return AppTest.from_file(APP, default_timeout=60)


def open_health(at: AppTest, email: str, tenant_id: str | None) -> AppTest:
    at.run()
    at.button(key=f"sign_in:{tenant_id or '_platform'}:{email}").click().run()
    assert not at.exception, at.exception
    at.switch_page("app_pages/account_health.py").run()
    assert not at.exception, at.exception
    return at


def mine(table: Any) -> Any:
    """The rows of this module's tenants (the database may hold others')."""
    return table[table["tenant_name"].isin(TENANTS.values())]


def test_an_account_manager_sees_only_the_assigned_customers(app: AppTest) -> None:
    open_health(app, AMY, ACME)

    accounts = app.dataframe[0].value
    assert list(accounts["tenant_name"]) == ["Acme Pages", "Globex Pages"]  # worst first; never Initech
    assert list(accounts["health_score"]) == [70, 90]
    assert list(accounts["band"]) == ["Amber", "Green"]
    assert list(accounts["day_change"].fillna(0)) == [-12, 0]
    assert list(accounts["account_managers"]) == [f"Amy Accounts <{AMY}>"] * 2
    assert {metric.label: metric.value for metric in app.metric} == {
        "Red": "0",
        "Amber": "1",
        "Green": "1",
        "Not scored yet": "0",
    }
    assert any(caption.value.startswith("2 accounts · your customers") for caption in app.caption)

    factors = app.dataframe[1].value  # the first customer, Acme, by default
    assert list(factors["factor"]) == [
        "Agent runs trend",
        "Active users trend",
        "Agent success rate",
        "Budget adherence",
        "DMT compliance trend",
        "Data freshness",
    ]
    assert list(factors["score"].fillna(-1)) == [70.0, -1, 70.0, -1, -1, -1]
    # weights 20 and 20 over the two factors with data: half each
    assert list(factors["share_pct"].fillna(0)) == [50.0, 0, 50.0, 0, 0, 0]
    assert factors["figures"][2] == "7 of 10 finished runs succeeded"

    alerts = app.dataframe[2].value
    assert list(zip(alerts["customer"], alerts["previous_score"], alerts["health_score"], strict=True)) == [
        ("Acme Pages", 82, 70)
    ]
    assert list(alerts["reason"]) == ["Fell by the drop and a band"]

    app.selectbox(key="account_health_tenant").set_value(GLOBEX).run()
    assert not app.exception, app.exception
    assert list(app.dataframe[1].value["score"].fillna(-1))[:3] == [90.0, -1, 70.0]


def test_the_account_manager_has_the_alert_in_notifications(app: AppTest) -> None:
    app.run()
    app.button(key=f"sign_in:{ACME}:{AMY}").click().run()
    app.switch_page("app_pages/notifications.py").run()
    assert not app.exception, app.exception
    titles = [str(element.value).replace("\\", "") for element in app.markdown]
    assert "**New** · **Acme Pages's account health fell to 70 (amber)**" in titles


@pytest.mark.parametrize(("email", "scope"), [(DORA, "every customer"), (PAT, "every customer")])
def test_the_account_director_and_platform_admins_see_every_customer(app: AppTest, email: str, scope: str) -> None:
    open_health(app, email, None)
    accounts = mine(app.dataframe[0].value)
    assert list(accounts["tenant_name"]) == ["Initech Pages", "Acme Pages", "Globex Pages"]
    assert list(accounts["band"]) == ["Red", "Amber", "Green"]
    assert list(accounts["account_managers"].fillna("")) == ["", f"Amy Accounts <{AMY}>", f"Amy Accounts <{AMY}>"]
    assert any(f"· {scope} ·" in caption.value for caption in app.caption)


@pytest.mark.parametrize("email", [OLGA, MIA])
def test_a_customers_own_users_get_no_account_health_page(app: AppTest, email: str) -> None:
    app.run()
    app.button(key=f"sign_in:{ACME}:{email}").click().run()
    assert not app.exception, app.exception
    with pytest.raises(ValueError, match="Known pages"):
        app.switch_page("app_pages/account_health.py")
