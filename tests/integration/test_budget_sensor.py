"""The real Dagster path of a budget alert, in process: a run reported through `pulse mcp`'s
report path → the ``agent_models`` job → ``agent_usage_marts_after_models`` asks for the
usage marts → the ``agent_usage_marts`` job → ``budget_alerts_sensor`` → an in-app
notification and an email read back from a real local SMTP server (aiosmtpd).

One run, priced by hand with the seeded claude-sonnet-4-5 prices (3 / 15 / 0.30 / 3.75 per
million): 1M input 3.00 + 100k output 1.50 + 200k cache reads 0.06 + 40k cache writes 0.15
= 4.71, against an organisation budget of 9.42: exactly 50 %.
"""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from email.message import Message
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from orchestration.defs.budgets.sensors import agent_usage_marts_after_models, budget_alerts_sensor
from orchestration.lib.instance import ensure_dagster_home
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.run import load_definitions
from pulse import control
from pulse.budgets.store import set_budget
from pulse.db import admin_engine
from pulse.mcp.runs import AgentIdentity, RunStore
from pulse.settings import Settings

TENANT = "bsensor_a"
OLGA = "olga@bsensor-a.example"
ADA = "ada@bsensor-a.example"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _cleanup(conn: sa.Connection) -> None:
    params = {"t": TENANT}
    for table in ("fct_agent_runs", "fct_agent_usage_daily", "fct_agent_team_ranks_monthly"):
        if conn.execute(sa.text(f"select to_regclass('marts.{table}')")).scalar() is not None:
            conn.execute(sa.text(f"delete from marts.{table} where tenant_id = :t"), params)
    for table in ("fct_agent_top_users_monthly", "fct_budget_utilization"):
        if conn.execute(sa.text(f"select to_regclass('marts.{table}')")).scalar() is not None:
            conn.execute(sa.text(f"delete from marts.{table} where tenant_id = :t"), params)
    if conn.execute(sa.text("select to_regclass('intermediate.int_agent_runs')")).scalar() is not None:
        conn.execute(sa.text("delete from intermediate.int_agent_runs where tenant_id = :t"), params)
    conn.execute(sa.text("delete from control.email_outbox where tenant_id = :t"), params)
    conn.execute(sa.text("delete from control.notifications where tenant_id = :t"), params)
    conn.execute(sa.text("update control.budget_alerts set announced_by = null where tenant_id = :t"), params)
    for table in ("budget_alerts", "budget_thresholds", "budgets"):
        conn.execute(sa.text(f"delete from control.{table} where tenant_id = :t"), params)
    conn.execute(sa.text("delete from control.users where email = any(:e)"), {"e": [OLGA, ADA]})
    conn.execute(sa.text(f'drop schema if exists "raw_agent_mcp__{TENANT}" cascade'))
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
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def tenant(settings: Settings) -> Iterator[str]:
    engine = admin_engine(settings)
    with engine.begin() as conn:
        _cleanup(conn)
        control.add_tenant(conn, TENANT, "Sensor Co", actor="test")
        for address, role in ((OLGA, "org_admin"), (ADA, "member")):
            control.add_user(conn, address, address.split("@")[0].title(), actor="test")
            control.grant_role(conn, address, role, actor="test", tenant_id=TENANT)
        set_budget(conn, TENANT, "9.42", actor="test")
    try:
        yield TENANT
    finally:
        with engine.begin() as conn:
            _cleanup(conn)


def _execute(defs: dg.Definitions, job: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = defs.get_job_def(job).execute_in_process(partition_key=TENANT, instance=instance, raise_on_error=False)
    assert result.success, [event.message for event in result.all_events if event.is_failure]
    return result


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": PulseWarehouse()})
    result = budget_alerts_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_a_reported_run_reaches_its_alert_through_the_sensors_once(
    settings: Settings, tenant: str, smtp: Mailbox
) -> None:
    engine = admin_engine(settings)
    ensure_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition("tenant", TENANT):
        instance.add_dynamic_partitions("tenant", [TENANT])
    defs = load_definitions()
    with engine.connect() as conn:
        now = conn.execute(sa.text("select now()")).scalar_one()
    RunStore(engine).record(
        AgentIdentity(TENANT, ADA),
        {
            "run_id": "r-50",
            "agent_type": "coder",
            "model_name": "claude-sonnet-4-5",
            "status": "succeeded",
            "started_at": (now - timedelta(seconds=60)).isoformat(),
            "ended_at": now.isoformat(),
            "input_tokens": 1_000_000,
            "output_tokens": 100_000,
            "cache_read_tokens": 200_000,
            "cache_write_tokens": 40_000,
        },
    )

    models = _execute(defs, "agent_models", instance)
    run = instance.get_run_by_id(models.run_id)
    assert run is not None
    (success,) = instance.get_records_for_run(models.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
    request = agent_usage_marts_after_models(
        dg.build_run_status_sensor_context(
            sensor_name="agent_usage_marts_after_models",
            dagster_event=success.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
        )
    )
    assert isinstance(request, dg.RunRequest)
    assert (request.partition_key, request.run_key) == (TENANT, f"usage-marts:{models.run_id}")

    _execute(defs, "agent_usage_marts", instance)
    with engine.connect() as conn:
        spend, share, projected = conn.execute(
            sa.text(
                "select month_to_date_spend_usd, share_used_pct, projected_spend_usd from marts.fct_budget_utilization"
                " where tenant_id = :t and is_current_period"
            ),
            {"t": TENANT},
        ).one()
    assert (spend, share) == (Decimal("4.710000"), Decimal("50.00"))
    # The whole 4.71 is in the last 7 days: the projection adds 4.71 / 7 a day for the days left,
    # which passes 9.42 unless fewer than 7 days are left, and then the early warning fires too.
    titles = ["Sensor Co's organisation budget 50 % used"]
    if projected > Decimal("9.42"):
        titles.append("Sensor Co's organisation budget is projected to be exceeded")

    first = _tick(instance, None)
    assert sorted(message["Subject"] for message in smtp.messages) == sorted(f"[Pulse] {t}" for t in titles)
    assert {(message["To"], message["From"]) for message in smtp.messages} == {(OLGA, "alerts@pulse.example")}
    (message,) = [m for m in smtp.messages if m["Subject"].endswith("50 % used")]
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "USD 4.71, 50.0 % of the USD 9.42 monthly organisation budget" in body
    with engine.connect() as conn:
        notified = conn.execute(
            sa.text("select recipient_email, title from control.notifications where tenant_id = :t"), {"t": TENANT}
        ).all()
    assert sorted(tuple(row) for row in notified) == sorted((OLGA, title) for title in titles)

    # The next tick, a backfill that rebuilds the marts, and a restarted sensor without its
    # cursor: nothing is notified or sent again.
    second = _tick(instance, first.cursor)
    assert "bsensor_a" not in (second.skip_reason or "")
    _execute(defs, "agent_usage_marts", instance)
    after_backfill = _tick(instance, second.cursor)
    assert f"evaluated budgets of {TENANT}" in str(after_backfill.skip_reason)
    assert "0 new alert(s)" in str(after_backfill.skip_reason)
    _tick(instance, None)
    assert len(smtp.messages) == len(titles)
    with engine.connect() as conn:
        count = conn.execute(
            sa.text("select count(*) from control.notifications where tenant_id = :t"), {"t": TENANT}
        ).scalar_one()
    assert count == len(titles)
