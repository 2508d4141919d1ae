"""Health alerts against a real PostgreSQL and a real local SMTP server (aiosmtpd).

The days are written into ``marts.fct_account_health_daily`` as a build would leave them (the
mart's figures are proven in test_account_health.py and its dbt unit tests); everything after
it — the rule, the ledger, notifications, outbox, SMTP — is the real code. "Now" is
2026-11-20 13:00 UTC, so the current day is Nov 20 (every tenant here is in UTC).

Acme's account managers are Amy and Abe; Globex's is Gil; Olga is Acme's org admin and Dora
the account director: neither is an account manager, so neither hears about a fall.
"""

from __future__ import annotations

import email
import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from email.message import Message
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from pulse import control
from pulse.budgets.mail import SmtpSettings
from pulse.db import admin_engine, reader_url, sqlalchemy_url
from pulse.health import run_health_alerts
from pulse.health.evaluate import evaluate_health
from pulse.health.portfolio import declare_scope
from pulse.health.rules import band_of
from pulse.settings import Settings
from tests.conftest import run_dbt

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
TODAY, YESTERDAY = date(2026, 11, 20), date(2026, 11, 19)
ACME, GLOBEX, HOOLI, INITECH, NOBODY = "al_acme", "al_globex", "al_hooli", "al_initech", "al_nobody"
TENANTS = (ACME, GLOBEX, HOOLI, INITECH, NOBODY)
AMY, ABE, GIL, HAL = "amy@al-pulse.example", "abe@al-pulse.example", "gil@al-pulse.example", "hal@al-pulse.example"
IDA, OLGA, DORA = "ida@al-pulse.example", "olga@al-acme.example", "dora@al-pulse.example"
PEOPLE: dict[str, tuple[str, str, str | None]] = {
    AMY: ("Amy Accounts", "account_manager", ACME),
    ABE: ("Abe Accounts", "account_manager", ACME),
    GIL: ("Gil Accounts", "account_manager", GLOBEX),
    HAL: ("Hal Accounts", "account_manager", HOOLI),
    IDA: ("Ida Accounts", "account_manager", INITECH),
    OLGA: ("Olga Admin", "org_admin", ACME),
    DORA: ("Dora Director", "account_director", None),
}


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _cleanup(conn: sa.Connection) -> None:
    params = {"t": list(TENANTS)}
    conn.execute(sa.text("delete from marts.fct_account_health_daily where tenant_id = any(:t)"), params)
    # users take their grants and notifications (and those their emails); tenants their alerts
    conn.execute(sa.text("delete from control.users where email = any(:e)"), {"e": list(PEOPLE)})
    conn.execute(sa.text("delete from control.email_outbox where tenant_id = any(:t)"), params)
    conn.execute(sa.text("delete from control.notifications where tenant_id = any(:t)"), params)
    conn.execute(sa.text("delete from control.tenants where slug = any(:t)"), params)


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[sa.Engine]:
    engine = admin_engine(settings)
    with engine.connect() as conn:
        missing = conn.execute(sa.text("select to_regclass('marts.fct_account_health_daily')")).scalar() is None
    if missing:  # built by test_account_health.py when the modules run together
        run_dbt(["build", "--select", "+fct_account_health_daily", "--exclude", "test_type:unit", "test_type:data"])
    with engine.begin() as conn:
        _cleanup(conn)
        for tenant in TENANTS:
            control.add_tenant(conn, tenant, f"{tenant.removeprefix('al_').title()} Alerts", actor="test")
        for address, (name, role, tenant) in PEOPLE.items():
            control.add_user(conn, address, name, actor="test")
            control.grant_role(conn, address, role, actor="test", tenant_id=tenant)
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            _cleanup(conn)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, SmtpSettings]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, SmtpSettings(host="127.0.0.1", port=port, sender="alerts@pulse.example")
    finally:
        controller.stop()


