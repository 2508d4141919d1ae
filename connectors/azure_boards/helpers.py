"""HTTP, errors, WIQL slicing and parsing of the Azure Boards connector.

Azure Boards has no paged "list work items" call: a WIQL query returns ids only (at most
20,000, else ``VS402337``), and the items are then *hydrated* 200 at a time
(``workitemsbatch``, else ``VS403474``). :func:`wiql_ids` slices the query by
``System.ChangedDate`` and, when even a one-second window is too large, by id range, splitting
a slice only when Azure says it is too big. Retries (429 with ``Retry-After``, 5xx, network
errors) come from the GitHub connector's transport adapter; Azure's throttling hint
``X-RateLimit-Delay`` is honoured before the next request. Errors say what failed and what to
do, and never contain the PAT.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from connectors.azure_boards import settings
from connectors.github.helpers import (
    GitHubRateLimitError,
    GitHubRetryAdapter,
    MalformedItem,
    RetryPolicy,
    _Fields,
    parse_timestamp,
    quarantine_row,
    safe_url,
)

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

__all__ = [
    "AzureBoardsApiError",
    "AzureBoardsAuthError",
    "AzureBoardsClient",
    "AzureBoardsError",
    "AzureBoardsQueryTooLarge",
    "AzureBoardsRateLimitError",
    "MalformedItem",
    "RetryPolicy",
    "quarantine_row",
]

# -- errors -------------------------------------------------------------------------------


class AzureBoardsError(Exception):
    """Base of the connector's errors. Messages never contain the PAT."""


class AzureBoardsAuthError(AzureBoardsError):
    """The PAT was rejected or has expired, or may not read what was asked (TF400813, 403)."""


