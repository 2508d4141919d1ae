"""Agent runs end to end: Claude Code OTLP and MCP reports → raw tables → int_agent_runs.

Every figure is computed by hand from the seeded prices (per million tokens):
claude-haiku-4-5 1 / 5 / 0.10 (cache read) / 1.25 (cache write); claude-sonnet-4-5 3 / 15 / 0.30 / 3.75.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from sqlalchemy import text

from connectors.sandbox import SandboxServer
from orchestration.defs.agents.schedules import agent_platform_schedule
from orchestration.defs.agents.sensors import agent_data_sensor
from orchestration.lib.instance import ensure_dagster_home
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.run import load_definitions
from pulse import control
from pulse.db import admin_engine, database_url
from pulse.mcp.runs import AgentIdentity, RunStore
from pulse.settings import Settings
from pulse.telemetry.server import ReceiverServer, build_receiver, start_server
from pulse.tokens import create_token

TENANT = "agt_a"
USER = "ada@agt-a.example"


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def event(name: str, at: datetime, prompt: str, **attributes: Any) -> LogRecord:
    attrs = [kv("event.name", name), kv("prompt.id", prompt), kv("session.id", "s-1"), kv("user.email", USER)]
    attrs += [kv(key, value) for key, value in attributes.items()]
    return LogRecord(
        time_unix_nano=int(at.timestamp() * 1e9), body=AnyValue(string_value=f"claude_code.{name}"), attributes=attrs
    )


def claude_code_batch() -> bytes:
    """Prompt p1: a Haiku request without a reported cost and a Sonnet one that reports 0.5 USD.
    Prompt p2: one failed API call and nothing else."""
    records = [
        event("user_prompt", datetime(2025, 11, 3, 9, 0, tzinfo=UTC), "p1"),
        event(
            "api_request",
            datetime(2025, 11, 3, 9, 0, 5, tzinfo=UTC),
            "p1",
            model="claude-haiku-4-5-20251001",
            input_tokens="10000",
            output_tokens="2000",
            cache_read_tokens="50000",
            cache_creation_tokens="0",
            duration_ms="1500",
        ),
        event(
            "api_request",
            datetime(2025, 11, 3, 9, 0, 30, tzinfo=UTC),
            "p1",
            model="claude-sonnet-4-5",
            input_tokens="1",
            output_tokens="1",
            cache_read_tokens="0",
            cache_creation_tokens="0",
            cost_usd="0.5",
            duration_ms="500",
        ),
        event(
            "api_error",
            datetime(2025, 11, 3, 10, 0, tzinfo=UTC),
            "p2",
            model="claude-sonnet-4-5",
            status_code=529,
            error="Overloaded",
        ),
    ]
    resource = Resource(
        attributes=[kv("service.name", "claude-code"), kv("organization.id", "org-1"), kv("team", "platform")]
    )
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )
    return request.SerializeToString()


@pytest.fixture(scope="module")
def tenant(settings: Settings) -> Iterator[str]:
    with admin_engine(settings).begin() as conn:
        control.add_tenant(conn, TENANT, "Agents A", actor="test")
        control.add_user(conn, USER, "Ada", actor="test")
        control.grant_role(conn, USER, "member", actor="test", tenant_id=TENANT)
    yield TENANT


@pytest.fixture(scope="module")
def receiver(settings: Settings, tenant: str) -> Iterator[tuple[str, str]]:
    with admin_engine(settings).begin() as conn:
        token = create_token(conn, tenant, "ingest", name="test", actor="test")
    server: ReceiverServer = start_server(build_receiver(database_url(settings)), port=0)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", token
    finally:
        server.shutdown()
        server.server_close()


def refresh(settings: Settings, tenant: str) -> None:
    """What the agent sensor's run does: the agent models of one tenant partition."""
    ensure_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition("tenant", tenant):
        instance.add_dynamic_partitions("tenant", [tenant])
    result = (
        load_definitions()
        .get_job_def("agent_models")
        .execute_in_process(partition_key=tenant, instance=instance, raise_on_error=False)
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]


