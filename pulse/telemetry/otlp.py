"""OTLP/HTTP payloads in, table rows out: pure functions, no I/O.

``decode_request`` turns a request body (protobuf or OTLP JSON, optionally gzip) into the
``Export*ServiceRequest`` message; ``log_rows`` and ``metric_rows`` turn a message into rows
of ``otel_events`` / ``otel_metric_points`` plus the reasons for every record they reject;
``encode_response`` and ``encode_status`` write the answer in the request's encoding.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Media types accepted for each encoding (``application/protobuf`` is a common alias).
_MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}

#: Claude Code prefixes event names with this; the tables keep the bare name.
EVENT_PREFIX = "claude_code."
#: Resource attributes that name a tenant; they must match the token's tenant.
TENANT_ATTRIBUTES = ("pulse.tenant", "tenant")
#: Where a team name may come from, in order of preference.
TEAM_ATTRIBUTES = ("team", "team.name")
#: Values JavaScript exporters write for "no value"; read as NULL, not as bad data.
_ABSENT = frozenset({"", "undefined", "null", "none"})
#: OTLP JSON writes these ``bytes`` fields as hex, not base64 as plain proto3 JSON does.
_HEX_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})
_HEX_ID = re.compile(r"^(?:[0-9a-fA-F]{16}|[0-9a-fA-F]{32})$")

# gRPC status codes used in google.rpc.Status bodies, by HTTP status.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


class Signal(Enum):
    LOGS = "logs"
    METRICS = "metrics"
    TRACES = "traces"


class OtlpError(Exception):
    """A request the receiver refuses as a whole, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class InvalidRecord(ValueError):
    """One log record or data point that cannot be stored; the rest of the request goes on."""