def write_days(engine: sa.Engine, tenant: str, scores: dict[date, int], latest: date = TODAY) -> None:
    """What a build of the tenant's partition leaves: its days, each with the day before's score."""
    with engine.begin() as conn:
        conn.execute(sa.text("delete from marts.fct_account_health_daily where tenant_id = :t"), {"t": tenant})
        for day, score in sorted(scores.items()):
            before = scores.get(date.fromordinal(day.toordinal() - 1))
            conn.execute(
                sa.text(
                    "insert into marts.fct_account_health_daily (tenant_id, score_date, is_latest,"
                    " agent_runs_trend_score, agent_success_rate_score, data_freshness_score, factors_with_data,"
                    " factors_without_data, weighted_score, health_score, health_band, previous_day_score,"
                    " previous_day_band, measured_at)"
                    " values (:t, :d, :latest, 100, :score, 50, 3,"
                    " 'active_users_trend, budget_adherence, dmt_compliance_trend', :score, :score, :band,"
                    " :before, :before_band, :measured)"
                ),
                {
                    "t": tenant,
                    "d": day,
                    "latest": day == latest,
                    "score": score,
                    "band": band_of(score),
                    "before": before,
                    "before_band": None if before is None else band_of(before),
                    "measured": NOW,
                },
            )


def notifications(engine: sa.Engine, tenant: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select n.recipient_email, n.kind, n.title from control.notifications as n"
                " where n.tenant_id = :t and n.health_alert_id is not null order by n.recipient_email"
            ),
            {"t": tenant},
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def ledger(engine: sa.Engine, tenant: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select score_date, previous_score, previous_band, health_score, health_band, reason, drop_threshold"
                " from control.health_alerts where tenant_id = :t order by health_alert_id"
            ),
            {"t": tenant},
        ).all()
    return [tuple(row) for row in rows]


