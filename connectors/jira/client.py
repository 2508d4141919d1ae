"""HTTP for the Jira connector: authentication, retries, Jira's three ways of paging, errors.

Retries live in :class:`connectors.github.helpers.GitHubRetryAdapter` (mounted on the session,
so they also apply in the middle of a paged walk): 429 waits for ``Retry-After``, 5xx and
network errors back off exponentially. Whatever is left is turned into a :class:`JiraError`
that says what failed and what to do; messages never contain the API token.

Jira pages three ways, and the client ends each on the signal Jira documents, never on a
reported ``total`` (which recorded answers show can be wrong):

* ``/search/jql``: ``nextPageToken`` until there is none (or ``isLast``);
* agile and project lists, issue changelogs: ``startAt``/``maxResults`` until ``isLast`` (or
  an empty page), advancing by the items actually received;
* ``/users/search``: a bare list, until an empty page (it may return fewer than asked before
  the end, so a short page is no end).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from connectors.github.helpers import GitHubRateLimitError, GitHubRetryAdapter, RetryPolicy, safe_url
from connectors.jira import settings

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
TOKEN_HELP = "https://id.atlassian.com/manage-profile/security/api-tokens"


class JiraError(Exception):
    """Base of the connector's errors. Messages never contain the API token."""


class JiraAuthError(JiraError):
    """Jira rejected the credentials (401), or the account may not read what was asked (403)."""