class AzureBoardsApiError(AzureBoardsError):
    """Azure DevOps answered an error that retries did not fix (or could not be reached)."""

    def __init__(self, message: str, *, status: int | None, url: str, type_key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.type_key = type_key


class AzureBoardsRateLimitError(AzureBoardsApiError):
    """Azure kept throttling (429) after the allowed waits, or asked for a longer wait."""


class AzureBoardsQueryTooLarge(AzureBoardsApiError):
    """A WIQL query matched more work items than Azure returns (VS402337): split it."""


# -- client -------------------------------------------------------------------------------


class PatAuth(requests.auth.AuthBase):
    """``Authorization: Basic base64(":" + PAT)``, added when the request is prepared (never logged).

    Every Azure DevOps connector (Boards, Git) authenticates this way."""

    def __init__(self, pat: str) -> None:
        self._header = "Basic " + base64.b64encode(f":{pat}".encode()).decode()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "PatAuth(<redacted>)"


def organisation_of(base_url: str) -> str:
    """The organisation named by a base URL (``https://dev.azure.com/<org>``): its last path segment."""
    path = urlsplit(base_url).path.rstrip("/")
    return path.rsplit("/", 1)[-1] if path else urlsplit(base_url).hostname or base_url


def _message(response: requests.Response) -> tuple[str, str | None]:
    """Azure's ``message`` and ``typeKey`` from an error body, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip(), None
    if isinstance(body, dict):
        return str(body.get("message") or body)[:400], body.get("typeKey")
    return str(body)[:200], None


class AzureBoardsClient:
    """Azure DevOps REST calls for one source: PAT auth, api-version, retries, errors with context."""

    def __init__(
        self,
        base_url: str,
        pat: str,
        *,
        source_name: str,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.org = organisation_of(self.base_url)
        self.source_name = source_name
        self.policy = policy or RetryPolicy(
            connect_timeout=settings.CONNECT_TIMEOUT, read_timeout=settings.READ_TIMEOUT
        )
        self.requests_made = 0
        self._sleep = sleep
        if not pat:
            raise AzureBoardsAuthError(
                f"Azure Boards source '{source_name}' has no personal access token; set the credential "
                "'token' (a PAT with Work Items (Read) and Project and Team (Read) scopes) with "
                "`pulse source add/update`"
            )
        self.session = requests.Session()
        adapter = GitHubRetryAdapter(self.policy, context=f"Azure Boards source '{source_name}' (org '{self.org}')")
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = PatAuth(pat)
        self.session.headers.update({"Accept": "application/json", "User-Agent": settings.USER_AGENT})

    def url(self, path: str, **parts: str) -> str:
        """``path`` with ``parts`` (project, team, type names) URL-quoted into it."""
        return self.base_url + path.format(**{key: quote(value, safe="") for key, value in parts.items()})

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        return self._send("GET", url, params=params)

    def post(self, url: str, body: Any, params: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        return self._send("POST", url, params=params, body=body)

    def _send(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> tuple[Any, Mapping[str, str]]:
        query = {"api-version": settings.API_VERSION, **(params or {})}
        where = safe_url(url)
        self.requests_made += 1
        try:
            response = self.session.request(method, url, params=query, json=body)
        except GitHubRateLimitError as exc:
            raise AzureBoardsRateLimitError(
                f"Azure DevOps throttles source '{self.source_name}' (org '{self.org}') for longer than "
                f"{self.policy.max_rate_limit_wait:.0f} s on {where}; run the load again later",
                status=exc.status,
                url=where,
            ) from None
        except requests.RequestException as exc:
            raise AzureBoardsApiError(
                f"Azure DevOps at {safe_url(self.base_url)} is unreachable for source '{self.source_name}' "
                f"({type(exc).__name__} after {self.policy.max_attempts} attempt(s)); check the base URL "
                "(https://dev.azure.com/<organisation>) and the network",
                status=None,
                url=where,
            ) from exc
        self._check(response, where)
        self._throttle(response)
        try:
            return response.json(), response.headers
        except ValueError:
            raise AzureBoardsApiError(
                f"{where} answered {response.status_code} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')}); is {safe_url(self.base_url)} "
                "an Azure DevOps organisation URL?",
                status=response.status_code,
                url=where,
            ) from None

    def _throttle(self, response: requests.Response) -> None:
        """Azure's advice to slow down (``X-RateLimit-Delay`` seconds) before the next request."""
        raw = response.headers.get("X-RateLimit-Delay")
        try:
            delay = float(raw) if raw else 0.0
        except ValueError:
            delay = 0.0
        if delay > 0:
            wait = min(delay, settings.MAX_THROTTLE_DELAY, self.policy.max_backoff)
            log.info("Azure Boards source '%s': throttled, pausing %.1f s", self.source_name, wait)
            self._sleep(wait)

    def _check(self, response: requests.Response, where: str) -> None:
        """Turn an error answer (after the adapter's retries) into an AzureBoardsError."""
        status = response.status_code
        source, org = self.source_name, self.org
        content_type = response.headers.get("content-type", "")
        if status == 203 or (status < 300 and "text/html" in content_type):
            raise AzureBoardsAuthError(
                f"Azure DevOps did not accept the credentials of source '{source}' for org '{org}' "
                f"(it answered {status} with its sign-in page); set the credential 'token' to a valid PAT "
                "with `pulse source add/update`"
            )
        if status < 400:
            return
        message, type_key = _message(response)
        if (status == 401 and "TF400813" in message) or status == 403:
            raise AzureBoardsAuthError(
                f"the PAT of source '{source}' may not read {where} in org '{org}' ({status} {message}); "
                "give it the Work Items (Read) and Project and Team (Read) scopes, or access to the project, "
                "and update it with `pulse source add/update`"
            )
        if status == 401:
            if "expired" in message.lower():
                raise AzureBoardsAuthError(
                    f"the PAT of source '{source}' has expired (401 {message}) while reading org '{org}'; "
                    "create a new PAT in Azure DevOps (User settings → Personal access tokens) and update it "
                    "with `pulse source add/update`; the next load resumes where the last one ended"
                )
            raise AzureBoardsAuthError(
                f"the PAT of source '{source}' was rejected (401 {message}) by org '{org}'; check that the "
                "PAT belongs to this organisation and update it with `pulse source add/update`"
            )
        if status == 404 and type_key == "ProjectDoesNotExistWithNameException":
            raise AzureBoardsApiError(
                f"project not found in org '{org}' ({message}); check the 'project' config of source '{source}'",
                status=status,
                url=where,
                type_key=type_key,
            )
        if status == 404 and type_key == "TeamNotFoundException":
            raise AzureBoardsApiError(
                f"team not found in org '{org}' ({message}); check the 'team' config of source '{source}' "
                "(default: the project's default team)",
                status=status,
                url=where,
                type_key=type_key,
            )
        if status == 404:
            raise AzureBoardsApiError(
                f"Azure DevOps answered 404 for {where} ({message}): org '{org}' or the resource does not "
                f"exist, or the PAT of source '{source}' cannot see it; check the base URL and the config",
                status=status,
                url=where,
                type_key=type_key,
            )
        if status == 400 and "VS402337" in message:
            raise AzureBoardsQueryTooLarge(message, status=status, url=where, type_key=type_key)
        if status == 429:
            raise AzureBoardsRateLimitError(
                f"Azure DevOps kept throttling source '{source}' (org '{org}') after "
                f"{self.policy.max_rate_limit_retries} waits (429 {message}) on {where}; run the load again later",
                status=status,
                url=where,
                type_key=type_key,
            )
        retried = status in (500, 502, 503, 504)
        raise AzureBoardsApiError(
            f"Azure DevOps answered {status} ({message}) for {where} (source '{source}', org '{org}')"
            + (f" after {self.policy.max_attempts} attempts" if retried else ""),
            status=status,
            url=where,
            type_key=type_key,
        )


# -- WIQL ----------------------------------------------------------------------------------


def wiql_time(moment: datetime) -> str:
    """A WIQL date literal with milliseconds (needs ``timePrecision=true``)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def wiql_query(
    since: datetime | None, until: datetime | None, id_above: int | None = None, id_at_most: int | None = None
) -> str:
    """Ids of the project's work items changed in ``[since, until)`` (and in an id range)."""
    where = ["[System.TeamProject] = @project"]
    if since is not None:
        where.append(f"[System.ChangedDate] >= '{wiql_time(since)}'")
    if until is not None:
        where.append(f"[System.ChangedDate] < '{wiql_time(until)}'")
    if id_above is not None:
        where.append(f"[System.Id] > {id_above}")
    if id_at_most is not None:
        where.append(f"[System.Id] <= {id_at_most}")
    return f"SELECT [System.Id] FROM WorkItems WHERE {' AND '.join(where)} ORDER BY [System.Id]"


def wiql_ids(
    run: Callable[[str], JsonDict],
    since: datetime | None,
    until: datetime | None,
    *,
    now: datetime,
) -> tuple[list[int], datetime | None]:
    """Every id the project's WIQL returns for ``[since, until)``, in slices under the cap.

    ``run`` sends one query and returns Azure's answer (raising :class:`AzureBoardsQueryTooLarge`
    on VS402337). Returns the ids (ascending, without duplicates) and the ``asOf`` of the first
    answer: hydrating every id as of that moment gives a consistent picture whose changes all
    lie before it, so the next load's cursor cannot skip a change made during this one.
    """
    found: set[int] = set()
    as_of: list[datetime] = []

    def collect(lo: datetime | None, hi: datetime | None, id_lo: int | None, id_hi: int | None) -> None:
        try:
            answer = run(wiql_query(lo, hi, id_lo, id_hi))
        except AzureBoardsQueryTooLarge:
            start = lo or settings.EARLIEST_CHANGE
            end = hi or now + timedelta(days=1)
            if id_lo is None and id_hi is None and (end - start).total_seconds() > settings.SMALLEST_DATE_SLICE_SECONDS:
                middle = start + (end - start) / 2
                log.info("WIQL slice %s..%s is over the cap; splitting at %s", lo, hi, middle)
                collect(lo, middle, None, None)
                collect(middle, hi, None, None)
                return
            low, high = id_lo or 0, id_hi if id_hi is not None else settings.MAX_WORK_ITEM_ID
            if high - low <= 1:
                raise
            middle_id = (low + high) // 2
            log.info("WIQL slice of ids %s..%s is over the cap; splitting at id %s", low, high, middle_id)
            collect(lo, hi, low, middle_id)
            collect(lo, hi, middle_id, high)
            return
        if not as_of and answer.get("asOf"):
            as_of.append(parse_azure_time(answer["asOf"]))
        for entry in answer.get("workItems") or []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), int):
                found.add(entry["id"])

    collect(since, until, None, None)
    return sorted(found), (as_of[0] if as_of else None)


