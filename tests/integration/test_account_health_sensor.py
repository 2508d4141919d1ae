"""The Dagster path of a health alert, in process, and how long it takes: a tenant's agent runs in
``marts.fct_agent_runs`` (as the usage-marts run leaves them) → the ``account_health`` job (dbt
for the tenant's partition) → ``account_health_alerts_sensor`` → an in-app notification and an
email read back from a real local SMTP server (aiosmtpd); once, whatever ticks follow.

Tenant ``hsensor_a`` (UTC) ran 2 successful runs a day for the 20 days before today; today 30
runs failed. Yesterday: 28 runs in the 14 days vs 12 before → 100, one person → 100, all
succeeded → 100: health 100. Today: 56 runs vs 14 → 100, one person → 100, success 26 / 56 =
46.43 → (2000 + 1500 + 928.6) / 55 = 80.52 → 81: 19 points down, alert (same band).
"""

from __future__ import annotations

import email
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import Message
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from orchestration.defs.health.schedules import account_health_schedule
from orchestration.defs.health.sensors import account_health_alerts_sensor
from orchestration.lib.instance import ensure_dagster_home
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.run import load_definitions
from pulse import control
from pulse.db import admin_engine
from pulse.settings import Settings
from tests.conftest import run_dbt

log = logging.getLogger(__name__)

TENANT = "hsensor_a"
AMY, OLGA, ADA = "amy@hsensor.example", "olga@hsensor-a.example", "ada@hsensor-a.example"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Message, float]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((email.message_from_bytes(envelope.content), time.monotonic()))
        return "250 OK"


