"""HTTP (retries, paging), errors and parsing of the agent-platform connector.

Paging uses dlt's ``RESTClient`` with ``JSONResponseCursorPaginator`` (``next_cursor`` in the
body, ``null`` on the last page). Retries reuse the GitHub connector's transport adapter and
:class:`RetryPolicy`: ``429`` with ``Retry-After`` waits that long, ``429`` with
``X-RateLimit-Remaining: 0`` waits until ``X-RateLimit-Reset``, 500/502/503/504 and network
errors back off exponentially. Header names are compared case-insensitively.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

from connectors.agent_platform import settings
from connectors.github.helpers import (
    RETRYABLE_SERVER_ERRORS,
    GitHubRateLimitError,
    GitHubRetryAdapter,
    JsonDict,
    MalformedItem,
    RetryPolicy,
    _Fields,
    is_rate_limited,
    quarantine_row,
    safe_url,
)

log = logging.getLogger(__name__)

__all__ = [
    "AgentPlatformApiError",
    "AgentPlatformAuthError",
    "AgentPlatformClient",
    "AgentPlatformError",
    "AgentPlatformRateLimitError",
    "MalformedItem",
    "RetryPolicy",
    "item_key",
    "parse_run",
    "quarantine_row",
]

RUN_STATUSES = frozenset({"queued", "running", "succeeded", "failed", "cancelled"})


# -- errors -------------------------------------------------------------------------------


class AgentPlatformError(Exception):
    """Base of the connector's errors. Messages never contain the token."""


class AgentPlatformAuthError(AgentPlatformError):
    """The agent platform rejected the token (401) or it may not list runs (403)."""


