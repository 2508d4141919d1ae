"""HTTP (retries, rate limits, paging), errors and parsing of the GitHub connector.

Paging uses dlt's ``RESTClient`` with ``HeaderLinkPaginator`` (GitHub's ``Link`` header).
What dlt's client cannot express is written here: GitHub's two rate limits (primary:
``x-ratelimit-remaining: 0`` until ``x-ratelimit-reset``; secondary: ``retry-after`` or a
message and at least a minute's wait), backoff on 5xx, and errors that say what to do.
Retries live in a ``requests`` transport adapter, so they also apply in the middle of a
paginated walk. Header names are compared case-insensitively throughout.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator
from requests.adapters import HTTPAdapter

from connectors.github import settings

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

# -- errors -------------------------------------------------------------------------------


class GitHubError(Exception):
    """Base of the connector's errors. Messages never contain the token."""


class GitHubAuthError(GitHubError):
    """GitHub rejected the token (401), or the token may not read what was asked (403)."""


class GitHubApiError(GitHubError):
    """GitHub answered an error that retries did not fix (or could not be reached)."""

    def __init__(self, message: str, *, status: int | None, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class GitHubRateLimitError(GitHubApiError):
    """A rate limit would need a longer wait than allowed, or kept answering after retries."""


class MalformedItem(ValueError):
    """An API item lacks a required field or has one of the wrong type; ``str()`` says which."""


# -- retries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry; the defaults come from ``settings.py``.

    Tests shrink the waits (``secondary_limit_wait``, ``server_error_backoff``); real loads
    keep GitHub's advice: wait at least a minute on a secondary limit without ``retry-after``.
    """

    max_attempts: int = settings.MAX_ATTEMPTS
    server_error_backoff: float = settings.SERVER_ERROR_BACKOFF
    max_backoff: float = settings.MAX_BACKOFF
    secondary_limit_wait: float = settings.SECONDARY_LIMIT_WAIT
    max_rate_limit_retries: int = settings.MAX_RATE_LIMIT_RETRIES
    max_rate_limit_wait: float = settings.MAX_RATE_LIMIT_WAIT
    reset_margin: float = settings.RESET_MARGIN
    connect_timeout: float = settings.CONNECT_TIMEOUT
    read_timeout: float = settings.READ_TIMEOUT


@dataclass(frozen=True)
class RetryDecision:
    kind: str  # "primary_rate_limit" | "secondary_rate_limit" | "server_error"
    wait: float

    @property
    def is_rate_limit(self) -> bool:
        return self.kind != "server_error"


RETRYABLE_SERVER_ERRORS = frozenset({500, 502, 503, 504})


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def is_rate_limited(status: int, headers: Mapping[str, str], message: str) -> bool:
    """Whether a 403/429 is one of GitHub's rate limits (and not a permission problem)."""
    if status not in (403, 429):
        return False
    lowered = lower_headers(headers)
    if status == 429 or "retry-after" in lowered or lowered.get("x-ratelimit-remaining") == "0":
        return True
    text = message.lower()
    return "rate limit" in text or "abuse detection" in text


def retry_decision(
    status: int,
    headers: Mapping[str, str],
    message: str,
    *,
    attempt: int,
    rate_limited: int,
    policy: RetryPolicy,
    now: float,
) -> RetryDecision | None:
    """Whether and how long to wait before repeating a request that got ``status``.

    ``attempt`` counts server-error attempts so far, ``rate_limited`` the rate-limit answers
    so far (including this one). None means: do not retry, hand the answer on.
    """
    lowered = lower_headers(headers)
    if is_rate_limited(status, lowered, message):
        retry_after = _retry_after_seconds(lowered.get("retry-after"), now)
        if retry_after is not None:
            return RetryDecision("secondary_rate_limit", retry_after)
        if lowered.get("x-ratelimit-remaining") == "0":
            try:
                reset = float(lowered.get("x-ratelimit-reset", ""))
            except ValueError:
                reset = now + policy.secondary_limit_wait
            return RetryDecision("primary_rate_limit", max(0.0, reset - now) + policy.reset_margin)
        # Secondary limit without retry-after: at least the base wait, doubling each time.
        wait = policy.secondary_limit_wait * 2 ** max(0, rate_limited - 1)
        return RetryDecision("secondary_rate_limit", wait)
    if status in RETRYABLE_SERVER_ERRORS:
        return RetryDecision("server_error", min(policy.max_backoff, policy.server_error_backoff * 2 ** (attempt - 1)))
    return None


def safe_url(url: str) -> str:
    """``url`` without user info (credentials never belong in messages)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def response_message(response: requests.Response) -> str:
    """GitHub's ``message`` from an error body, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:200]


class GitHubRetryAdapter(HTTPAdapter):
    """Transport adapter that retries rate limits and server errors, and sets timeouts.

    It hands the final answer on unchanged (the response hook turns errors into
    :class:`GitHubError`), except when a rate limit would need a wait above
    ``policy.max_rate_limit_wait``: then it raises :class:`GitHubRateLimitError` at once.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        context: str = "GitHub",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.policy = policy
        self.context = context
        self._sleep = sleep
        self._clock = clock

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        policy = self.policy
        if timeout is None:
            timeout = (policy.connect_timeout, policy.read_timeout)
        attempt = 0
        rate_limited = 0
        while True:
            attempt += 1
            try:
                response = super().send(
                    request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= policy.max_attempts:
                    raise
                wait = min(policy.max_backoff, policy.server_error_backoff * 2 ** (attempt - 1))
                log.warning(
                    "%s: %s on %s; retrying in %.1f s",
                    self.context,
                    type(exc).__name__,
                    safe_url(request.url or ""),
                    wait,
                )
                self._sleep(wait)
                continue
            if response.status_code < 400:
                return response
            message = response_message(response)
            if is_rate_limited(response.status_code, response.headers, message):
                rate_limited += 1
            decision = retry_decision(
                response.status_code,
                response.headers,
                message,
                attempt=attempt,
                rate_limited=rate_limited,
                policy=policy,
                now=self._clock(),
            )
            if decision is None:
                return response
            if decision.is_rate_limit:
                attempt -= 1  # rate limits have their own budget
                if rate_limited > policy.max_rate_limit_retries:
                    return response
                if decision.wait > policy.max_rate_limit_wait:
                    response.close()
                    raise GitHubRateLimitError(
                        f"{self.context}: GitHub's {decision.kind.replace('_', ' ')} asks to wait "
                        f"{decision.wait:.0f} s (until {_utc(self._clock() + decision.wait)}), longer "
                        f"than the allowed {policy.max_rate_limit_wait:.0f} s; run the load again after "
                        "that time or use a token with a larger quota",
                        status=response.status_code,
                        url=safe_url(response.url),
                    )
            elif attempt >= policy.max_attempts:
                return response
            log.warning(
                "%s: %s (%s) on %s; waiting %.1f s before retrying",
                self.context,
                decision.kind.replace("_", " "),
                response.status_code,
                safe_url(response.url),
                decision.wait,
            )
            response.close()
            self._sleep(decision.wait)


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- client -------------------------------------------------------------------------------


class _TokenAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``, added when the request is prepared (never logged)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_TokenAuth(<redacted>)"


class GitHubClient:
    """GitHub REST calls for one source: paging by ``Link``, retries, errors with context."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        source_name: str,
        org: str,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.source_name = source_name
        self.org = org
        self.policy = policy or RetryPolicy()
        session = requests.Session()
        adapter = GitHubRetryAdapter(self.policy, context=f"GitHub source '{source_name}' (org '{org}')")
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._rest = RESTClient(
            base_url=self.base_url,
            headers={
                "Accept": settings.ACCEPT,
                "X-GitHub-Api-Version": settings.API_VERSION,
                "User-Agent": settings.USER_AGENT,
            },
            auth=_TokenAuth(token),
            paginator=HeaderLinkPaginator(),
            session=session,
        )

    def paginate(
        self, path: str, params: dict[str, Any] | None = None, data_selector: str = "$"
    ) -> Iterator[list[Any]]:
        """Pages of ``path``, following ``Link: rel="next"`` until there is none."""
        pages = self._rest.paginate(
            path, params=params, data_selector=data_selector, hooks={"response": [self.raise_for_status]}
        )
        try:
            yield from pages  # closing this generator (an early stop) closes dlt's as well
        except requests.RequestException as exc:
            raise GitHubApiError(
                f"GitHub at {safe_url(self.base_url + path)} is unreachable for source "
                f"'{self.source_name}' ({type(exc).__name__} after {_attempts(self.policy.max_attempts)}); "
                "check the base URL and the network",
                status=None,
                url=safe_url(self.base_url + path),
            ) from exc

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._rest.get(path, params=params, hooks={"response": [self.raise_for_status]})
        except requests.RequestException as exc:
            raise GitHubApiError(
                f"GitHub at {safe_url(self.base_url + path)} is unreachable for source "
                f"'{self.source_name}' ({type(exc).__name__} after {_attempts(self.policy.max_attempts)}); "
                "check the base URL and the network",
                status=None,
                url=safe_url(self.base_url + path),
            ) from exc
        return response.json()

    def raise_for_status(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Response hook: turn an error answer (after the adapter's retries) into a GitHubError."""
        status = response.status_code
        if status < 400:
            return
        url = safe_url(response.url)
        message = response_message(response)
        source, org = self.source_name, self.org
        if status == 401:
            raise GitHubAuthError(
                f"the GitHub token for source '{source}' was rejected ({status} {message}) while "
                f"reading org '{org}'; create a new token with repo read access and update it "
                "with `pulse source add/update`"
            )
        if is_rate_limited(status, response.headers, message):
            raise GitHubRateLimitError(
                f"GitHub source '{source}' (org '{org}') stayed rate limited after "
                f"{self.policy.max_rate_limit_retries} waits ({status} {message}) on {url}; "
                "run the load again later",
                status=status,
                url=url,
            )
        if status == 403:
            raise GitHubAuthError(
                f"the GitHub token for source '{source}' may not read {url} in org '{org}' "
                f"({status} {message}); give the token read access to the organisation's "
                "repositories (contents, pull requests, checks) and update it with "
                "`pulse source add/update`"
            )
        if status == 404:
            raise GitHubApiError(
                f"GitHub answered 404 Not Found for {url}: org '{org}' or the repository does not "
                f"exist, or the token of source '{source}' cannot see it; check the org and "
                "repository names of the source",
                status=status,
                url=url,
            )
        raise GitHubApiError(
            f"GitHub answered {status} ({message}) for {url} (source '{source}', org '{org}')"
            + (f" after {self.policy.max_attempts} attempts" if status in RETRYABLE_SERVER_ERRORS else ""),
            status=status,
            url=url,
        )


class LazyClient:
    """Creates the :class:`GitHubClient` on first use, so building a source touches nothing."""

    def __init__(self, factory: Callable[[], GitHubClient]) -> None:
        self._factory = factory
        self._client: GitHubClient | None = None
        self._lock = threading.Lock()

    def get(self) -> GitHubClient:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client


# -- parsing ------------------------------------------------------------------------------


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``2024-03-24T14:52:48Z``, offsets allowed) as aware UTC; None stays None.

    Raises ValueError for anything else.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class _Fields:
    """Reads typed fields from an API item, collecting every problem before failing once."""

    def __init__(self, item: Any) -> None:
        if not isinstance(item, dict):
            raise MalformedItem(f"item is a {type(item).__name__}, not a JSON object")
        self.item = item
        self.problems: list[str] = []

    def _get(self, path: tuple[str, ...], required: bool) -> tuple[bool, Any]:
        current: Any = self.item
        for depth, key in enumerate(path):
            if current is None and not required and depth > 0:
                return True, None
            if not isinstance(current, dict) or key not in current:
                if required:
                    self.problems.append(f"missing required field '{'.'.join(path)}'")
                    return False, None
                return True, None
            current = current[key]
        if current is None and required:
            self.problems.append(f"required field '{'.'.join(path)}' is null")
            return False, None
        return True, current

    def integer(self, *path: str, required: bool = False) -> int | None:
        ok, value = self._get(path, required)
        if not ok or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"'{'.'.join(path)}' is not an integer: {value!r}"[:200])
            return None
        return value

    def text(self, *path: str, required: bool = False) -> str | None:
        ok, value = self._get(path, required)
        if not ok or value is None:
            return None
        if not isinstance(value, str):
            self.problems.append(f"'{'.'.join(path)}' is not a string: {value!r}"[:200])
            return None
        return value

    def boolean(self, *path: str, required: bool = False) -> bool | None:
        ok, value = self._get(path, required)
        if not ok or value is None:
            return None
        if not isinstance(value, bool):
            self.problems.append(f"'{'.'.join(path)}' is not a boolean: {value!r}"[:200])
            return None
        return value

    def timestamp(self, *path: str, required: bool = False) -> datetime | None:
        ok, value = self._get(path, required)
        if not ok or value is None:
            return None
        try:
            return parse_timestamp(value)
        except ValueError:
            self.problems.append(f"'{'.'.join(path)}' is not an ISO 8601 timestamp: {value!r}"[:200])
            return None

    def one_of(self, *path: str, allowed: frozenset[str], required: bool = False) -> str | None:
        value = self.text(*path, required=required)
        if value is not None and value not in allowed:
            self.problems.append(f"'{'.'.join(path)}' is {value!r}, not one of {sorted(allowed)}")
            return None
        return value

    def check(self) -> None:
        if self.problems:
            raise MalformedItem("; ".join(self.problems))


PR_STATES = frozenset({"open", "closed"})


def parse_repository(item: Any) -> JsonDict:
    f = _Fields(item)
    row = {
        "id": f.integer("id", required=True),
        "node_id": f.text("node_id"),
        "full_name": f.text("full_name", required=True),
        "name": f.text("name", required=True),
        "owner_login": f.text("owner", "login"),
        "is_private": f.boolean("private"),
        "default_branch": f.text("default_branch"),
        "created_at": f.timestamp("created_at"),
        "updated_at": f.timestamp("updated_at"),
        "pushed_at": f.timestamp("pushed_at"),
        "payload": item,
    }
    f.check()
    return row


def parse_pull_request(item: Any, repository_full_name: str) -> JsonDict:
    """A ``/pulls`` list item as a ``pull_requests`` row; MalformedItem names every problem."""
    f = _Fields(item)
    row = {
        "id": f.integer("id", required=True),
        "node_id": f.text("node_id"),
        "repository_full_name": repository_full_name,
        "number": f.integer("number", required=True),
        "title": f.text("title"),
        "body": f.text("body"),
        "state": f.one_of("state", allowed=PR_STATES, required=True),
        "is_draft": f.boolean("draft"),
        "author_login": f.text("user", "login"),
        "author_id": f.integer("user", "id"),
        "head_ref": f.text("head", "ref"),
        "head_sha": f.text("head", "sha", required=True),
        "base_ref": f.text("base", "ref"),
        "created_at": f.timestamp("created_at", required=True),
        "updated_at": f.timestamp("updated_at", required=True),
        "closed_at": f.timestamp("closed_at"),
        "merged_at": f.timestamp("merged_at"),
        "merge_commit_sha": f.text("merge_commit_sha"),
        "html_url": f.text("html_url"),
        "payload": item,
    }
    f.check()
    return row


def parse_review(item: Any, pull_request: JsonDict) -> JsonDict:
    f = _Fields(item)
    row = {
        "id": f.integer("id", required=True),
        "pull_request_id": pull_request["id"],
        "repository_full_name": pull_request["repository_full_name"],
        "pull_number": pull_request["number"],
        "reviewer_login": f.text("user", "login"),
        "reviewer_id": f.integer("user", "id"),
        "state": f.text("state", required=True),
        "submitted_at": f.timestamp("submitted_at"),
        "commit_id": f.text("commit_id"),
        "html_url": f.text("html_url"),
        "payload": item,
    }
    f.check()
    return row


def parse_commit(item: Any, pull_request: JsonDict) -> JsonDict:
    f = _Fields(item)
    row = {
        "sha": f.text("sha", required=True),
        "pull_request_id": pull_request["id"],
        "repository_full_name": pull_request["repository_full_name"],
        "pull_number": pull_request["number"],
        "author_login": f.text("author", "login"),
        "author_email": f.text("commit", "author", "email"),
        "author_name": f.text("commit", "author", "name"),
        "authored_at": f.timestamp("commit", "author", "date"),
        "committed_at": f.timestamp("commit", "committer", "date"),
        "message": f.text("commit", "message"),
        "payload": item,
    }
    f.check()
    return row


def parse_check_run(item: Any, pull_request: JsonDict) -> JsonDict:
    f = _Fields(item)
    row = {
        "id": f.integer("id", required=True),
        "repository_full_name": pull_request["repository_full_name"],
        "head_sha": f.text("head_sha", required=True),
        "pull_request_id": pull_request["id"],
        "name": f.text("name", required=True),
        "status": f.text("status"),
        "conclusion": f.text("conclusion"),
        "started_at": f.timestamp("started_at"),
        "completed_at": f.timestamp("completed_at"),
        "payload": item,
    }
    f.check()
    return row


def item_key(item: Any, *, fallback: str) -> str:
    """A readable key for a quarantined item: its ``id`` or ``sha`` when it has one."""
    if isinstance(item, dict):
        for key in ("id", "sha"):
            value = item.get(key)
            if isinstance(value, int | str) and not isinstance(value, bool):
                return f"{fallback} {key}={value}"
    return fallback


def quarantine_row(resource: str, key: str, reason: str, payload: Any) -> JsonDict:
    return {
        "resource": resource,
        "item_key": key,
        "reason": reason,
        "payload": payload,
        "seen_at": datetime.now(UTC),
    }