class JiraApiError(JiraError):
    """Jira answered an error that retries did not fix, or could not be reached (``status`` None)."""

    def __init__(self, message: str, *, status: int | None, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class JiraRateLimitError(JiraApiError):
    """Jira kept answering 429, or asked for a longer wait than allowed."""


def jira_policy(**overrides: Any) -> RetryPolicy:
    """The retry policy with Jira's defaults (``settings.py``); ``overrides`` as RetryPolicy's fields."""
    values: dict[str, Any] = {
        "max_attempts": settings.MAX_ATTEMPTS,
        "server_error_backoff": settings.SERVER_ERROR_BACKOFF,
        "max_backoff": settings.MAX_BACKOFF,
        "secondary_limit_wait": settings.RATE_LIMIT_WAIT,
        "max_rate_limit_retries": settings.MAX_RATE_LIMIT_RETRIES,
        "max_rate_limit_wait": settings.MAX_RATE_LIMIT_WAIT,
        "connect_timeout": settings.CONNECT_TIMEOUT,
        "read_timeout": settings.READ_TIMEOUT,
    }
    values.update(overrides)
    return RetryPolicy(**values)


def error_text(response: requests.Response) -> str:
    """Jira's ``errorMessages`` and ``errors`` of an error answer, or the start of its body."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200] or response.reason or ""
    if isinstance(body, dict):
        messages = [str(m) for m in body.get("errorMessages") or []]
        details = body.get("errors")
        if isinstance(details, dict):
            messages += [f"{key}: {value}" for key, value in details.items()]
        if not messages and body.get("message"):
            messages.append(str(body["message"]))
        return "; ".join(messages)[:500] or str(body)[:200]
    return str(body)[:200]


class _Auth(requests.auth.AuthBase):
    """Basic ``email:token`` (API token) or ``Bearer token`` (OAuth), added when a request is
    prepared; never part of a repr or a message."""

    def __init__(self, email: str | None, token: str) -> None:
        self._basic = requests.auth.HTTPBasicAuth(email, token) if email else None
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._basic is not None:
            return self._basic(request)
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Auth(<redacted>)"


@dataclass(frozen=True)
class Credentials:
    email: str | None
    token: str

    @classmethod
    def from_mapping(cls, credentials: dict[str, str], source_name: str) -> Credentials:
        token = (credentials.get("token") or credentials.get("api_token") or "").strip()
        if not token:
            raise JiraAuthError(
                f"Jira source '{source_name}' has no API token: add the credential `token` (and `email`, "
                f"the account's address) with `pulse source add/update`; create a token at {TOKEN_HELP}"
            )
        email = (credentials.get("email") or "").strip() or None
        return cls(email, token)


class JiraClient:
    """Jira REST calls for one source: retries, paging, errors with context."""

    def __init__(
        self, base_url: str, credentials: dict[str, str], *, source_name: str, policy: RetryPolicy | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.source_name = source_name
        self.policy = policy or jira_policy()
        creds = Credentials.from_mapping(credentials, source_name)
        self.email = creds.email
        self.session = requests.Session()
        adapter = GitHubRetryAdapter(self.policy, context=f"Jira source '{source_name}'")
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = _Auth(creds.email, creds.token)
        self.session.headers.update({"Accept": "application/json", "User-Agent": settings.USER_AGENT})

    # -- single requests -------------------------------------------------------------------

    def request(self, method: str, path: str, *, what: str, params: Any = None, json: Any = None) -> Any:
        """The JSON answer of one request; ``what`` says what the request was for, in errors."""
        url = self.base_url + path
        try:
            response = self.session.request(
                method, url, params=params, json=json, timeout=(self.policy.connect_timeout, self.policy.read_timeout)
            )
        except GitHubRateLimitError as exc:
            raise JiraRateLimitError(
                f"Jira source '{self.source_name}' is rate limited while {what}, and Jira asks for a longer "
                f"wait than the allowed {self.policy.max_rate_limit_wait:g} s; run the load again later",
                status=exc.status,
                url=exc.url,
            ) from exc
        except requests.RequestException as exc:
            raise JiraApiError(
                f"Jira at {safe_url(self.base_url)} is unreachable for source '{self.source_name}' while {what} "
                f"({type(exc).__name__}); check the base URL (https://<site>.atlassian.net) and the network",
                status=None,
                url=safe_url(url),
            ) from exc
        if response.status_code >= 400:
            raise self._error(response, what)
        try:
            return response.json()
        except ValueError:
            raise JiraApiError(
                f"Jira source '{self.source_name}': {safe_url(response.url)} answered {response.status_code} "
                f"with no JSON while {what}; is {safe_url(self.base_url)} a Jira Cloud site?",
                status=response.status_code,
                url=safe_url(response.url),
            ) from None

    def get(self, path: str, *, what: str, params: Any = None) -> Any:
        return self.request("GET", path, what=what, params=params)

    def post(self, path: str, body: JsonDict, *, what: str) -> Any:
        return self.request("POST", path, what=what, json=body)

    def _error(self, response: requests.Response, what: str) -> JiraError:
        status, url, text = response.status_code, safe_url(response.url), error_text(response)
        source, site = self.source_name, safe_url(self.base_url)
        if status == 401:
            who = f"'{self.email}'" if self.email else "the OAuth token's account"
            return JiraAuthError(
                f"Jira at {site} rejected the credentials of source '{source}' (401: {text}) while {what}: "
                f"the API token is wrong, expired or revoked, or {who} is not the token owner's email. "
                f"Create a token at {TOKEN_HELP} and update the source with `pulse source add/update`"
            )
        if status == 403:
            return JiraAuthError(
                f"the Jira account of source '{source}' may not read {url} (403: {text}) while {what}; "
                "grant it the Browse projects permission on the source's projects (and Browse users for "
                "/users/search)"
            )
        if status == 429:
            return JiraRateLimitError(
                f"Jira source '{source}' stayed rate limited after {self.policy.max_rate_limit_retries} waits "
                f"(429: {text}) on {url} while {what}; run the load again later",
                status=status,
                url=url,
            )
        if status == 410:
            return JiraApiError(
                f"Jira at {site} answered 410 Gone for {url} while {what}: this API was retired ({text})",
                status=status,
                url=url,
            )
        if status in (400, 404) and ("does not exist for the field 'project'" in text or "No project" in text):
            return JiraApiError(
                f"Jira at {site} does not know a project of source '{source}' while {what} ({status}: {text}): "
                "the key is wrong, or the account may not browse that project; check the source's `projects` "
                "config and the account's Browse projects permission",
                status=status,
                url=url,
            )
        attempts = f" after {self.policy.max_attempts} attempts" if status >= 500 else ""
        return JiraApiError(
            f"Jira answered {status} ({text}) for {url} while {what} (source '{source}'){attempts}",
            status=status,
            url=url,
        )

    # -- paging ------------------------------------------------------------------------------

    def values_pages(
        self, path: str, *, what: str, params: dict[str, Any] | None = None, page_size: int
    ) -> Iterator[list[Any]]:
        """Pages of a ``startAt``/``maxResults``/``isLast``/``values`` list (agile, projects, changelog)."""
        start = 0
        while True:
            body = self.get(path, what=what, params={**(params or {}), "startAt": start, "maxResults": page_size})
            values = body.get("values") if isinstance(body, dict) else None
            if not isinstance(values, list):
                raise self._shape_error(path, what, "a 'values' list")
            if values:
                yield values
            if not values or body.get("isLast") is True:
                return
            if body.get("isLast") is None and len(values) < page_size:
                return  # an old server without isLast: a short page is the last
            start += len(values)

    def list_pages(self, path: str, *, what: str, page_size: int) -> Iterator[list[Any]]:
        """Pages of a bare-list endpoint (``/users/search``) until an empty page."""
        start = 0
        while True:
            body = self.get(path, what=what, params={"startAt": start, "maxResults": page_size})
            if not isinstance(body, list):
                raise self._shape_error(path, what, "a JSON list")
            if not body:
                return
            yield body
            start += page_size

    def search(self, jql: str, fields: list[str], *, expand: str | None, page_size: int) -> Iterator[list[Any]]:
        """Pages of ``/search/jql`` issues, following ``nextPageToken`` until there is none."""
        params: dict[str, Any] = {"jql": jql, "fields": ",".join(fields), "maxResults": page_size}
        if expand:
            params["expand"] = expand
        seen: set[str] = set()
        what = f"searching issues ({jql})"
        while True:
            body = self.get(settings.SEARCH, what=what, params=params)
            issues = body.get("issues") if isinstance(body, dict) else None
            if not isinstance(issues, list):
                raise self._shape_error(settings.SEARCH, what, "an 'issues' list")
            if issues:
                yield issues
            token = body.get("nextPageToken")
            if not token or body.get("isLast") is True:
                return
            if token in seen:
                raise JiraApiError(
                    f"Jira repeated a nextPageToken while {what} (source '{self.source_name}'); stopping so as "
                    "not to loop forever: run the load again",
                    status=200,
                    url=safe_url(self.base_url + settings.SEARCH),
                )
            seen.add(token)
            params["nextPageToken"] = token

    def bulk_changelogs(self, issue_ids: list[str]) -> Iterator[tuple[str, list[Any]]]:
        """``(issue id, histories)`` of ``/changelog/bulkfetch``, page by page (an issue's
        histories may come in parts over two pages)."""
        what = f"reading the changelogs of {len(issue_ids)} issues"
        body: JsonDict = {"issueIdsOrKeys": issue_ids, "maxResults": settings.BULK_PAGE_SIZE}
        seen: set[str] = set()
        while True:
            answer = self.post(settings.BULK_CHANGELOG, body, what=what)
            logs = answer.get("issueChangeLogs") if isinstance(answer, dict) else None
            if not isinstance(logs, list):
                raise self._shape_error(settings.BULK_CHANGELOG, what, "an 'issueChangeLogs' list")
            for log_ in logs:
                if isinstance(log_, dict) and isinstance(log_.get("changeHistories"), list):
                    yield str(log_.get("issueId")), log_["changeHistories"]
            token = answer.get("nextPageToken")
            if not token or token in seen:
                return
            seen.add(token)
            body = {**body, "nextPageToken": token}

    def issue_changelog(self, issue_id: str) -> list[Any]:
        """Every history of one issue from ``/issue/{id}/changelog`` (oldest first)."""
        out: list[Any] = []
        path = settings.ISSUE_CHANGELOG.format(issue=issue_id)
        for page in self.values_pages(
            path, what=f"reading the changelog of issue {issue_id}", page_size=settings.CHANGELOG_PAGE_SIZE
        ):
            out += page
        return out

    def _shape_error(self, path: str, what: str, expected: str) -> JiraApiError:
        return JiraApiError(
            f"Jira's answer for {path} while {what} is not {expected} (source '{self.source_name}'); "
            f"is {safe_url(self.base_url)} a Jira Cloud site?",
            status=200,
            url=safe_url(self.base_url + path),
        )