class AgentPlatformApiError(AgentPlatformError):
    """The agent platform answered an error that retries did not fix (or could not be reached)."""

    def __init__(self, message: str, *, status: int | None, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class AgentPlatformRateLimitError(AgentPlatformApiError):
    """A rate limit would need a longer wait than allowed, or kept answering after retries."""


# -- client -------------------------------------------------------------------------------


def response_message(response: requests.Response) -> str:
    """The API's ``error.message`` (``{"error": {"code", "message"}}``), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or error)[:300]
        return str(body.get("message") or error or body)[:300]
    return str(body)[:200]


class _BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``, added when the request is prepared (never logged)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"


class AgentPlatformClient:
    """The runs API for one source: cursor paging, retries, errors that name the source."""

    def __init__(self, base_url: str, token: str, *, source_name: str, policy: RetryPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.source_name = source_name
        self.policy = policy or RetryPolicy()
        session = requests.Session()
        adapter = GitHubRetryAdapter(self.policy, context=f"agent platform source '{source_name}'")
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._rest = RESTClient(
            base_url=self.base_url,
            headers={"Accept": "application/json", "User-Agent": settings.USER_AGENT},
            auth=_BearerAuth(token),
            paginator=JSONResponseCursorPaginator(cursor_path="next_cursor", cursor_param="cursor"),
            data_selector="data",
            session=session,
        )

    def runs(self, updated_after: datetime | None, page_size: int) -> Iterator[list[Any]]:
        """Pages of runs with ``updated_at`` at or after ``updated_after``, oldest first, until
        the API answers ``next_cursor: null``."""
        params: dict[str, Any] = {"page_size": page_size}
        if updated_after is not None:
            params["updated_after"] = updated_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        pages = self._rest.paginate(settings.RUNS, params=params, hooks={"response": [self.raise_for_status]})
        with self._translated(settings.RUNS):
            yield from pages

    def run(self, run_id: str) -> Any:
        path = settings.RUN.format(run_id=run_id)
        with self._translated(path):
            response = self._rest.get(path, hooks={"response": [self.raise_for_status]})
        return response.json()

    def _translated(self, path: str) -> _Translate:
        return _Translate(self, path)

    def raise_for_status(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Response hook: turn an error answer (after the adapter's retries) into an AgentPlatformError."""
        status = response.status_code
        if status < 400:
            return
        url = safe_url(response.url)
        message = response_message(response)
        source = self.source_name
        if status in (401, 403):
            raise AgentPlatformAuthError(
                f"the agent platform token for source '{source}' was rejected ({status} {message}); "
                "create an API token that may read runs and update it with `pulse source add/update`"
            )
        if is_rate_limited(status, response.headers, message):
            raise AgentPlatformRateLimitError(
                f"agent platform source '{source}' stayed rate limited after "
                f"{self.policy.max_rate_limit_retries} waits ({status} {message}) on {url}; run the load again later",
                status=status,
                url=url,
            )
        raise AgentPlatformApiError(
            f"the agent platform answered {status} ({message}) for {url} (source '{source}')"
            + (f" after {self.policy.max_attempts} attempts" if status in RETRYABLE_SERVER_ERRORS else ""),
            status=status,
            url=url,
        )


class _Translate:
    """Turns what the transport raises (network errors, over-long rate limits) into our errors."""

    def __init__(self, client: AgentPlatformClient, path: str) -> None:
        self.client = client
        self.url = safe_url(client.base_url + path)

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        source, policy = self.client.source_name, self.client.policy
        if isinstance(exc, GitHubRateLimitError):  # the shared adapter's "wait too long" answer
            raise AgentPlatformRateLimitError(
                f"agent platform source '{source}' is rate limited for longer than the allowed "
                f"{policy.max_rate_limit_wait:.0f} s on {self.url}; run the load again later",
                status=exc.status,
                url=self.url,
            ) from exc
        if isinstance(exc, requests.RequestException):
            raise AgentPlatformApiError(
                f"the agent platform at {self.url} is unreachable for source '{source}' "
                f"({type(exc).__name__} after {policy.max_attempts} attempts); check the base URL and the network",
                status=None,
                url=self.url,
            ) from exc


# -- parsing ------------------------------------------------------------------------------


class _RunFields(_Fields):
    """The GitHub connector's typed-field reader, plus non-negative counts and amounts."""

    def count(self, *path: str) -> int | None:
        value = self.integer(*path)
        if value is not None and value < 0:
            self.problems.append(f"'{'.'.join(path)}' is negative: {value}")
            return None
        return value

    def amount(self, *path: str) -> float | None:
        ok, value = self._get(path, False)
        if not ok or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.append(f"'{'.'.join(path)}' is not a number: {value!r}"[:200])
            return None
        if value < 0:
            self.problems.append(f"'{'.'.join(path)}' is negative: {value}")
            return None
        return float(value)


def parse_run(item: Any) -> JsonDict:
    """A runs-list item as a ``runs`` row; MalformedItem names every problem."""
    f = _RunFields(item)
    row = {
        "run_id": f.text("id", required=True),
        "agent_type": f.text("agent_type"),
        "user_email": f.text("user", "email", required=True),
        "user_name": f.text("user", "name"),
        "team": f.text("team"),
        "status": f.one_of("status", allowed=RUN_STATUSES, required=True),
        "model_name": f.text("model", "name"),
        "model_version": f.text("model", "version"),
        "created_at": f.timestamp("created_at", required=True),
        "started_at": f.timestamp("started_at"),
        "ended_at": f.timestamp("ended_at"),
        "updated_at": f.timestamp("updated_at", required=True),
        "input_tokens": f.count("usage", "input_tokens"),
        "output_tokens": f.count("usage", "output_tokens"),
        "cache_read_tokens": f.count("usage", "cache_read_tokens"),
        "cache_write_tokens": f.count("usage", "cache_write_tokens"),
        "cost_usd": f.amount("cost_usd"),
        "error_category": f.text("error", "category"),
        "error_message": f.text("error", "message"),
        "payload": item,
    }
    f.check()
    return row


def item_key(item: Any) -> str:
    """A readable key for a quarantined item: its ``id`` when it has one."""
    if isinstance(item, dict) and isinstance(item.get("id"), str | int) and not isinstance(item.get("id"), bool):
        return f"run id={item['id']}"
    return "run"
