"""The sandbox HTTP server: real HTTP on 127.0.0.1, GitHub's REST API for every tenant.

``Authorization: Bearer ghs_sandbox_<tenant>`` (or ``token …``) picks the tenant; each tenant
sees only its own organisation ``<tenant>-eng``. Every answer carries GitHub's rate-limit
headers. :class:`SandboxFaults` makes the next requests fail the ways GitHub fails.

Under ``/agent-platform/`` the same server speaks the agent platform's runs API
(``connectors/sandbox/agent_platform``), with ``Bearer aps_sandbox_<tenant>`` tokens, the
same faults (as the agent platform answers them: 429s and 500s) and its own rate-limit window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import signal
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectors.sandbox.agent_platform import api as agent_api
from connectors.sandbox.agent_platform.world import AdvanceResult, AgentPlatformWorld, agent_platform_world
from connectors.sandbox.github.api import ApiRequest, ApiResponse, error, handle
from connectors.sandbox.github.world import GitHubWorld, TouchResult, github_world, truncate_to_day
from connectors.sandbox.tools import ToolRequest, route
from connectors.sandbox.work.world import HISTORY_DAYS, WorkWorld, work_world
from connectors.sandbox.work.world import AdvanceResult as WorkAdvance

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
TOKEN_PATTERN = re.compile(r"^ghs_sandbox_(?P<tenant>[a-z][a-z0-9_]*)$")
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)


def token_for(tenant: str) -> str:
    """The sandbox token of ``tenant`` (``ghs_sandbox_<tenant>``)."""
    return f"ghs_sandbox_{tenant}"


GITHUB_FAULTS = (
    "primary_rate_limit_once",
    "secondary_rate_limit_once",
    "secondary_rate_limit_no_retry_after",
    "server_errors",
)
#: The counted faults the tracker and Azure DevOps simulators answer, in the order they are taken.
TOOL_FAULTS = ("expired_token", "too_many_requests", "server_errors", "slow_responses")


@dataclass
class SandboxFaults:
    """Failures the next requests get, consumed one per request in the order of the fields.

    Change the fields at any time (``server.faults.server_errors = 2``); :meth:`reset` clears
    them all. ``path_contains`` limits faults to requests whose path contains it (e.g. ``/pulls``).
    """

    primary_rate_limit_once: int = 0
    """Requests answered 403 with ``x-ratelimit-remaining: 0`` and a reset one second ahead."""
    secondary_rate_limit_once: int = 0
    """Requests answered 403 with ``retry-after: 1`` and GitHub's secondary-limit message."""
    secondary_rate_limit_no_retry_after: int = 0
    """Requests answered 403 with the secondary-limit message and no ``retry-after``."""
    server_errors: int = 0
    """Requests answered 500 ``{"message": "Server Error"}``."""
    malformed_pull_request: bool = False
    """While set, pull request lists carry one broken item (no ``number``, a ``created_at``
    that is no timestamp): :meth:`GitHubWorld.malformed_target` of the tenant."""
    malformed_run: bool = False
    """While set, agent-platform run lists carry one broken item (no user email, a
    ``started_at`` that is no timestamp): :meth:`AgentPlatformWorld.malformed_target`."""
    too_many_requests: int = 0
    """Requests answered 429 with ``Retry-After: 1`` (the trackers' and Azure DevOps' rate limit)."""
    slow_responses: int = 0
    """Requests answered normally after ``slow_seconds`` of silence."""
    slow_seconds: float = 2.0
    expired_token: int = 0
    """Requests answered 401 as the tool answers an expired or revoked token."""
    malformed_work_item: bool = False
    """While set, work-item lists carry one broken record (:meth:`WorkWorld.malformed_target`)."""
    path_contains: str | None = None

    def reset(self) -> None:
        for spec in fields(self):
            setattr(self, spec.name, spec.default)

    def take(self, path: str, kinds: tuple[str, ...] = GITHUB_FAULTS) -> str | None:
        """The fault the request for ``path`` gets (and consumes), if any, among ``kinds``
        (the counted faults the tool answering it knows how to fail with)."""
        if self.path_contains and self.path_contains not in path:
            return None
        for name in kinds:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return name
        return None


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # with the query string
    status: int
    tenant: str | None
    fault: str | None


@dataclass
class _RateWindow:
    reset: int
    used: int = 0