def runs(settings: Settings, tenant: str) -> dict[str, dict[str, Any]]:
    with admin_engine(settings).connect() as conn:
        rows = conn.execute(
            text("select * from intermediate.int_agent_runs where tenant_id = :t order by agent_run_id"), {"t": tenant}
        ).mappings()
        return {row["agent_run_id"]: dict(row) for row in rows}


def test_claude_code_prompts_become_priced_runs(settings: Settings, receiver: tuple[str, str], tenant: str) -> None:
    url, token = receiver
    for _ in range(2):  # an exporter retry must not double anything
        answer = requests.post(
            f"{url}/v1/logs",
            data=claude_code_batch(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        assert answer.status_code == 200

    refresh(settings, tenant)

    found = runs(settings, tenant)
    p1, p2 = found["claude_code:prompt:p1"], found["claude_code:prompt:p2"]
    # Haiku: 10k in 0.01 + 2k out 0.01 + 50k cache reads 0.005 = 0.025; Sonnet reported 0.5.
    assert p1["cost_usd"] == Decimal("0.525000")
    assert p1["cost_source"] == "mixed"
    assert (p1["input_tokens"], p1["output_tokens"], p1["cache_read_tokens"], p1["cache_write_tokens"]) == (
        10001,
        2001,
        50000,
        0,
    )
    assert (p1["status"], p1["model_name"], p1["team_name"], p1["user_email"]) == (
        "succeeded",
        "claude-sonnet-4-5",
        "platform",
        USER,
    )
    assert p1["started_at"] == datetime(2025, 11, 3, 9, 0, tzinfo=UTC)
    assert p1["duration_seconds"] == Decimal("30.500")  # until the last request's end: 09:00:30 + 0.5 s
    assert (p2["status"], p2["error_category"], p2["error_message"], p2["cost_source"]) == (
        "failed",
        "api_error",
        "Overloaded",
        "none",
    )


def test_a_run_reported_running_then_finished_updates_one_row(settings: Settings, tenant: str) -> None:
    store = RunStore(admin_engine(settings))
    identity = AgentIdentity(tenant, USER, "Ada")
    base = {
        "run_id": "r-1",
        "agent_type": "test-writer",
        "model_name": "claude-sonnet-4-5-20250929",
        "started_at": "2025-11-04T08:00:00Z",
        "team": "platform",
    }
    store.record(identity, {**base, "status": "running"})
    refresh(settings, tenant)
    running = runs(settings, tenant)["agent_mcp:r-1"]
    assert (running["is_running"], running["cost_source"], running["ended_at"]) == (True, "computed", None)

    store.record(
        identity,
        {
            **base,
            "status": "succeeded",
            "ended_at": "2025-11-04T08:02:00Z",
            "input_tokens": 1_000_000,
            "output_tokens": 100_000,
            "cache_read_tokens": 200_000,
            "cache_write_tokens": 40_000,
        },
    )
    refresh(settings, tenant)

    finished = [r for r in runs(settings, tenant).values() if r["origin"] == "agent_mcp"]
    assert len(finished) == 1
    run = finished[0]
    # 1M in 3.00 + 100k out 1.50 + 200k cache reads 0.06 + 40k cache writes 0.15 = 4.71, each cache token once
    assert (run["input_cost_usd"], run["output_cost_usd"]) == (Decimal("3.000000"), Decimal("1.500000"))
    assert (run["cache_read_cost_usd"], run["cache_write_cost_usd"]) == (Decimal("0.060000"), Decimal("0.150000"))
    assert run["cost_usd"] == Decimal("4.710000")
    assert (run["status"], run["is_running"], run["duration_seconds"]) == ("succeeded", False, Decimal("120.000"))


def test_correcting_a_price_recomputes_history(settings: Settings, tenant: str) -> None:
    engine = admin_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text("update reference.model_prices set input_usd_per_mtok = 4.00 where model_name = 'claude-sonnet-4-5'")
        )
    try:
        # Only the models, not the seed: the corrected table must drive the rebuild.
        refresh_models_only(settings, tenant)
        assert runs(settings, tenant)["agent_mcp:r-1"]["cost_usd"] == Decimal("5.710000")
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "update reference.model_prices set input_usd_per_mtok = 3.00 where model_name = 'claude-sonnet-4-5'"
                )
            )


