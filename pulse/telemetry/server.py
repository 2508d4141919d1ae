"""The OTLP/HTTP receiver: ``Receiver.handle`` decides, a thin stdlib HTTP layer serves it.

``POST /v1/logs`` and ``POST /v1/metrics`` store Claude Code events and metric points for
the token's tenant and answer only after the rows are committed. ``POST /v1/traces`` is
accepted (200, empty response) and its content ignored. ``GET /health`` answers 200.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from pulse.telemetry.auth import Resolver, TokenCache
from pulse.telemetry.otlp import (
    JSON,
    OtlpError,
    Signal,
    decode_request,
    decompress,
    encode_response,
    encode_status,
    log_rows,
    media_type,
    metric_rows,
    response_message,
)
from pulse.telemetry.store import ConnectionPool, PoolExhausted, TelemetryStore

log = logging.getLogger(__name__)

PATHS = {"/v1/logs": Signal.LOGS, "/v1/metrics": Signal.METRICS, "/v1/traces": Signal.TRACES}


@dataclass(frozen=True)
class ReceiverConfig:
    """Limits of the receiver (all configurable from `pulse ingest serve`)."""

    max_body_bytes: int = 4 * 1024 * 1024
    max_in_flight: int = 32
    pool_size: int = 8
    pool_timeout: float = 2.0
    retry_after_seconds: int = 2
    token_ttl: float = 30.0


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """Request handling, independent of the HTTP server: auth, limits, decode, rows, store."""

    def __init__(
        self,
        config: ReceiverConfig,
        store: TelemetryStore,
        resolver: Resolver,
        *,
        before_store: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.tokens = TokenCache(resolver, ttl=config.token_ttl)
        self._in_flight = threading.BoundedSemaphore(config.max_in_flight)
        #: Test hook: runs while a request holds its in-flight slot, just before it writes.
        self.before_store = before_store

    def _error(self, status: int, message: str, encoding: str, headers: dict[str, str] | None = None) -> Response:
        return Response(status, encode_status(status, message, encoding), encoding, headers or {})

    def _throttled(self, reason: str, encoding: str) -> Response:
        seconds = self.config.retry_after_seconds
        return self._error(
            429, f"Receiver is busy ({reason}); retry after {seconds} s.", encoding, {"Retry-After": str(seconds)}
        )

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request. ``headers`` have lower-case names; ``body`` is as received."""
        route = path.split("?", 1)[0].rstrip("/") or "/"
        if route == "/health":
            return Response(200, b'{"status": "ok"}', JSON)
        encoding = JSON
        try:
            signal = PATHS.get(route)
            if signal is None:
                raise OtlpError(404, f"No endpoint {route!r}: use /v1/logs, /v1/metrics or /v1/traces.")
            if method != "POST":
                raise OtlpError(405, f"Use POST for {route}.")
            try:
                encoding = media_type(headers.get("content-type"))
            except OtlpError:
                self.tokens.authenticate(headers)  # an unauthenticated caller learns nothing more
                raise
            tenant = self.tokens.authenticate(headers)
            if signal is Signal.TRACES:
                return Response(200, encode_response(response_message(signal), encoding), encoding)
            if not self._in_flight.acquire(blocking=False):
                return self._throttled(f"more than {self.config.max_in_flight} requests in flight", encoding)
            try:
                return self._export(signal, tenant, encoding, headers, body)
            finally:
                self._in_flight.release()
        except OtlpError as exc:
            extra = {"WWW-Authenticate": 'Bearer realm="pulse-ingest"'} if exc.status == 401 else {}
            return self._error(exc.status, exc.message, encoding, extra)

    def _export(self, signal: Signal, tenant: str, encoding: str, headers: Mapping[str, str], body: bytes) -> Response:
        started = time.perf_counter()
        data = decompress(body, headers.get("content-encoding"), self.config.max_body_bytes)
        request: Any = decode_request(signal, data, encoding)
        result = log_rows(tenant, request) if signal is Signal.LOGS else metric_rows(tenant, request)
        if result.rejected and not result.rows:
            raise OtlpError(400, f"No record could be stored: {result.error_message()}")
        if self.before_store is not None:
            self.before_store()
        try:
            if signal is Signal.LOGS:
                self.store.write_events(tenant, result.rows)
            else:
                self.store.write_points(tenant, result.rows)
        except PoolExhausted as exc:
            return self._throttled(str(exc), encoding)
        except psycopg.OperationalError as exc:
            log.error("tenant %s: database unavailable while storing %s: %s", tenant, signal.value, exc)
            seconds = str(self.config.retry_after_seconds)
            return self._error(503, "Database unavailable; retry later.", encoding, {"Retry-After": seconds})
        log.info(
            "tenant %s: stored %d %s row(s), rejected %d, in %.1f ms",
            tenant,
            len(result.rows),
            signal.value,
            result.rejected,
            (time.perf_counter() - started) * 1000,
        )
        message = response_message(signal, result.rejected, result.error_message() if result.rejected else "")
        return Response(200, encode_response(message, encoding), encoding)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pulse-ingest"
    server: ReceiverServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes | None:
        """The raw body, or None when it is over the limit (the connection is then closed)."""
        limit = self.server.receiver.config.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(1024)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                size += length
                if size > limit:
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response, close: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(response.body)

    def _dispatch(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            body = self._read_body()
        except ValueError:
            self._send(Response(400, encode_status(400, "Malformed request framing.", JSON), JSON), close=True)
            return
        receiver = self.server.receiver
        if body is None:
            limit = receiver.config.max_body_bytes
            message = f"Request body exceeds {limit} bytes; export smaller batches."
            self._send(Response(413, encode_status(413, message, JSON), JSON), close=True)
            return
        try:
            response = receiver.handle(self.command, self.path, headers, body)
        except Exception:
            log.exception("unexpected error handling %s %s", self.command, self.path.split("?", 1)[0])
            response = Response(500, encode_status(500, "Internal error; the request was not stored.", JSON), JSON)
        self._send(response)

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


def build_receiver(database_url: str, config: ReceiverConfig | None = None) -> Receiver:
    """A receiver on a PostgreSQL database (its admin URL), with the control plane's tokens."""
    from pulse.telemetry.auth import database_resolver

    config = config or ReceiverConfig()
    pool = ConnectionPool(database_url, size=config.pool_size, timeout=config.pool_timeout)
    return Receiver(config, TelemetryStore(pool), database_resolver(database_url))


def start_server(receiver: Receiver, host: str = "127.0.0.1", port: int = 4318) -> ReceiverServer:
    """Serve in a background thread; stop with ``server.shutdown(); server.server_close()``."""
    server = ReceiverServer((host, port), receiver)
    threading.Thread(target=server.serve_forever, name="pulse-ingest", daemon=True).start()
    return server
