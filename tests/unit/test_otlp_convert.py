"""OTLP decoding and record → row conversion (pure, no database)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from pulse.telemetry import otlp
from pulse.telemetry.otlp import JSON, PROTOBUF, OtlpError, Signal

T0 = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z

RESOURCE = {
    "service.name": "claude-code",
    "organization.id": "org-123",
    "user.email": "ada@example.com",
    "team": "platform",
}


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def api_request_attrs(n: int = 0, **overrides: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "event.name": "api_request",
        "event.timestamp": "2026-01-01T00:00:00.123Z",
        "session.id": "sess-1",
        "prompt.id": f"prompt-{n}",
        "user.id": "user-abc",
        "model": "claude-sonnet-4-5",
        "cost_usd": "0.0123",
        "duration_ms": "1534",
        "input_tokens": "1200",
        "output_tokens": 345,
        "cache_read_tokens": "5000",
        "cache_creation_tokens": "0",
        "request_id": f"req_{n}",
    }
    attrs.update(overrides)
    return attrs


def logs_request(
    records: list[dict[str, Any]], resource: dict[str, Any] | None = None, time_unix_nano: int = T0
) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(kv(k, v) for k, v in (resource or RESOURCE).items())
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "com.anthropic.claude_code.events"
    scope_logs.scope.version = "2.0.0"
    for n, attrs in enumerate(records):
        record = LogRecord(time_unix_nano=time_unix_nano + n, observed_time_unix_nano=time_unix_nano + n)
        record.body.string_value = f"claude_code.{attrs.get('event.name', 'unknown')}"
        record.attributes.extend(kv(k, v) for k, v in attrs.items())
        record.trace_id = bytes(range(16))
        scope_logs.log_records.append(record)
    return request


def metrics_request(points: list[tuple[str, float | int]], resource: dict[str, Any] | None = None) -> Any:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(kv(k, v) for k, v in (resource or RESOURCE).items())
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = "com.anthropic.claude_code"
    metric = scope_metrics.metrics.add()
    metric.name = "claude_code.token.usage"
    metric.unit = "tokens"
    metric.sum.aggregation_temporality = 1
    metric.sum.is_monotonic = True
    for token_type, value in points:
        point = metric.sum.data_points.add()
        point.start_time_unix_nano = T0 - 60_000_000_000
        point.time_unix_nano = T0
        if isinstance(value, int):
            point.as_int = value
        else:
            point.as_double = value
        point.attributes.extend([kv("type", token_type), kv("model", "claude-sonnet-4-5"), kv("session.id", "sess-1")])
    return request


def otlp_json(message: Any) -> bytes:
    """OTLP JSON as an exporter writes it: camelCase, int64 as strings, ids as hex."""
    document = json_format.MessageToDict(message)

    def hexify(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("traceId", "spanId") and isinstance(item, str):
                    import base64

                    value[key] = base64.b64decode(item).hex()
                else:
                    hexify(item)
        elif isinstance(value, list):
            for item in value:
                hexify(item)

    hexify(document)
    return json.dumps(document).encode()


def test_protobuf_and_json_of_the_same_request_give_the_same_rows() -> None:
    request = logs_request([api_request_attrs(0), api_request_attrs(1, **{"event.name": "tool_result"})])
    body_json = otlp_json(request)
    assert b'"traceId": "000102030405060708090a0b0c0d0e0f"' in body_json
    assert b'"timeUnixNano": "1767225600123456789"' in body_json
    from_pb = otlp.log_rows("acme", otlp.decode_request(Signal.LOGS, request.SerializeToString(), PROTOBUF))
    from_json = otlp.log_rows("acme", otlp.decode_request(Signal.LOGS, body_json, JSON))
    assert from_pb.rows == from_json.rows
    assert len(from_pb.rows) == 2 and from_pb.rejected == 0


def test_event_row_values_parse_claude_code_strings() -> None:
    result = otlp.log_rows("acme", logs_request([api_request_attrs(7)]))
    (row,) = result.rows
    assert row["event_name"] == "api_request"
    assert row["event_at"] == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert row["cost_usd"] == Decimal("0.0123")
    assert row["input_tokens"] == 1200 and row["output_tokens"] == 345
    assert row["cache_read_tokens"] == 5000 and row["cache_creation_tokens"] == 0
    assert row["duration_ms"] == Decimal("1534")
    assert (row["session_id"], row["prompt_id"], row["user_id"]) == ("sess-1", "prompt-7", "user-abc")
    assert (row["user_email"], row["organization_id"], row["team"]) == ("ada@example.com", "org-123", "platform")
    assert row["model"] == "claude-sonnet-4-5" and row["request_id"] == "req_7"
    assert row["success"] is None and row["status_code"] is None and row["tool_name"] is None
    assert row["resource"] == RESOURCE
    assert row["attributes"]["output_tokens"] == 345


def test_tool_result_and_api_error_fields() -> None:
    records = [
        {"event.name": "tool_result", "tool_name": "Bash", "success": "false", "duration_ms": "12.5", "error": "x"},
        {"event.name": "api_error", "status_code": "529", "error": "Overloaded", "model": "m"},
        {"event.name": "api_error", "status_code": "undefined", "error": "Connection error"},
    ]
    rows = otlp.log_rows("acme", logs_request(records)).rows
    assert (rows[0]["tool_name"], rows[0]["success"], rows[0]["duration_ms"]) == ("Bash", False, Decimal("12.5"))
    assert (rows[1]["status_code"], rows[1]["error"]) == (529, "Overloaded")
    assert rows[2]["status_code"] is None


def test_event_name_falls_back_to_body_and_time_to_event_timestamp() -> None:
    request = logs_request([{"model": "m", "event.timestamp": "2026-02-03T04:05:06.789Z"}], time_unix_nano=0)
    request.resource_logs[0].scope_logs[0].log_records[0].body.string_value = "claude_code.user_prompt"
    (row,) = otlp.log_rows("acme", request).rows
    assert row["event_name"] == "user_prompt"
    assert row["event_at"] == datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


def test_ids_are_deterministic_and_depend_on_tenant_and_content() -> None:
    request = logs_request([api_request_attrs(0), api_request_attrs(1)])
    first = [row["event_id"] for row in otlp.log_rows("acme", request).rows]
    again = [
        row["event_id"]
        for row in otlp.log_rows("acme", logs_request([api_request_attrs(0), api_request_attrs(1)])).rows
    ]
    other_tenant = [row["event_id"] for row in otlp.log_rows("globex", request).rows]
    assert first == again
    assert len(set(first)) == 2 and all(len(i) == 64 for i in first)
    assert set(first).isdisjoint(other_tenant)
    points = otlp.metric_rows("acme", metrics_request([("input", 10), ("output", 2.5)])).rows
    assert [p["point_id"] for p in points] == [
        p["point_id"] for p in otlp.metric_rows("acme", metrics_request([("input", 10), ("output", 2.5)])).rows
    ]
    assert points[0]["point_id"] != points[1]["point_id"]


def test_invalid_records_are_rejected_with_reasons_and_good_ones_kept() -> None:
    records = [
        api_request_attrs(0),
        api_request_attrs(1, cost_usd="twelve cents"),
        api_request_attrs(2, input_tokens="12.5"),
        api_request_attrs(3, success="maybe"),
        {"model": "no name"},
        api_request_attrs(5),
    ]
    request = logs_request(records)
    request.resource_logs[0].scope_logs[0].log_records[4].ClearField("body")
    result = otlp.log_rows("acme", request)
    assert [row["prompt_id"] for row in result.rows] == ["prompt-0", "prompt-5"]
    assert result.rejected == 4
    message = result.error_message()
    assert "logRecords[1]: attribute 'cost_usd' must be a number, got 'twelve cents'" in message
    assert "logRecords[2]: attribute 'input_tokens' must be a whole number" in message
    assert "logRecords[3]: attribute 'success' must be true or false" in message
    assert "logRecords[4]: no event name" in message


def test_metric_points_sum_gauge_and_histogram() -> None:
    request = metrics_request([("input", 1200), ("cacheRead", 5000.0)])
    gauge = request.resource_metrics[0].scope_metrics[0].metrics.add()
    gauge.name = "claude_code.active_time.total"
    point = gauge.gauge.data_points.add()
    point.time_unix_nano = T0
    point.as_double = 42.5
    histogram = request.resource_metrics[0].scope_metrics[0].metrics.add()
    histogram.name = "some.histogram"
    histogram.histogram.data_points.add(time_unix_nano=T0, count=3)
    result = otlp.metric_rows("acme", request)
    assert [(r["metric_name"], r["type"], r["value"]) for r in result.rows] == [
        ("claude_code.token.usage", "input", 1200.0),
        ("claude_code.token.usage", "cacheRead", 5000.0),
        ("claude_code.active_time.total", None, 42.5),
    ]
    first = result.rows[0]
    assert first["point_at"] == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert first["start_at"] == datetime(2025, 12, 31, 23, 59, 0, 123456, tzinfo=UTC)
    assert (first["model"], first["session_id"], first["team"]) == ("claude-sonnet-4-5", "sess-1", "platform")
    assert result.rejected == 1 and "1 histogram data point(s) not stored" in result.error_message()


def test_tenant_attribute_naming_another_tenant_is_refused() -> None:
    with pytest.raises(OtlpError) as caught:
        otlp.log_rows("acme", logs_request([api_request_attrs()], resource={**RESOURCE, "pulse.tenant": "globex"}))
    assert caught.value.status == 403 and "pulse.tenant='globex'" in caught.value.message
    with pytest.raises(OtlpError):
        otlp.metric_rows("acme", metrics_request([("input", 1)], resource={**RESOURCE, "tenant": "globex"}))
    same = otlp.log_rows("acme", logs_request([api_request_attrs()], resource={**RESOURCE, "tenant": "acme"}))
    assert len(same.rows) == 1


def test_decode_errors_and_limits() -> None:
    with pytest.raises(OtlpError) as caught:
        otlp.decode_request(Signal.LOGS, b"\xff\xff\xff not protobuf", PROTOBUF)
    assert caught.value.status == 400 and "not a valid protobuf ExportLogsServiceRequest" in caught.value.message
    with pytest.raises(OtlpError) as caught:
        otlp.decode_request(Signal.LOGS, b"{not json", JSON)
    assert caught.value.status == 400 and "not valid JSON" in caught.value.message
    with pytest.raises(OtlpError) as caught:
        otlp.decode_request(Signal.LOGS, b'{"resourceLogs": 5}', JSON)
    assert caught.value.status == 400
    with pytest.raises(OtlpError) as caught:
        otlp.media_type("text/plain")
    assert caught.value.status == 415
    assert otlp.media_type("application/json; charset=utf-8") == JSON
    big = gzip.compress(b"\0" * 2000)
    assert otlp.decompress(big, "gzip", 2000) == b"\0" * 2000
    with pytest.raises(OtlpError) as caught:
        otlp.decompress(big, "gzip", 1999)
    assert caught.value.status == 413
    with pytest.raises(OtlpError) as caught:
        otlp.decompress(b"not gzip", "gzip", 100)
    assert caught.value.status == 400
    with pytest.raises(OtlpError) as caught:
        otlp.decompress(b"x", "br", 100)
    assert caught.value.status == 415


def test_json_accepts_unknown_fields_and_enum_ints() -> None:
    body = json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {"attributes": [{"key": "team", "value": {"stringValue": "core"}}]},
                    "futureField": {"x": 1},
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {
                                    "timeUnixNano": "1767225600000000000",
                                    "severityNumber": 9,
                                    "body": {"stringValue": "claude_code.user_prompt"},
                                    "attributes": [{"key": "prompt_length", "value": {"intValue": "42"}}],
                                    "spanId": "0102030405060708",
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()
    (row,) = otlp.log_rows("acme", otlp.decode_request(Signal.LOGS, body, JSON)).rows
    assert (row["event_name"], row["team"], row["attributes"]) == ("user_prompt", "core", {"prompt_length": 42})


def test_responses_partial_success_and_status() -> None:
    message = otlp.response_message(Signal.LOGS, 2, "two bad")
    decoded = ExportLogsServiceResponse.FromString(otlp.encode_response(message, PROTOBUF))
    assert (decoded.partial_success.rejected_log_records, decoded.partial_success.error_message) == (2, "two bad")
    assert json.loads(otlp.encode_response(message, JSON)) == {
        "partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "two bad"}
    }
    assert otlp.encode_response(otlp.response_message(Signal.LOGS), PROTOBUF) == b""
    from google.rpc import status_pb2

    status = status_pb2.Status.FromString(otlp.encode_status(400, "bad data: " + "x" * 300, PROTOBUF))
    assert (status.code, status.message) == (3, "bad data: " + "x" * 300)
    assert json.loads(otlp.encode_status(429, "busy", JSON)) == {"code": 8, "message": "busy"}


def test_plain_proto3_json_with_base64_ids_is_accepted_too() -> None:
    request = logs_request([api_request_attrs(0)])
    plain = json_format.MessageToJson(request).encode()
    assert b'"traceId": "AAECAwQFBgcICQoLDA0ODw=="' in plain
    decoded = otlp.decode_request(Signal.LOGS, plain, JSON)
    assert decoded == request
    assert otlp.log_rows("acme", decoded).rows == otlp.log_rows("acme", request).rows