@dataclass
class Conversion:
    """Rows from one request, and what was rejected and why."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def reject(self, where: str, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < 20:  # keep error messages short on very bad batches
            self.reasons.append(f"{where}: {reason}")

    def error_message(self) -> str:
        parts = list(self.reasons)
        if self.rejected > len(self.reasons):
            parts.append(f"... and {self.rejected - len(self.reasons)} more")
        return "; ".join(parts + self.notes)


# -- request bodies ------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """The encoding of a request from its Content-Type; 415 when it is neither OTLP encoding."""
    bare = (content_type or "").split(";", 1)[0].strip().lower()
    if bare not in _MEDIA_TYPES:
        raise OtlpError(
            415,
            f"Unsupported Content-Type {content_type!r}: send {PROTOBUF} (http/protobuf) or {JSON} (http/json).",
        )
    return _MEDIA_TYPES[bare]


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The request body without its Content-Encoding, never more than ``max_bytes`` (413)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        data = body
    elif encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(wbits=31)
        try:
            data = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            raise OtlpError(400, f"Body is not valid gzip ({exc}); send it uncompressed or gzip-compressed.") from exc
        if len(data) <= max_bytes and not inflater.eof and not inflater.unconsumed_tail:
            raise OtlpError(400, "Body is truncated gzip: the compressed stream ends early.")
    else:
        raise OtlpError(415, f"Unsupported Content-Encoding {content_encoding!r}: use gzip or none.")
    if len(data) > max_bytes:
        raise OtlpError(413, f"Request body exceeds {max_bytes} bytes after decompression; export smaller batches.")
    return data


def _hex_ids_to_base64(value: Any) -> Any:
    """OTLP JSON ids are hex; ``json_format`` expects base64 for bytes. Convert in place.

    Senders that write plain proto3 JSON (base64 ids, e.g. ``MessageToJson``) are accepted too.
    """
    import base64

    if isinstance(value, dict):
        for key, item in value.items():
            if key in _HEX_ID_FIELDS and isinstance(item, str):
                # Hex ids are 16 or 32 characters; base64 ones (12 or 24) are left to json_format.
                if _HEX_ID.match(item):
                    value[key] = base64.b64encode(bytes.fromhex(item)).decode()
            else:
                _hex_ids_to_base64(item)
    elif isinstance(value, list):
        for item in value:
            _hex_ids_to_base64(item)
    return value


def decode_request(signal: Signal, body: bytes, encoding: str) -> Message:
    """The ``Export<Signal>ServiceRequest`` in ``body`` (already decompressed); 400 if undecodable."""
    message: Message
    if signal is Signal.LOGS:
        message = ExportLogsServiceRequest()
    elif signal is Signal.METRICS:
        message = ExportMetricsServiceRequest()
    else:
        raise OtlpError(404, f"Signal {signal.value!r} is not stored by this receiver.")
    if encoding == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RuntimeError) as exc:
            raise OtlpError(400, f"Body is not a valid protobuf {type(message).__name__}: {exc}") from exc
        return message
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OtlpError(400, f"Body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise OtlpError(400, f"Body must be a JSON object ({type(message).__name__}), not {type(document).__name__}.")
    try:
        json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, RecursionError) as exc:
        raise OtlpError(400, f"Body is not a valid OTLP JSON {type(message).__name__}: {exc}") from exc
    return message


# -- responses -----------------------------------------------------------------------------


def response_message(signal: Signal, rejected: int = 0, error_message: str = "") -> Message:
    """The success response; ``partial_success`` only when something was rejected or noted."""
    message: Message
    if signal is Signal.LOGS:
        message = ExportLogsServiceResponse()
        if rejected or error_message:
            message.partial_success.CopyFrom(
                ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=error_message)
            )
    elif signal is Signal.METRICS:
        message = ExportMetricsServiceResponse()
        if rejected or error_message:
            message.partial_success.CopyFrom(
                ExportMetricsPartialSuccess(rejected_data_points=rejected, error_message=error_message)
            )
    else:
        message = ExportTraceServiceResponse()
    return message


def encode_response(message: Message, encoding: str) -> bytes:
    if encoding == PROTOBUF:
        return message.SerializeToString()
    return json.dumps(json_format.MessageToDict(message)).encode()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_status(http_status: int, message: str, encoding: str) -> bytes:
    """A ``google.rpc.Status`` (code, message) body, as OTLP/HTTP wants for every 4xx/5xx."""
    code = _GRPC_CODES.get(http_status, 2)
    if encoding == PROTOBUF:
        text = message.encode()
        return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return json.dumps({"code": code, "message": message}).encode()


# -- attributes ----------------------------------------------------------------------------


def _clean_text(text: str) -> str:
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as plain JSON-able Python (bytes as hex, non-finite floats as text)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _clean_text(value.string_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {_clean_text(pair.key): any_value(pair.value) for pair in pairs}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return None if value.strip().lower() in ("", "undefined", "null") else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True)


def parse_decimal(value: Any, key: str) -> Decimal | None:
    """A number from an attribute that may be a number or a numeric string; InvalidRecord otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _ABSENT):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidRecord(f"attribute {key!r} must be a number, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRecord(f"attribute {key!r} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise InvalidRecord(f"attribute {key!r} must be a finite number, got {value!r}")
    return number


def parse_int(value: Any, key: str) -> int | None:
    number = parse_decimal(value, key)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise InvalidRecord(f"attribute {key!r} must be a whole number, got {value!r}")
    return int(number)


def parse_bool(value: Any, key: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    if text in _ABSENT:
        return None
    raise InvalidRecord(f"attribute {key!r} must be true or false, got {value!r}")


_ISO_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_timestamp(value: Any, key: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidRecord(f"attribute {key!r} must be an ISO 8601 timestamp, got {value!r}")
    text = _ISO_FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRecord(f"attribute {key!r} must be an ISO 8601 timestamp, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def nanos_to_datetime(nanos: int) -> datetime:
    seconds, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)


def _first(key: str, *sources: Mapping[str, Any]) -> Any:
    for source in sources:
        value = source.get(key)
        if value is not None:
            return value
    return None


def _team(*sources: Mapping[str, Any]) -> str | None:
    for source in sources:
        for key in TEAM_ATTRIBUTES:
            team = _text(source.get(key))
            if team:
                return team
    return None


def check_tenant(resource: Mapping[str, Any], tenant: str) -> None:
    """403 when a resource names another tenant than the token's (a token writes only its own)."""
    for key in TENANT_ATTRIBUTES:
        named = resource.get(key)
        if named is not None and str(named) != tenant:
            raise OtlpError(
                403,
                f"Resource attribute {key}={named!r} names another tenant than this ingest token's; "
                "use a token of that tenant, or remove the attribute.",
            )


def row_id(tenant: str, identity: Mapping[str, Any]) -> str:
    """A deterministic id: SHA-256 of the tenant and the record's canonical JSON."""
    canonical = json.dumps({"tenant": tenant, **identity}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- log records → otel_events ------------------------------------------------------------


def _event_name(attrs: Mapping[str, Any], body: Any) -> str:
    name = _text(attrs.get("event.name"))
    if not name and isinstance(body, str):
        name = _text(body)
    if not name:
        raise InvalidRecord("no event name: set the 'event.name' attribute or a string body")
    return name.removeprefix(EVENT_PREFIX)


def event_row(tenant: str, resource: Mapping[str, Any], scope: Mapping[str, Any], record: Any) -> dict[str, Any]:
    """One ``otel_events`` row from one LogRecord; InvalidRecord when it cannot be stored."""
    attrs = attributes(record.attributes)
    body = any_value(record.body) if record.HasField("body") else None
    name = _event_name(attrs, body)
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    if nanos:
        event_at = nanos_to_datetime(nanos)
    elif attrs.get("event.timestamp") is not None:
        event_at = parse_timestamp(attrs["event.timestamp"], "event.timestamp")
    else:
        raise InvalidRecord("no time: set time_unix_nano, observed_time_unix_nano or 'event.timestamp'")
    identity = {
        "resource": resource,
        "scope": scope,
        "time_unix_nano": nanos,
        "event": name,
        "attributes": attrs,
        "body": body,
    }
    return {
        "event_id": row_id(tenant, identity),
        "event_name": name,
        "event_at": event_at,
        "session_id": _text(_first("session.id", attrs, resource)),
        "prompt_id": _text(_first("prompt.id", attrs, resource)),
        "user_id": _text(_first("user.id", attrs, resource)),
        "user_email": _text(_first("user.email", attrs, resource)),
        "organization_id": _text(_first("organization.id", attrs, resource)),
        "team": _team(attrs, resource),
        "model": _text(attrs.get("model")),
        "cost_usd": parse_decimal(attrs.get("cost_usd"), "cost_usd"),
        "input_tokens": parse_int(attrs.get("input_tokens"), "input_tokens"),
        "output_tokens": parse_int(attrs.get("output_tokens"), "output_tokens"),
        "cache_read_tokens": parse_int(attrs.get("cache_read_tokens"), "cache_read_tokens"),
        "cache_creation_tokens": parse_int(attrs.get("cache_creation_tokens"), "cache_creation_tokens"),
        "duration_ms": parse_decimal(attrs.get("duration_ms"), "duration_ms"),
        "success": parse_bool(attrs.get("success"), "success"),
        "tool_name": _text(attrs.get("tool_name")),
        "status_code": parse_int(attrs.get("status_code"), "status_code"),
        "error": _text(attrs.get("error")),
        "request_id": _text(_first("request_id", attrs)),
        "attributes": attrs,
        "resource": resource,
    }


def _scope(scope: Any) -> dict[str, Any]:
    return {"name": scope.name, "version": scope.version, "attributes": attributes(scope.attributes)}


def log_rows(tenant: str, request: ExportLogsServiceRequest) -> Conversion:
    """Rows of ``otel_events``; 403 if any resource names another tenant."""
    result = Conversion()
    for r, resource_logs in enumerate(request.resource_logs):
        resource = attributes(resource_logs.resource.attributes)
        check_tenant(resource, tenant)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            scope = _scope(scope_logs.scope)
            for i, record in enumerate(scope_logs.log_records):
                try:
                    result.rows.append(event_row(tenant, resource, scope, record))
                except InvalidRecord as exc:
                    result.reject(f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]", str(exc))
    return result


# -- metrics → otel_metric_points ---------------------------------------------------------


def point_row(
    tenant: str, resource: Mapping[str, Any], scope: Mapping[str, Any], metric_name: str, point: Any
) -> dict[str, Any]:
    """One ``otel_metric_points`` row from a NumberDataPoint; InvalidRecord when it cannot be stored."""
    kind = point.WhichOneof("value")
    if kind == "as_double":
        value = point.as_double
        if not math.isfinite(value):
            raise InvalidRecord(f"value {value} is not a finite number")
    elif kind == "as_int":
        value = float(point.as_int)
    else:
        raise InvalidRecord("data point has no value (as_double or as_int)")
    if not point.time_unix_nano:
        raise InvalidRecord("data point has no time_unix_nano")
    attrs = attributes(point.attributes)
    identity = {
        "resource": resource,
        "scope": scope,
        "metric": metric_name,
        "start_time_unix_nano": point.start_time_unix_nano,
        "time_unix_nano": point.time_unix_nano,
        "attributes": attrs,
    }
    return {
        "point_id": row_id(tenant, identity),
        "metric_name": metric_name,
        "point_at": nanos_to_datetime(point.time_unix_nano),
        "start_at": nanos_to_datetime(point.start_time_unix_nano) if point.start_time_unix_nano else None,
        "value": value,
        "session_id": _text(_first("session.id", attrs, resource)),
        "user_email": _text(_first("user.email", attrs, resource)),
        "organization_id": _text(_first("organization.id", attrs, resource)),
        "team": _team(attrs, resource),
        "model": _text(attrs.get("model")),
        "type": _text(attrs.get("type")),
        "attributes": attrs,
        "resource": resource,
    }


def metric_rows(tenant: str, request: ExportMetricsServiceRequest) -> Conversion:
    """Rows of ``otel_metric_points`` (sum and gauge points); histograms and summaries are rejected."""
    result = Conversion()
    skipped: dict[str, int] = {}
    for r, resource_metrics in enumerate(request.resource_metrics):
        resource = attributes(resource_metrics.resource.attributes)
        check_tenant(resource, tenant)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            scope = _scope(scope_metrics.scope)
            for m, metric in enumerate(scope_metrics.metrics):
                kind = metric.WhichOneof("data")
                if kind not in ("sum", "gauge"):
                    count = len(getattr(metric, kind).data_points) if kind else 0
                    result.rejected += count
                    skipped[kind or "empty"] = skipped.get(kind or "empty", 0) + count
                    continue
                where = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]"
                if not metric.name:
                    for _ in getattr(metric, kind).data_points:
                        result.reject(where, "metric has no name")
                    continue
                for p, point in enumerate(getattr(metric, kind).data_points):
                    try:
                        result.rows.append(point_row(tenant, resource, scope, metric.name, point))
                    except InvalidRecord as exc:
                        result.reject(f"{where}.dataPoints[{p}]", str(exc))
    for kind, count in sorted(skipped.items()):
        result.notes.append(f"{count} {kind} data point(s) not stored: only sum and gauge metrics are kept")
    return result