# -- parsing -------------------------------------------------------------------------------


def parse_azure_time(value: Any) -> datetime:
    """An Azure timestamp (``2026-03-31T18:36:26.23Z``, up to 7 fractional digits) as aware UTC."""
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())
    parsed = parse_timestamp(text)
    assert parsed is not None
    return parsed


_EMAIL_IN_ANGLES = re.compile(r"<([^<>@\s]+@[^<>\s]+)>\s*$")


def identity_email(value: Any) -> str | None:
    """The email (``uniqueName``) of an identity: a reference object, or ``Name <email>`` text."""
    if isinstance(value, dict):
        unique = value.get("uniqueName")
        return unique.lower() if isinstance(unique, str) and unique else None
    if isinstance(value, str) and value.strip():
        match = _EMAIL_IN_ANGLES.search(value)
        if match:
            return match.group(1).lower()
        return value.strip().lower() if "@" in value else None
    return None


def identity_name(value: Any) -> str | None:
    if isinstance(value, dict):
        name = value.get("displayName")
        return name if isinstance(name, str) else None
    if isinstance(value, str) and "<" in value:
        return value.split("<", 1)[0].strip() or None
    return None


#: How each canonical column is typed in the raw table, and read from a field value.
CANONICAL_KINDS = {
    "story_points": "number",
    "sprint": "text",
    "dmt_ac_quality": "text",
    "dmt_unit_test_task": "boolean",
    "dmt_unit_test_status": "text",
    "dmt_coverage_pct": "number",
    "dmt_pr_links": "text",
    "dmt_ci_evidence": "text",
    "dmt_reviewer_signoff": "boolean",
    "dmt_exception": "boolean",
    "dmt_exception_reason": "text",
    "dmt_exception_approver": "text",
    "dmt_exception_expires": "date",
}
_TRUE = frozenset({"true", "yes", "y", "1", "done", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


def canonical_value(kind: str, value: Any) -> Any:
    """A mapped field's value as its canonical column holds it (None when it does not fit).

    Identities become their email, picklist values stay their label, numbers from text are read.
    """
    if value is None:
        return None
    if kind == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip().rstrip("%"))
            except ValueError:
                return None
        return None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            return True if text in _TRUE else False if text in _FALSE else None
        if isinstance(value, int | float):
            return bool(value)
        return None
    if kind == "date":
        if isinstance(value, str):
            try:
                return parse_azure_time(value).date()
            except ValueError:
                try:
                    return date.fromisoformat(value.strip()[:10])
                except ValueError:
                    return None
        return None
    if isinstance(value, dict):
        return identity_email(value) or identity_name(value)
    if isinstance(value, list):
        return "\n".join(str(part) for part in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_WORK_ITEM_URL = re.compile(r"/workItems/(\d+)\s*$", re.IGNORECASE)
_PULL_REQUEST_LINK = re.compile(r"^vstfs:///Git/PullRequestId/([^%/]+)%2F([^%/]+)%2F(\d+)$", re.IGNORECASE)
_CAUSED_BY = re.compile(r"caused", re.IGNORECASE)


def _linked_id(url: Any) -> int | None:
    if not isinstance(url, str):
        return None
    match = _WORK_ITEM_URL.search(url)
    return int(match.group(1)) if match else None


def _is_caused_by(rel: str, attributes: JsonDict) -> bool:
    """A custom ``…CausedBy-Reverse`` link type, or a ``Related`` link commented "Caused by"."""
    custom = "causedby" in rel.lower().replace("-", "").replace(".", "") and rel.lower().endswith("reverse")
    related = rel == "System.LinkTypes.Related" and bool(_CAUSED_BY.search(str(attributes.get("comment") or "")))
    return custom or related


def relation_links(item: JsonDict) -> tuple[int | None, int | None, list[JsonDict]]:
    """``(parent id, caused-by id, pull requests)`` from a work item's ``relations``.

    The parent is the ``System.LinkTypes.Hierarchy-Reverse`` link; a post-release bug names the
    story it came from with a link whose type or comment says "caused" (a ``Related`` link
    commented "Caused by", or a custom ``…CausedBy…`` link type); pull requests are
    ``ArtifactLink`` entries ``vstfs:///Git/PullRequestId/<project>%2F<repository>%2F<id>``.
    """
    parent = caused_by = None
    pull_requests: list[JsonDict] = []
    for relation in item.get("relations") or []:
        if not isinstance(relation, dict):
            continue
        rel = str(relation.get("rel") or "")
        attributes: JsonDict = relation["attributes"] if isinstance(relation.get("attributes"), dict) else {}
        url = relation.get("url")
        if rel == "System.LinkTypes.Hierarchy-Reverse":
            parent = _linked_id(url) or parent
        elif _is_caused_by(rel, attributes):
            caused_by = _linked_id(url) or caused_by
        elif rel == "ArtifactLink" and isinstance(url, str):
            match = _PULL_REQUEST_LINK.match(url)
            if match:
                pull_requests.append(
                    {
                        "project_id": match.group(1),
                        "repository_id": match.group(2),
                        "pull_request_id": int(match.group(3)),
                    }
                )
    return parent, caused_by, pull_requests


def parse_work_item(item: Any, mappings: Mapping[str, str]) -> JsonDict:
    """A hydrated work item (``$expand=relations``) as a ``work_items`` row.

    ``mappings`` is ``{canonical name: field reference name}``; each mapped field lands in the
    column of its canonical name. MalformedItem names every problem found.
    """
    f = _Fields(item)
    fields: JsonDict = item["fields"] if isinstance(item, dict) and isinstance(item.get("fields"), dict) else {}
    work_item_type = f.text("fields", "System.WorkItemType", required=True)
    parent, caused_by, pull_requests = relation_links(item) if isinstance(item, dict) else (None, None, [])
    is_bug = (work_item_type or "").lower() == "bug"
    row: JsonDict = {
        "id": f.integer("id", required=True),
        "rev": f.integer("rev"),
        "project": f.text("fields", "System.TeamProject", required=True),
        "work_item_type": work_item_type,
        "state": f.text("fields", "System.State", required=True),
        "reason": f.text("fields", "System.Reason"),
        "title": f.text("fields", "System.Title"),
        "assigned_to_email": identity_email(fields.get("System.AssignedTo")),
        "assigned_to_name": identity_name(fields.get("System.AssignedTo")),
        "created_by_email": identity_email(fields.get("System.CreatedBy")),
        "changed_by_email": identity_email(fields.get("System.ChangedBy")),
        "created_at": _timestamp(f, "System.CreatedDate", required=True),
        "changed_at": _timestamp(f, "System.ChangedDate", required=True),
        "activated_at": _timestamp(f, "Microsoft.VSTS.Common.ActivatedDate"),
        "resolved_at": _timestamp(f, "Microsoft.VSTS.Common.ResolvedDate"),
        "closed_at": _timestamp(f, "Microsoft.VSTS.Common.ClosedDate"),
        "iteration_path": f.text("fields", "System.IterationPath"),
        "area_path": f.text("fields", "System.AreaPath"),
        "blocked": _text_value(fields.get(settings.BLOCKED_FIELD)),
        "tags": f.text("fields", "System.Tags"),
        "parent_id": parent,
        "caused_by_id": caused_by if is_bug else None,
        "pull_requests": pull_requests,
        "url": f.text("url"),
    }
    for canonical, kind in CANONICAL_KINDS.items():
        reference = mappings.get(canonical)
        row[canonical] = canonical_value(kind, fields.get(reference)) if reference else None
    row["payload"] = item
    f.check()
    return row


def parse_revision(item: Any, mappings: Mapping[str, str]) -> JsonDict:
    """One revision of the reporting feed (``{id, rev, fields}``) as a ``work_item_revisions`` row."""
    f = _Fields(item)
    fields: JsonDict = item["fields"] if isinstance(item, dict) and isinstance(item.get("fields"), dict) else {}
    sprint_field = mappings.get("sprint") or settings.DEFAULT_SPRINT_FIELD
    points_field = mappings.get("story_points") or settings.DEFAULT_STORY_POINTS_FIELD
    row: JsonDict = {
        "id": f.integer("id", required=True),
        "rev": f.integer("rev", required=True),
        "changed_at": _timestamp(f, "System.ChangedDate", required=True),
        "changed_by_email": identity_email(fields.get("System.ChangedBy")),
        "work_item_type": f.text("fields", "System.WorkItemType"),
        "project": f.text("fields", "System.TeamProject"),
        "state": f.text("fields", "System.State"),
        "reason": f.text("fields", "System.Reason"),
        "iteration_path": canonical_value("text", fields.get(sprint_field)),
        "story_points": canonical_value("number", fields.get(points_field)),
        "assigned_to_email": identity_email(fields.get("System.AssignedTo")),
        "blocked": _text_value(fields.get(settings.BLOCKED_FIELD)),
        "payload": item,
    }
    f.check()
    return row


def parse_iteration(item: Any, project: str, team: str) -> JsonDict:
    f = _Fields(item)
    row = {
        "id": f.text("id", required=True),
        "name": f.text("name", required=True),
        "path": f.text("path", required=True),
        "project": project,
        "team": team,
        "start_date": _attribute_time(f, "startDate"),
        "finish_date": _attribute_time(f, "finishDate"),
        "time_frame": f.text("attributes", "timeFrame"),
        "url": f.text("url"),
        "payload": item,
    }
    f.check()
    return row


def parse_field(item: Any, picklist_values: list[str] | None = None) -> JsonDict:
    f = _Fields(item)
    row = {
        "reference_name": f.text("referenceName", required=True),
        "name": f.text("name", required=True),
        "type": f.text("type", required=True),
        "usage": f.text("usage"),
        "read_only": f.boolean("readOnly"),
        "is_identity": f.boolean("isIdentity"),
        "is_picklist": f.boolean("isPicklist"),
        "picklist_id": f.text("picklistId"),
        "picklist_values": picklist_values,
        "payload": item,
    }
    f.check()
    return row


def parse_state(item: Any, project: str, work_item_type: str) -> JsonDict:
    f = _Fields(item)
    row = {
        "project": project,
        "work_item_type": work_item_type,
        "name": f.text("name", required=True),
        "category": f.text("category", required=True),
        "color": f.text("color"),
        "payload": item,
    }
    f.check()
    return row


def parse_member(item: Any, project: str, team_id: str, team_name: str) -> JsonDict:
    f = _Fields(item)
    row = {
        "team_id": team_id,
        "id": f.text("identity", "id", required=True),
        "project": project,
        "team_name": team_name,
        "display_name": f.text("identity", "displayName"),
        "unique_name": f.text("identity", "uniqueName"),
        "email": identity_email(item.get("identity")) if isinstance(item, dict) else None,
        "is_team_admin": bool(item.get("isTeamAdmin")) if isinstance(item, dict) else False,
        "payload": item,
    }
    f.check()
    return row


def parse_project(item: Any) -> JsonDict:
    f = _Fields(item)
    row = {
        "id": f.text("id", required=True),
        "name": f.text("name", required=True),
        "description": f.text("description"),
        "state": f.text("state"),
        "visibility": f.text("visibility"),
        "default_team_id": f.text("defaultTeam", "id"),
        "default_team_name": f.text("defaultTeam", "name"),
        "process": f.text("capabilities", "processTemplate", "templateName"),
        "last_update_time": _timestamp_at(f, ("lastUpdateTime",)),
        "url": f.text("url"),
        "payload": item,
    }
    f.check()
    return row


def _text_value(value: Any) -> str | None:
    return None if value is None else str(value)


def _timestamp(f: _Fields, field: str, *, required: bool = False) -> datetime | None:
    return _timestamp_at(f, ("fields", field), required=required)


def _timestamp_at(f: _Fields, path: tuple[str, ...], *, required: bool = False) -> datetime | None:
    raw = f.text(*path, required=required)
    if raw is None:
        return None
    try:
        return parse_azure_time(raw)
    except ValueError:
        f.problems.append(f"'{'.'.join(path)}' is not an ISO 8601 timestamp: {raw!r}"[:200])
        return None


def _attribute_time(f: _Fields, name: str) -> datetime | None:
    return _timestamp_at(f, ("attributes", name))


def item_key(item: Any, *, fallback: str) -> str:
    """A readable key for a quarantined item: its id (and rev) when it has them."""
    if isinstance(item, dict):
        parts = [f"{key}={item[key]}" for key in ("id", "rev") if isinstance(item.get(key), int | str)]
        if parts:
            return f"{fallback} {' '.join(parts)}"
    return fallback


def chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
