"""The OTLP receiver end to end: real OpenTelemetry SDK exporters → HTTP → PostgreSQL."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import requests
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from pulse.telemetry.server import Receiver, ReceiverConfig, ReceiverServer, build_receiver, start_server
from tests.conftest import free_port
from tests.unit.test_otlp_convert import RESOURCE, api_request_attrs, logs_request, metrics_request

TENANT_A = "otlp_a"
TENANT_B = "otlp_b"
PB = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def tokens(settings: Any) -> dict[str, str]:
    from pulse import control
    from pulse.db import admin_engine
    from pulse.tokens import create_token

    with admin_engine(settings).begin() as conn:
        result = {}
        for slug in (TENANT_A, TENANT_B):
            if control.get_tenant(conn, slug) is None:
                control.add_tenant(conn, slug, slug.upper(), actor="test:otlp")
            result[slug] = create_token(conn, slug, "ingest", name="otlp test", actor="test:otlp")
    return result


def serve(db_url: str, config: ReceiverConfig) -> tuple[Receiver, ReceiverServer, str]:
    receiver = build_receiver(db_url, config)
    server = start_server(receiver, "127.0.0.1", free_port())
    return receiver, server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def receiver_url(db_url: str, tokens: dict[str, str]) -> Iterator[str]:
    receiver, server, url = serve(db_url, ReceiverConfig(max_body_bytes=256 * 1024, token_ttl=0.5))
    yield url
    server.shutdown()
    server.server_close()
    receiver.store.pool.close()


def query(db_url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(statement).fetchall()  # type: ignore[arg-type]


def count(db_url: str, tenant: str, table: str = "otel_events", where: str = "true") -> int:
    with psycopg.connect(db_url) as conn:
        schema = f"raw_claude_code__{tenant}"
        present = conn.execute("select to_regclass(%s)", (f"{schema}.{table}",)).fetchone()
        if present is None or present[0] is None:
            return 0
        row = conn.execute(f"select count(*) from {schema}.{table} where {where}").fetchone()
        return int(row[0]) if row else 0


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sdk_log_exporter_protobuf_gzip(receiver_url: str, db_url: str, tokens: dict[str, str]) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create(
        {
            "service.name": "claude-code",
            "service.version": "2.1.0",
            "organization.id": "org-sdk",
            "user.email": "grace@example.com",
            "team": "data",
        }
    )
    exporter = OTLPLogExporter(
        endpoint=f"{receiver_url}/v1/logs", headers=auth(tokens[TENANT_A]), compression=Compression.Gzip
    )
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("com.anthropic.claude_code.events", "2.1.0")
    ts = 1_767_225_600_000_000_000
    logger.emit(
        timestamp=ts,
        body="claude_code.api_request",
        attributes={
            "event.name": "api_request",
            "session.id": "sdk-session",
            "prompt.id": "sdk-prompt-1",
            "user.id": "u-1",
            "model": "claude-opus-4-1",
            "cost_usd": "0.4521",
            "duration_ms": "8123",
            "input_tokens": "3000",
            "output_tokens": "1500",
            "cache_read_tokens": "120000",
            "cache_creation_tokens": "4000",
            "request_id": "req_sdk_1",
        },
    )
    logger.emit(
        timestamp=ts + 1_000_000,
        body="claude_code.tool_result",
        attributes={
            "event.name": "tool_result",
            "session.id": "sdk-session",
            "prompt.id": "sdk-prompt-1",
            "tool_name": "Edit",
            "success": "true",
            "duration_ms": 42,
        },
    )
    logger.emit(
        timestamp=ts + 2_000_000,
        body="claude_code.api_error",
        attributes={"event.name": "api_error", "session.id": "sdk-session", "status_code": "529", "error": "busy"},
    )
    provider.shutdown()

    rows = query(
        db_url,
        f"select event_name, event_at, session_id, prompt_id, user_id, user_email, organization_id, team, model, "
        f"cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, duration_ms, success, "
        f"tool_name, status_code, error, request_id, resource->>'service.name', attributes->>'cost_usd' "
        f"from raw_claude_code__{TENANT_A}.otel_events where session_id = 'sdk-session' order by event_at",
    )
    assert rows == [
        (
            "api_request",
            datetime(2026, 1, 1, tzinfo=UTC),
            "sdk-session",
            "sdk-prompt-1",
            "u-1",
            "grace@example.com",
            "org-sdk",
            "data",
            "claude-opus-4-1",
            Decimal("0.4521"),
            3000,
            1500,
            120000,
            4000,
            Decimal("8123"),
            None,
            None,
            None,
            None,
            "req_sdk_1",
            "claude-code",
            "0.4521",
        ),
        (
            "tool_result",
            datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
            "sdk-session",
            "sdk-prompt-1",
            None,
            "grace@example.com",
            "org-sdk",
            "data",
            None,
            None,
            None,
            None,
            None,
            None,
            Decimal("42"),
            True,
            "Edit",
            None,
            None,
            None,
            "claude-code",
            None,
        ),
        (
            "api_error",
            datetime(2026, 1, 1, 0, 0, 0, 2000, tzinfo=UTC),
            "sdk-session",
            None,
            None,
            "grace@example.com",
            "org-sdk",
            "data",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            529,
            "busy",
            None,
            "claude-code",
            None,
        ),
    ]


def test_sdk_metric_exporter_token_usage(receiver_url: str, db_url: str, tokens: dict[str, str]) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import Counter, MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    exporter = OTLPMetricExporter(
        endpoint=f"{receiver_url}/v1/metrics",
        headers=auth(tokens[TENANT_A]),
        preferred_temporality={Counter: AggregationTemporality.DELTA},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create(
        {"service.name": "claude-code", "organization.id": "org-sdk", "user.email": "grace@example.com", "team": "data"}
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    counter = provider.get_meter("com.anthropic.claude_code").create_counter("claude_code.token.usage", unit="tokens")
    common = {"session.id": "sdk-metrics", "model": "claude-opus-4-1"}
    counter.add(3000, {**common, "type": "input"})
    counter.add(1500, {**common, "type": "output"})
    counter.add(120000, {**common, "type": "cacheRead"})
    counter.add(500, {**common, "type": "input"})
    assert provider.force_flush()
    provider.shutdown()

    rows = query(
        db_url,
        f"select metric_name, type, value, model, session_id, user_email, organization_id, team, "
        f"start_at is not null and start_at <= point_at "
        f"from raw_claude_code__{TENANT_A}.otel_metric_points where session_id = 'sdk-metrics' order by type",
    )
    assert rows == [
        (
            "claude_code.token.usage",
            "cacheRead",
            120000.0,
            "claude-opus-4-1",
            "sdk-metrics",
            "grace@example.com",
            "org-sdk",
            "data",
            True,
        ),
        (
            "claude_code.token.usage",
            "input",
            3500.0,
            "claude-opus-4-1",
            "sdk-metrics",
            "grace@example.com",
            "org-sdk",
            "data",
            True,
        ),
        (
            "claude_code.token.usage",
            "output",
            1500.0,
            "claude-opus-4-1",
            "sdk-metrics",
            "grace@example.com",
            "org-sdk",
            "data",
            True,
        ),
    ]


def test_json_path_and_idempotent_retries(receiver_url: str, db_url: str, tokens: dict[str, str]) -> None:
    request = logs_request([api_request_attrs(n, **{"session.id": "json-session"}) for n in range(3)])
    body = json_format.MessageToJson(request)
    for _ in range(2):  # an exporter retry of the same batch
        response = requests.post(
            f"{receiver_url}/v1/logs",
            data=body,
            headers={"Content-Type": "application/json", **auth(tokens[TENANT_A])},
            timeout=10,
        )
        assert response.status_code == 200 and response.json() == {}
        assert response.headers["Content-Type"] == "application/json"
    assert count(db_url, TENANT_A, where="session_id = 'json-session'") == 3
    rows = query(
        db_url,
        f"select prompt_id, cost_usd, input_tokens, output_tokens, team, user_email "
        f"from raw_claude_code__{TENANT_A}.otel_events where session_id = 'json-session' order by prompt_id",
    )
    assert rows == [
        (f"prompt-{n}", Decimal("0.0123"), 1200, 345, RESOURCE["team"], RESOURCE["user.email"]) for n in range(3)
    ]
    # the same batch as protobuf lands on the same rows too
    pb = requests.post(
        f"{receiver_url}/v1/logs",
        data=request.SerializeToString(),
        headers={**PB, **auth(tokens[TENANT_A])},
        timeout=10,
    )
    assert pb.status_code == 200
    assert count(db_url, TENANT_A, where="session_id = 'json-session'") == 3
    metrics = metrics_request([("input", 10), ("output", 20)]).SerializeToString()
    for _ in range(2):
        assert requests.post(
            f"{receiver_url}/v1/metrics", data=metrics, headers={**PB, **auth(tokens[TENANT_A])}, timeout=10
        ).ok
    assert count(db_url, TENANT_A, "otel_metric_points", "session_id = 'sess-1'") == 2


def test_auth_failures_write_nothing(receiver_url: str, db_url: str, tokens: dict[str, str]) -> None:
    body = logs_request([api_request_attrs(0, **{"session.id": "unauthorised"})]).SerializeToString()
    missing = requests.post(f"{receiver_url}/v1/logs", data=body, headers=PB, timeout=10)
    wrong = requests.post(f"{receiver_url}/v1/logs", data=body, headers={**PB, **auth("pulse_ingest_nope")}, timeout=10)
    assert missing.status_code == wrong.status_code == 401
    assert "Missing ingest token" in status_pb2.Status.FromString(missing.content).message
    assert "not valid" in status_pb2.Status.FromString(wrong.content).message
    for tenant in (TENANT_A, TENANT_B):
        assert count(db_url, tenant, where="session_id = 'unauthorised'") == 0


def test_revoked_token_stops_working_within_the_ttl(receiver_url: str, db_url: str, settings: Any) -> None:
    from sqlalchemy import text

    from pulse.db import admin_engine
    from pulse.tokens import create_token, revoke_token

    with admin_engine(settings).begin() as conn:
        token = create_token(conn, TENANT_A, "ingest", name="to revoke", actor="test:otlp")
        token_id = conn.execute(text("select max(token_id) from control.api_tokens")).scalar_one()
    body = logs_request([api_request_attrs(0, **{"session.id": "revoked"})]).SerializeToString()
    headers = {**PB, **auth(token)}
    assert requests.post(f"{receiver_url}/v1/logs", data=body, headers=headers, timeout=10).status_code == 200
    with admin_engine(settings).begin() as conn:
        revoke_token(conn, token_id, actor="test:otlp")
    time.sleep(0.6)  # the receiver's token TTL is 0.5 s in this module
    assert requests.post(f"{receiver_url}/v1/logs", data=body, headers=headers, timeout=10).status_code == 401


def test_malformed_and_partially_invalid_bodies(receiver_url: str, db_url: str, tokens: dict[str, str]) -> None:
    headers = {"Content-Type": "application/json", **auth(tokens[TENANT_A])}
    bad = requests.post(f"{receiver_url}/v1/logs", data=b'{"resourceLogs": [', headers=headers, timeout=10)
    assert bad.status_code == 400 and bad.json()["message"].startswith("Body is not valid JSON")
    wrong_type = requests.post(
        f"{receiver_url}/v1/logs", data=b"x", headers={"Content-Type": "text/plain", **auth(tokens[TENANT_A])}
    )
    assert wrong_type.status_code == 415
    records = [
        api_request_attrs(0, **{"session.id": "partial"}),
        api_request_attrs(1, **{"session.id": "partial"}, input_tokens="many"),
    ]
    response = requests.post(
        f"{receiver_url}/v1/logs",
        data=logs_request(records).SerializeToString(),
        headers={**PB, **auth(tokens[TENANT_A])},
        timeout=10,
    )
    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert response.status_code == 200 and partial.rejected_log_records == 1
    assert "'input_tokens' must be a number, got 'many'" in partial.error_message
    assert query(
        db_url, f"select prompt_id from raw_claude_code__{TENANT_A}.otel_events where session_id = 'partial'"
    ) == [("prompt-0",)]
    all_bad = logs_request([api_request_attrs(0, **{"session.id": "all-bad"}, cost_usd="free")])
    response = requests.post(
        f"{receiver_url}/v1/logs", data=all_bad.SerializeToString(), headers={**PB, **auth(tokens[TENANT_A])}
    )
    assert response.status_code == 400
    assert "'cost_usd' must be a number" in status_pb2.Status.FromString(response.content).message
    assert count(db_url, TENANT_A, where="session_id = 'all-bad'") == 0


def test_oversized_bodies_are_413(receiver_url: str, tokens: dict[str, str]) -> None:
    headers = {**PB, **auth(tokens[TENANT_A])}
    big = requests.post(f"{receiver_url}/v1/logs", data=b"\0" * (300 * 1024), headers=headers, timeout=10)
    assert big.status_code == 413
    bomb = gzip.compress(b"\0" * (1024 * 1024))  # small on the wire, 1 MiB inflated
    assert len(bomb) < 256 * 1024
    inflated = requests.post(
        f"{receiver_url}/v1/logs", data=bomb, headers={**headers, "Content-Encoding": "gzip"}, timeout=10
    )
    assert inflated.status_code == 413
    assert "after decompression" in status_pb2.Status.FromString(inflated.content).message


def test_token_cannot_write_into_another_tenant(receiver_url: str, db_url: str, tokens: dict[str, str]) -> None:
    request = logs_request(
        [api_request_attrs(0, **{"session.id": "cross-tenant"})], resource={**RESOURCE, "pulse.tenant": TENANT_B}
    )
    response = requests.post(
        f"{receiver_url}/v1/logs",
        data=request.SerializeToString(),
        headers={**PB, **auth(tokens[TENANT_A])},
        timeout=10,
    )
    assert response.status_code == 403
    assert "names another tenant" in status_pb2.Status.FromString(response.content).message
    assert count(db_url, TENANT_A, where="session_id = 'cross-tenant'") == 0
    assert count(db_url, TENANT_B, where="session_id = 'cross-tenant'") == 0
    # with its own token, tenant B's resource attribute is accepted
    ok = requests.post(
        f"{receiver_url}/v1/logs",
        data=request.SerializeToString(),
        headers={**PB, **auth(tokens[TENANT_B])},
        timeout=10,
    )
    assert ok.status_code == 200
    assert count(db_url, TENANT_B, where="session_id = 'cross-tenant'") == 1


def test_overload_is_429_with_retry_after(db_url: str, tokens: dict[str, str]) -> None:
    receiver, server, url = serve(db_url, ReceiverConfig(max_in_flight=1, retry_after_seconds=7))
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(10)

    receiver.before_store = hold
    headers = {**PB, **auth(tokens[TENANT_A])}
    body = logs_request([api_request_attrs(0, **{"session.id": "overload"})]).SerializeToString()
    statuses: list[int] = []
    first = threading.Thread(
        target=lambda: statuses.append(
            requests.post(f"{url}/v1/logs", data=body, headers=headers, timeout=20).status_code
        )
    )
    try:
        first.start()
        assert entered.wait(10)
        busy = requests.post(f"{url}/v1/logs", data=body, headers=headers, timeout=10)
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "7"
        assert "more than 1 requests in flight" in status_pb2.Status.FromString(busy.content).message
    finally:
        release.set()
        first.join(20)
        server.shutdown()
        server.server_close()
        receiver.store.pool.close()
    assert statuses == [200]
    assert count(db_url, TENANT_A, where="session_id = 'overload'") == 1


def test_health_and_traces(receiver_url: str, tokens: dict[str, str]) -> None:
    assert requests.get(f"{receiver_url}/health", timeout=10).json() == {"status": "ok"}
    traces = requests.post(
        f"{receiver_url}/v1/traces", data=b"anything", headers={**PB, **auth(tokens[TENANT_A])}, timeout=10
    )
    assert (traces.status_code, traces.content) == (200, b"")


def test_cli_token_create_prints_a_working_token(settings: Any, tokens: dict[str, str]) -> None:
    from click.testing import CliRunner

    from pulse.db import admin_engine
    from pulse.telemetry.cli import ingest
    from pulse.tokens import resolve_token

    result = CliRunner().invoke(ingest, ["token", "create", "--tenant", TENANT_B, "--name", "cli"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    assert token.startswith("pulse_ingest_")
    with admin_engine(settings).connect() as conn:
        scope = resolve_token(conn, token, "ingest")
    assert scope is not None and scope.tenant_id == TENANT_B
    unknown = CliRunner().invoke(ingest, ["token", "create", "--tenant", "no_such_tenant", "--name", "x"])
    assert unknown.exit_code != 0
    assert "serve" in CliRunner().invoke(ingest, ["--help"]).output