def test_a_fall_by_the_drop_reaches_the_account_managers_once_in_app_and_by_email(
    engine: sa.Engine, mailbox: tuple[Mailbox, SmtpSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, smtp = mailbox
    monkeypatch.delenv("PULSE_HEALTH_ALERT_DROP", raising=False)
    write_days(engine, ACME, {date(2026, 11, 18): 91, YESTERDAY: 90, TODAY: 78})

    first = run_health_alerts(engine, tenant_ids=[ACME], smtp=smtp, now=NOW)

    (alert,) = first.alerts
    assert (alert.score_date, alert.previous_score, alert.health_score, alert.reason) == (TODAY, 90, 78, "drop")
    assert alert.recipients == (ABE, AMY)
    title = "Acme Alerts's account health fell to 78 (green)"
    assert notifications(engine, ACME) == [(ABE, "account_health", title), (AMY, "account_health", title)]
    assert ledger(engine, ACME) == [(TODAY, 90, "green", 78, "green", "drop", 10)]
    assert sorted(message["To"] for message in box.messages) == [ABE, AMY]  # not Olga, not Dora
    assert {message["Subject"] for message in box.messages} == {f"[Pulse] {title}"}
    body = box.messages[0].get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "The health score of Acme Alerts on 2026-11-20 is 78 out of 100: down 12 points from 90 (green)" in body
    assert (
        "- Data freshness: 50\n- Agent success rate: 78\n- Agent runs trend: 100\n- Active users trend: no data" in body
    )
    assert "because you are the account manager of this customer" in body
    assert len(first.delivery.sent) == 2

    # Again, after a rebuild of the same days (a re-run or a backfill), and two evaluators at
    # once: the day has alerted, nobody hears of it twice.
    assert run_health_alerts(engine, tenant_ids=[ACME], smtp=smtp, now=NOW).alerts == []
    write_days(engine, ACME, {date(2026, 11, 18): 91, YESTERDAY: 90, TODAY: 70})

    def evaluate() -> int:
        with engine.begin() as conn:
            return len(evaluate_health(conn, tenant_ids=[ACME], now=NOW))

    with ThreadPoolExecutor(2) as pool:
        assert sum(pool.map(lambda _: evaluate(), range(2))) == 0
    assert run_health_alerts(engine, tenant_ids=[ACME], smtp=smtp, now=NOW).alerts == []
    assert len(box.messages) == 2
    assert len(notifications(engine, ACME)) == 2


def test_one_point_into_a_lower_band_alerts_and_a_rise_does_not(
    engine: sa.Engine, mailbox: tuple[Mailbox, SmtpSettings]
) -> None:
    box, smtp = mailbox
    write_days(engine, GLOBEX, {YESTERDAY: 76, TODAY: 75})
    (alert,) = run_health_alerts(engine, tenant_ids=[GLOBEX], smtp=smtp, now=NOW).alerts
    assert (alert.reason, alert.recipients) == ("band", (GIL,))
    assert [message["To"] for message in box.messages] == [GIL]
    body = box.messages[0].get_payload(decode=True).decode()
    assert "down 1 point from 76 (green) the day before, from the green band to amber." in body

    write_days(engine, GLOBEX, {date(2026, 11, 21): 40, date(2026, 11, 22): 60}, latest=date(2026, 11, 22))
    assert (
        run_health_alerts(engine, tenant_ids=[GLOBEX], smtp=smtp, now=datetime(2026, 11, 22, 9, tzinfo=UTC)).alerts
        == []
    )


def test_a_smaller_fall_is_quiet_unless_the_drop_is_configured_lower(
    engine: sa.Engine, mailbox: tuple[Mailbox, SmtpSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, smtp = mailbox
    write_days(engine, HOOLI, {YESTERDAY: 90, TODAY: 81})
    monkeypatch.delenv("PULSE_HEALTH_ALERT_DROP", raising=False)
    assert run_health_alerts(engine, tenant_ids=[HOOLI], smtp=smtp, now=NOW).alerts == []
    assert ledger(engine, HOOLI) == []

    monkeypatch.setenv("PULSE_HEALTH_ALERT_DROP", "5")
    (alert,) = run_health_alerts(engine, tenant_ids=[HOOLI], smtp=smtp, now=NOW).alerts
    assert (alert.reason, alert.recipients) == ("drop", (HAL,))
    assert ledger(engine, HOOLI) == [(TODAY, 90, "green", 81, "green", "drop", 5)]


def test_a_backfilled_past_is_not_news_but_yesterday_still_is(
    engine: sa.Engine, mailbox: tuple[Mailbox, SmtpSettings]
) -> None:
    _, smtp = mailbox
    # A rebuild as of Nov 10 (var as_of): its latest day fell 40 points, ten days ago.
    write_days(engine, INITECH, {date(2026, 11, 9): 90, date(2026, 11, 10): 50}, latest=date(2026, 11, 10))
    assert run_health_alerts(engine, tenant_ids=[INITECH], smtp=smtp, now=NOW).alerts == []
    assert ledger(engine, INITECH) == []
    # Not rescored since yesterday: yesterday's fall is still announced.
    write_days(engine, INITECH, {date(2026, 11, 18): 90, YESTERDAY: 50}, latest=YESTERDAY)
    (alert,) = run_health_alerts(engine, tenant_ids=[INITECH], smtp=smtp, now=NOW).alerts
    assert (alert.score_date, alert.reason, alert.recipients) == (YESTERDAY, "drop_and_band", (IDA,))


def test_a_tenant_without_account_manager_is_recorded_and_warned_about(
    engine: sa.Engine, mailbox: tuple[Mailbox, SmtpSettings], caplog: pytest.LogCaptureFixture
) -> None:
    box, smtp = mailbox
    write_days(engine, NOBODY, {YESTERDAY: 80, TODAY: 60})
    with caplog.at_level(logging.WARNING, logger="pulse.health.evaluate"):
        (alert,) = run_health_alerts(engine, tenant_ids=[NOBODY], smtp=smtp, now=NOW).alerts
    assert alert.recipients == ()
    assert ledger(engine, NOBODY) == [(TODAY, 80, "green", 60, "amber", "drop_and_band", 10)]
    assert notifications(engine, NOBODY) == [] and box.messages == []
    assert "account health of al_nobody fell (80 → 60) but it has no account manager" in caplog.text


def test_the_reader_sees_the_alerts_of_its_scope_only(settings: Settings, engine: sa.Engine) -> None:
    for tenant in (ACME, GLOBEX):  # alerted once, whether or not the tests above ran first
        write_days(engine, tenant, {YESTERDAY: 76, TODAY: 75})
        with engine.begin() as conn:
            evaluate_health(conn, tenant_ids=[tenant], now=NOW)
    reader = sa.create_engine(sqlalchemy_url(reader_url(settings)))
    try:
        with reader.begin() as conn:
            assert declare_scope(conn, GIL) == [GLOBEX]
            seen = conn.execute(sa.text("select distinct tenant_id from control.health_alerts")).scalars().all()
        assert seen == [GLOBEX]
        with reader.begin() as conn:
            declare_scope(conn, DORA)
            seen = conn.execute(
                sa.text("select distinct tenant_id from control.health_alerts where tenant_id = any(:t) order by 1"),
                {"t": list(TENANTS)},
            ).scalars()
            assert set(seen) >= {ACME, GLOBEX}
        with reader.begin() as conn:  # Acme's org admin: no health scope, no alert
            assert declare_scope(conn, OLGA) == []
            assert conn.execute(sa.text("select count(*) from control.health_alerts")).scalar_one() == 0
    finally:
        reader.dispose()