def _cleanup(conn: sa.Connection) -> None:
    params = {"t": TENANT}
    for relation in ("marts.fct_account_health_daily", "marts.fct_agent_runs"):
        conn.execute(sa.text(f"delete from {relation} where tenant_id = :t"), params)
    conn.execute(sa.text("delete from control.users where email = any(:e)"), {"e": [AMY, OLGA]})
    conn.execute(sa.text("delete from control.email_outbox where tenant_id = :t"), params)
    conn.execute(sa.text("delete from control.notifications where tenant_id = :t"), params)
    conn.execute(sa.text("delete from control.tenants where slug = :t"), params)


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """A real SMTP server; the sensor finds it through PULSE_SMTP_* as in production."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("PULSE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PULSE_SMTP_PORT", str(port))
    monkeypatch.setenv("PULSE_SMTP_FROM", "alerts@pulse.example")
    monkeypatch.delenv("PULSE_HEALTH_ALERT_DROP", raising=False)
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def tenant(settings: Settings) -> Iterator[str]:
    engine = admin_engine(settings)
    with engine.connect() as conn:
        missing = conn.execute(sa.text("select to_regclass('marts.fct_work_item_compliance')")).scalar() is None
    if missing:  # the upstream marts, built by test_account_health.py when the modules run together
        run_dbt(["build", "--select", "+fct_account_health_daily", "--exclude", "test_type:unit", "test_type:data"])
    with engine.begin() as conn:
        _cleanup(conn)
        control.add_tenant(conn, TENANT, "Sensor Health", actor="test")
        control.add_user(conn, AMY, "Amy Accounts", actor="test")
        control.grant_role(conn, AMY, "account_manager", actor="test", tenant_id=TENANT)
        control.add_user(conn, OLGA, "Olga Admin", actor="test")
        control.grant_role(conn, OLGA, "org_admin", actor="test", tenant_id=TENANT)
    try:
        yield TENANT
    finally:
        with engine.begin() as conn:
            _cleanup(conn)


def _runs(conn: sa.Connection, rows: list[tuple[str, datetime, str]]) -> None:
    """Agent runs as the usage-marts refresh leaves them in marts.fct_agent_runs."""
    conn.execute(
        sa.text(
            "insert into marts.fct_agent_runs (agent_run_id, tenant_id, origin, agent_type, user_email, status,"
            " is_running, is_finished, is_succeeded, model_name, started_at, ended_at, run_date, run_month)"
            " values (:id, :t, 'agent_mcp', 'coder', :user, :status, false, true, :status = 'succeeded',"
            " 'claude-sonnet-4-5', :at, :at, cast(:at as timestamptz)::date,"
            " date_trunc('month', cast(:at as timestamptz))::date)"
        ),
        [{"id": run_id, "t": TENANT, "user": ADA, "status": status, "at": at} for run_id, at, status in rows],
    )


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": PulseWarehouse()})
    result = account_health_alerts_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_fresh_data_reaches_the_account_manager_through_the_job_and_sensor_once(
    settings: Settings, tenant: str, smtp: Mailbox
) -> None:
    engine = admin_engine(settings)
    ensure_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition("tenant", TENANT):
        instance.add_dynamic_partitions("tenant", [TENANT])
    defs = load_definitions()
    with engine.begin() as conn:
        now: datetime = conn.execute(sa.text("select now()")).scalar_one()
        today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
        history = [
            (f"h{day}-{n}", today - timedelta(days=day) + timedelta(hours=12), "succeeded")
            for day in range(1, 21)
            for n in range(2)
        ]
        _runs(conn, history)
    # The data that causes the fall lands: 30 failed runs today (between midnight and now).
    landed_at = time.monotonic()
    with engine.begin() as conn:
        _runs(conn, [(f"f{n}", today + (now - today) / 2, "failed") for n in range(30)])

    result = defs.resolve_job_def("account_health").execute_in_process(
        partition_key=TENANT, instance=instance, raise_on_error=False
    )
    assert result.success, [event.message for event in result.all_events if event.is_failure]
    with engine.connect() as conn:
        day = (
            conn.execute(
                sa.text(
                    "select health_score, health_band, previous_day_score, agent_success_rate_score"
                    " from marts.fct_account_health_daily where tenant_id = :t and is_latest"
                ),
                {"t": TENANT},
            )
            .mappings()
            .one()
        )
    assert dict(day) == {
        "health_score": 81,
        "health_band": "green",
        "previous_day_score": 100,
        "agent_success_rate_score": Decimal("46.43"),
    }

    first = _tick(instance, None)
    (message, arrived_at) = smtp.messages[0]
    latency = arrived_at - landed_at
    log.info("health alert latency: %.1f s from the runs landing to the email (job + sensor tick)", latency)
    assert latency < 3600  # the promise; in practice well under a minute here
    assert (message["To"], message["From"]) == (AMY, "alerts@pulse.example")
    assert message["Subject"] == "[Pulse] Sensor Health's account health fell to 81 (green)"
    assert f"evaluated account health of {TENANT}: 1 new alert(s); 1 email(s) sent" in str(first.skip_reason)
    with engine.connect() as conn:
        notified = conn.execute(
            sa.text("select recipient_email, kind from control.notifications where tenant_id = :t"), {"t": TENANT}
        ).all()
    assert [tuple(row) for row in notified] == [(AMY, "account_health")]  # not the org admin

    # The next tick, and a restarted sensor without its cursor: nothing is notified or sent again.
    second = _tick(instance, first.cursor)
    assert TENANT not in str(second.skip_reason)
    again = _tick(instance, None)
    assert "0 new alert(s)" in str(again.skip_reason)
    assert len(smtp.messages) == 1

    # The half-hourly schedule rescores every active tenant with a partition, this one included.
    # In a `with`: the context enters an instance of its own (tests/conftest.py says why it must exit).
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 12, 1, 10, 5, tzinfo=UTC),
        resources={"warehouse": PulseWarehouse()},
    ) as context:
        requests = account_health_schedule(context)
    assert isinstance(requests, list)
    assert f"account-health:{TENANT}:2026-12-01T10:05:00+00:00" in {request.run_key for request in requests}