class SandboxServer:
    """A local GitHub API with seeded, deterministic data per tenant.

    >>> with SandboxServer(seed=42) as server:
    ...     server.url  # "http://127.0.0.1:<port>"

    ``now`` fixes the world's day (default: today); ``scale`` sizes it (pull requests per
    tenant, 1.0 gives a few hundred); ``rate_limit`` is the hourly quota per token (the
    quota is enforced: past it, requests get GitHub's primary rate-limit 403).
    ``history_days`` is how far back the planning worlds' sprints go; ``activity_history_days``,
    when given, how far back pull requests and agent runs go (default: each world's own).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 42,
        now: datetime | None = None,
        *,
        scale: float = 1.0,
        rate_limit: int = 5000,
        work_scale: float | None = None,
        history_days: int = HISTORY_DAYS,
        activity_history_days: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.now = truncate_to_day(now)
        self.scale = scale
        self.rate_limit = rate_limit
        self.work_scale = scale if work_scale is None else work_scale
        self.history_days = history_days
        self.activity_history_days = activity_history_days
        self.tool_rate_limit = 600  # requests per minute and token, as the trackers count
        self.faults = SandboxFaults()
        self.requests: list[RequestRecord] = []
        self._clock = self.now
        self._advances: list[tuple[datetime, int]] = []
        self._worlds: dict[str, GitHubWorld] = {}
        self._agent_worlds: dict[str, AgentPlatformWorld] = {}
        self._work_worlds: dict[str, WorkWorld] = {}
        self._windows: dict[str, _RateWindow] = {}
        self._lock = threading.RLock()
        self._httpd: _SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._httpd = _SandboxHTTPServer((self.host, self.port), _Handler, self)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-http", daemon=True
        )
        self._thread.start()
        log.info("sandbox API listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (KeyboardInterrupt stops it cleanly)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            log.info("sandbox API stopping")
        finally:
            self.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not started; call start() first")
        return f"http://{self.host}:{self.port}"

    # -- the worlds -------------------------------------------------------------------

    def world(self, tenant: str) -> GitHubWorld:
        """The live GitHub world of ``tenant`` (generated on first use, with all advances applied).

        Its pull requests are linked to the tenant's work items (see :meth:`work_world`).
        Read it under :meth:`locked` if requests may be running at the same time."""
        with self._lock:
            world = self._worlds.get(tenant)
            if world is None:
                world = github_world(tenant, self.seed, self.now, self.scale, **self._activity_history())
                self._worlds[tenant] = world
                self._work_worlds[tenant] = work_world(
                    world, self.seed, self.now, self.work_scale, history_days=self.history_days
                )
                for at, count in self._advances:
                    world.touch(count, at=at)
                    self._work_worlds[tenant].advance(count, at=at)
            return world

    def _activity_history(self) -> dict[str, int]:
        return {} if self.activity_history_days is None else {"history_days": self.activity_history_days}

    def work_world(self, tenant: str) -> WorkWorld:
        """The live planning world of ``tenant``: projects, sprints, work items and their history,
        which every tracker simulator serves (generated with the GitHub world, advances applied)."""
        with self._lock:
            self.world(tenant)
            return self._work_worlds[tenant]

    def advance_work_items(self, tenant: str, n: int = 3) -> WorkAdvance:
        """Move ``n`` of ``tenant``'s open work items one status ahead and create one new item;
        every change is later than anything before."""
        with self._lock:
            world = self.work_world(tenant)
            self._clock = max(self._clock, world.clock) + timedelta(hours=1)
            return world.advance(n, at=self._clock)

    def rate_window(self, key: str, limit: int, seconds: int = 60) -> tuple[int, int, int]:
        """Count one request of ``key`` in a fixed window: ``(limit, remaining, reset epoch)``;
        remaining is -1 once the window's quota was already used up (answer 429)."""
        now = int(time.time())
        with self._lock:
            window = self._windows.get(key)
            if window is None or window.reset <= now:
                window = self._windows[key] = _RateWindow(reset=now + seconds)
            if window.used >= limit:
                return limit, -1, window.reset
            window.used += 1
            return limit, limit - window.used, window.reset

    def locked(self) -> threading.RLock:
        return self._lock

    def agent_world(self, tenant: str) -> AgentPlatformWorld:
        """The live agent-platform world of ``tenant`` (generated on first use, advances applied)."""
        with self._lock:
            world = self._agent_worlds.get(tenant)
            if world is None:
                world = agent_platform_world(tenant, self.seed, self.now, self.scale, **self._activity_history())
                for at, _ in self._advances:
                    world.advance(at=at)
                self._agent_worlds[tenant] = world
            return world

    def advance_agent_runs(self, tenant: str, new_runs: int = 2) -> AdvanceResult:
        """Finish ``tenant``'s queued and running agent runs and start ``new_runs`` more; every
        change gets an ``updated_at`` later than anything before."""
        with self._lock:
            world = self.agent_world(tenant)
            self._clock = max(self._clock, world.clock) + timedelta(hours=1)
            return world.advance(at=self._clock, new_runs=new_runs)

    def touch_pull_requests(self, tenant: str, n: int = 3) -> TouchResult:
        """Update ``n`` of ``tenant``'s pull requests (reviews, merges, pushes) and open a new
        one; every change gets an ``updated_at`` later than anything before."""
        with self._lock:
            world = self.world(tenant)
            self._clock = max(self._clock, world.clock) + timedelta(hours=1)
            return world.touch(n, at=self._clock)

    def advance(self, days: float = 1, touches_per_tenant: int = 3) -> dict[str, TouchResult]:
        """Move the sandbox clock ``days`` ahead and touch ``touches_per_tenant`` pull requests
        of every tenant (those generated later get the same changes when they first appear)."""
        with self._lock:
            clocks = [w.clock for w in self._worlds.values()] + [w.clock for w in self._agent_worlds.values()]
            clocks += [w.clock for w in self._work_worlds.values()]
            self._clock = max([self._clock, *clocks]) + timedelta(days=days)
            self._advances.append((self._clock, touches_per_tenant))
            for agent_world in self._agent_worlds.values():
                agent_world.advance(at=self._clock)
            for planning in self._work_worlds.values():
                planning.advance(touches_per_tenant, at=self._clock)
            return {slug: world.touch(touches_per_tenant, at=self._clock) for slug, world in self._worlds.items()}

    # -- request bookkeeping ----------------------------------------------------------

    def requests_since(self, mark: int) -> list[RequestRecord]:
        """Requests served after ``mark`` (a previous ``len(server.requests)``)."""
        with self._lock:
            return list(self.requests[mark:])

    def _rate_headers(self, key: str, count: bool, exhausted_now: bool = False) -> tuple[dict[str, str], bool]:
        """Rate-limit headers for ``key`` (a token); True when its quota is used up."""
        now = int(time.time())
        with self._lock:
            window = self._windows.get(key)
            if window is None or window.reset <= now:
                window = self._windows[key] = _RateWindow(reset=now + 3600)
            over = window.used >= self.rate_limit
            if count and not over:
                window.used += 1
            limit, used, reset = self.rate_limit, window.used, window.reset
        if exhausted_now:
            used, reset = limit, int(time.time() + 1)
        return (
            {
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": str(max(0, limit - used)),
                "x-ratelimit-reset": str(reset),
                "x-ratelimit-used": str(used),
                "x-ratelimit-resource": "core",
            },
            over,
        )

    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], host: str, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path = parts.path
        query = parse_qsl(parts.query, keep_blank_values=True)
        routed = route(path)
        if routed is not None:
            prefix, api = routed
            tool_request = ToolRequest(
                method=method, path=path[len(prefix) :] or "/", query=query, headers=headers, body=body,
                base_url=f"http://{host}{prefix}",
            )  # fmt: skip
            response = api.handle(self, tool_request)
            out_body = response.encoded()
            out = {"content-type": "application/json; charset=utf-8", **response.headers}
            with self._lock:
                self.requests.append(RequestRecord(method, target, response.status, response.tenant, response.fault))
            return response.status, out, out_body
        if path.startswith(agent_api.PREFIX + "/"):
            return self._dispatch_agent_platform(method, target, path, query, headers)
        tenant = _tenant_from(headers.get("authorization"))
        fault: str | None = None
        extra: dict[str, str] = {}
        if path in ("/_sandbox/health", "/_sandbox/health/"):
            rate, _ = self._rate_headers("health", count=False)
            response = ApiResponse(200, {"status": "ok", "seed": self.seed, "now": self.now.isoformat()})
        elif tenant is None:
            rate = {
                "x-ratelimit-limit": "60",
                "x-ratelimit-remaining": "59",
                "x-ratelimit-reset": str(int(time.time()) + 3600),
                "x-ratelimit-used": "1",
                "x-ratelimit-resource": "core",
            }
            message = "Requires authentication" if not headers.get("authorization") else "Bad credentials"
            response = error(401, message)
        else:
            with self._lock:
                fault = self.faults.take(path)
                malformed = self.faults.malformed_pull_request
            primary = fault == "primary_rate_limit_once"
            rate, over = self._rate_headers(token_for(tenant), count=True, exhausted_now=primary)
            if fault == "primary_rate_limit_once" or over:
                fault = fault or "quota_exhausted"
                response = error(
                    403,
                    f"API rate limit exceeded for user ID {zlib.crc32(tenant.encode()) % 10**8}. If you reach out to "
                    f"GitHub Support for help, please include the request ID {uuid.uuid4().hex[:8].upper()}.",
                    RATE_LIMIT_DOCS,
                )
            elif fault in ("secondary_rate_limit_once", "secondary_rate_limit_no_retry_after"):
                response = error(
                    403,
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                    "again. If you reach out to GitHub Support for help, please include the request ID "
                    f"{uuid.uuid4().hex[:8].upper()}.",
                    SECONDARY_DOCS,
                )
                if fault == "secondary_rate_limit_once":
                    extra["retry-after"] = "1"
            elif fault == "server_errors":
                response = ApiResponse(500, {"message": "Server Error"})
            elif method not in ("GET", "HEAD"):
                response = error(404, "Not Found")
            else:
                request = ApiRequest(path=path, query=query, api=f"http://{host}", malformed_pull_request=malformed)
                with self._lock:
                    response = handle(self.world(tenant), request)
        body = json.dumps(response.body, separators=(",", ":")).encode()
        out = {
            "content-type": "application/json; charset=utf-8",
            "x-github-api-version-selected": API_VERSION,
            "x-github-media-type": "github.v3; format=json",
            "x-github-request-id": uuid.uuid4().hex[:20].upper(),
            **rate,
            **response.headers,
            **extra,
        }
        if response.status == 200:
            out["etag"] = f'W/"{hashlib.sha256(body).hexdigest()}"'
            out["cache-control"] = "private, max-age=60, s-maxage=60"
        with self._lock:
            self.requests.append(RequestRecord(method, target, response.status, tenant, fault))
        return response.status, out, body

    def _dispatch_agent_platform(
        self, method: str, target: str, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """The agent platform's API: its tokens, errors and headers; GitHub's faults as 429/500."""
        tenant = agent_api.tenant_from(headers.get("authorization"))
        fault: str | None = None
        extra: dict[str, str] = {}
        if tenant is None:
            rate, _ = self._rate_headers("agent-platform:anonymous", count=False)
            response = agent_api.error(401, "unauthorized", "missing or invalid API token")
        else:
            with self._lock:
                fault = self.faults.take(path)
                malformed = self.faults.malformed_run
            primary = fault == "primary_rate_limit_once"
            rate, over = self._rate_headers(agent_api.token_for(tenant), count=True, exhausted_now=primary)
            if primary or over or fault in ("secondary_rate_limit_once", "secondary_rate_limit_no_retry_after"):
                fault = fault or "quota_exhausted"
                response = agent_api.error(429, "rate_limited", "too many requests; slow down")
                if fault == "secondary_rate_limit_once":
                    extra["Retry-After"] = "1"
            elif fault == "server_errors":
                response = agent_api.error(500, "internal", "internal error")
            elif method not in ("GET", "HEAD"):
                response = agent_api.error(405, "method_not_allowed", f"{method} is not allowed here")
            else:
                with self._lock:
                    response = agent_api.handle(self.agent_world(tenant), path, query, malformed_run=malformed)
        body = json.dumps(response.body, separators=(",", ":")).encode()
        out = {
            "Content-Type": "application/json",
            "X-Request-Id": uuid.uuid4().hex,
            "X-RateLimit-Limit": rate["x-ratelimit-limit"],
            "X-RateLimit-Remaining": rate["x-ratelimit-remaining"],
            "X-RateLimit-Reset": rate["x-ratelimit-reset"],
            **response.headers,
            **extra,
        }
        with self._lock:
            self.requests.append(RequestRecord(method, target, response.status, tenant, fault))
        return response.status, out, body


def _tenant_from(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() not in ("bearer", "token"):
        return None
    match = TOKEN_PATTERN.match(token.strip())
    return match.group("tenant") if match else None


class _SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _SandboxHTTPServer

    def version_string(self) -> str:
        return "GitHub.com"

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        payload = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        host = headers.get("host") or f"{self.server.sandbox.host}:{self.server.sandbox.port}"
        try:
            status, out, body = self.server.sandbox._dispatch(method, self.path, headers, host, payload)
        except Exception:  # a sandbox bug must still answer, like GitHub's 500
            log.exception("sandbox failed on %s %s", method, self.path)
            status, out, body = 500, {"content-type": "application/json; charset=utf-8"}, b'{"message":"Server Error"}'
        self.send_response(status)
        for key, value in out.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


def serve(host: str, port: int, seed: int = 42) -> None:
    """Run the sandbox API in the foreground until Ctrl-C or SIGTERM (for ``pulse sandbox serve``)."""
    if threading.current_thread() is threading.main_thread():
        # Started in the background, a shell ignores SIGINT for us: take it back, and let
        # SIGTERM stop the server through the same clean path.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    server = SandboxServer(host=host, port=port, seed=seed)
    server.start()
    log.info("sandbox GitHub API on %s; use token ghs_sandbox_<tenant>, org <tenant>-eng", server.url)
    server.serve_forever()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