def refresh_models_only(settings: Settings, tenant: str) -> None:
    from tests.conftest import run_dbt

    run_dbt(["run", "--select", "intermediate.agents", "--vars", json.dumps({"tenant_id": tenant})])


def test_the_sensor_asks_for_a_refresh_once_per_arrival(settings: Settings, tenant: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenant", [tenant])
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": PulseWarehouse()})

    first = agent_data_sensor(context)
    assert isinstance(first, dg.SensorResult)
    assert tenant in [request.partition_key for request in first.run_requests or []]

    again = agent_data_sensor(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"warehouse": PulseWarehouse()})
    )
    assert isinstance(again, dg.SensorResult)
    assert tenant not in [request.partition_key for request in again.run_requests or []]


def test_agent_platform_runs_reach_int_agent_runs_through_the_scheduled_job(
    settings: Settings, sandbox: SandboxServer
) -> None:
    slug = "agt_plat"
    with admin_engine(settings).begin() as conn:
        control.add_tenant(conn, slug, "Agent platform", actor="test")
        control.add_source(
            conn,
            slug,
            "agent_platform",
            "agents",
            sandbox.url,
            credentials={"token": f"aps_sandbox_{slug}"},
            config={},
            secret_key=settings.secret_key,
            actor="test",
        )
    ensure_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("tenant", [slug])

    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 11, 22, 3, 0, tzinfo=UTC),
        resources={"warehouse": PulseWarehouse()},
    ) as context:
        requests = agent_platform_schedule(context)
    assert isinstance(requests, list)
    assert [r.partition_key for r in requests if r.partition_key == slug] == [slug]

    result = (
        load_definitions()
        .resolve_job_def("agent_platform_sync")
        .execute_in_process(partition_key=slug, instance=instance, raise_on_error=False)
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    world = sandbox.agent_world(slug)
    found = runs(settings, slug)
    assert len(found) == world.counts()["runs"]
    in_flight = {f"agent_platform:{run.id}" for run in world.in_flight()}
    assert {key for key, row in found.items() if row["is_running"]} == in_flight
    reported = [r for r in world.runs.values() if r.cost_usd is not None and r.is_finished]
    sample = reported[0]
    assert float(found[f"agent_platform:{sample.id}"]["cost_usd"]) == pytest.approx(sample.cost_usd, abs=1e-6)
    assert found[f"agent_platform:{sample.id}"]["cost_source"] == "reported"


def test_the_mcp_usage_summary_covers_every_route(settings: Settings, tenant: str) -> None:
    refresh(settings, tenant)  # the modeled runs: Claude Code prompts p1, p2 and the MCP run r-1
    store = RunStore(admin_engine(settings))
    identity = AgentIdentity(tenant, USER, "Ada")

    summary = store.summary(identity, days=3650, now=datetime(2026, 11, 22, tzinfo=UTC))

    # p1 succeeded 0.525 USD; p2 failed, no usage; r-1 succeeded 4.71 USD (1M in, 100k out, cache 200k/40k).
    assert (summary["runs"], summary["succeeded"], summary["failed"]) == (3, 2, 1)
    assert summary["success_rate_pct"] == 66.7
    assert summary["input_tokens"] == 1_010_001
    assert summary["cache_read_tokens"] == 250_000
    assert Decimal(str(summary["cost_usd"])) == Decimal("5.235")
    assert summary["runs_without_cost"] == 1
    assert {kind: figures["runs"] for kind, figures in summary["by_agent_type"].items()} == {
        "claude-code": 2,
        "test-writer": 1,
    }
