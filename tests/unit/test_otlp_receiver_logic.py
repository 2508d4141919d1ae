"""Receiver.handle and token auth without a database: a fake store and a fake resolver."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from pulse.telemetry.auth import TokenCache, token_from_headers
from pulse.telemetry.server import Receiver, ReceiverConfig
from pulse.telemetry.store import PoolExhausted
from tests.unit.test_otlp_convert import api_request_attrs, logs_request, otlp_json

TOKENS = {"tok-acme": "acme"}


class FakeStore:
    def __init__(self) -> None:
        self.events: list[tuple[str, list[dict[str, Any]]]] = []
        self.fail_with: Exception | None = None

    def write_events(self, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
        if self.fail_with:
            raise self.fail_with
        self.events.append((tenant, list(rows)))

    def write_points(self, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
        raise AssertionError("no metrics in these tests")


def make(config: ReceiverConfig | None = None) -> tuple[Receiver, FakeStore]:
    store = FakeStore()
    return Receiver(config or ReceiverConfig(), store, TOKENS.get), store  # type: ignore[arg-type]


def headers(content_type: str = "application/x-protobuf", token: str | None = "tok-acme") -> dict[str, str]:
    result = {"content-type": content_type}
    if token:
        result["authorization"] = f"Bearer {token}"
    return result


def test_token_from_headers() -> None:
    assert token_from_headers({"authorization": "Bearer abc"}) == "abc"
    assert token_from_headers({"authorization": "bearer  abc "}) == "abc"
    assert token_from_headers({"x-pulse-token": "xyz"}) == "xyz"
    assert token_from_headers({"authorization": "Basic abc"}) is None
    assert token_from_headers({}) is None


def test_token_cache_hits_memory_within_ttl_and_expires() -> None:
    now = [100.0]
    calls: list[str] = []
    valid = {"t": "acme"}

    def resolver(token: str) -> str | None:
        calls.append(token)
        return valid.get(token)

    cache = TokenCache(resolver, ttl=30, clock=lambda: now[0])
    assert cache.tenant_for("t") == "acme"
    assert cache.tenant_for("t") == "acme"
    assert calls == ["t"]
    del valid["t"]  # revoked
    now[0] += 29
    assert cache.tenant_for("t") == "acme"
    now[0] += 2
    assert cache.tenant_for("t") is None
    assert calls == ["t", "t"]


def test_logs_are_stored_for_the_tokens_tenant() -> None:
    receiver, store = make()
    body = logs_request([api_request_attrs(0), api_request_attrs(1)]).SerializeToString()
    response = receiver.handle("POST", "/v1/logs", headers(), body)
    assert response.status == 200 and response.content_type == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(response.body).HasField("partial_success")
    (tenant, rows), *_ = store.events
    assert tenant == "acme" and [r["prompt_id"] for r in rows] == ["prompt-0", "prompt-1"]


def test_json_gzip_and_x_pulse_token() -> None:
    receiver, store = make()
    body = gzip.compress(otlp_json(logs_request([api_request_attrs(0)])))
    response = receiver.handle(
        "POST",
        "/v1/logs",
        {"content-type": "application/json", "content-encoding": "gzip", "x-pulse-token": "tok-acme"},
        body,
    )
    assert response.status == 200 and response.content_type == "application/json"
    assert json.loads(response.body) == {}
    assert store.events[0][1][0]["cost_usd"] is not None


def test_auth_errors_are_401_with_a_message_and_store_nothing() -> None:
    receiver, store = make()
    body = logs_request([api_request_attrs(0)]).SerializeToString()
    missing = receiver.handle("POST", "/v1/logs", headers(token=None), body)
    wrong = receiver.handle("POST", "/v1/logs", headers(token="tok-nope"), body)
    assert missing.status == wrong.status == 401
    assert b"Missing ingest token" in missing.body and b"not valid" in wrong.body
    assert b"tok-nope" not in wrong.body
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert store.events == []


def test_bad_requests() -> None:
    receiver, store = make()
    good = logs_request([api_request_attrs(0)]).SerializeToString()
    assert receiver.handle("POST", "/v1/logs", headers("text/plain"), good).status == 415
    assert receiver.handle("POST", "/v1/nope", headers(), good).status == 404
    assert receiver.handle("GET", "/v1/logs", headers(), good).status == 405
    bad = receiver.handle("POST", "/v1/logs", headers("application/json"), b"{oops")
    assert bad.status == 400 and json.loads(bad.body)["message"].startswith("Body is not valid JSON")
    all_invalid = logs_request([api_request_attrs(0, cost_usd="abc")]).SerializeToString()
    response = receiver.handle("POST", "/v1/logs", headers(), all_invalid)
    assert response.status == 400 and b"'cost_usd' must be a number" in response.body
    assert store.events == []
    assert receiver.handle("GET", "/health", {}, b"").status == 200
    traces = receiver.handle("POST", "/v1/traces", headers(), b"ignored")
    assert (traces.status, traces.body) == (200, b"")


def test_partial_success_keeps_good_records() -> None:
    receiver, store = make()
    body = logs_request([api_request_attrs(0), api_request_attrs(1, output_tokens="lots")]).SerializeToString()
    response = receiver.handle("POST", "/v1/logs", headers(), body)
    partial = ExportLogsServiceResponse.FromString(response.body).partial_success
    assert response.status == 200 and partial.rejected_log_records == 1
    assert "'output_tokens' must be a number, got 'lots'" in partial.error_message
    assert [r["prompt_id"] for r in store.events[0][1]] == ["prompt-0"]


def test_overload_answers_429_with_retry_after() -> None:
    entered, release = threading.Event(), threading.Event()
    receiver, store = make(ReceiverConfig(max_in_flight=1, retry_after_seconds=3))

    def hold() -> None:
        entered.set()
        release.wait(5)

    receiver.before_store = hold
    body = logs_request([api_request_attrs(0)]).SerializeToString()
    results: list[int] = []
    worker = threading.Thread(
        target=lambda: results.append(receiver.handle("POST", "/v1/logs", headers(), body).status)
    )
    worker.start()
    assert entered.wait(5)
    busy = receiver.handle("POST", "/v1/logs", headers(), body)
    release.set()
    worker.join(5)
    assert (busy.status, busy.headers["Retry-After"]) == (429, "3")
    assert results == [200] and len(store.events) == 1
    store.fail_with = PoolExhausted("all 8 database connections stayed busy")
    receiver.before_store = None
    exhausted = receiver.handle("POST", "/v1/logs", headers(), body)
    assert exhausted.status == 429 and exhausted.headers["Retry-After"] == "3"
