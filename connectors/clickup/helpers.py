"""HTTP (retries, rate limits, paging), errors and parsing of the ClickUp connector.

Retries reuse the GitHub connector's transport adapter and :class:`RetryPolicy`: ClickUp's
429 carries ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset`` (Unix seconds), so the
adapter waits until the reset; a ``Retry-After`` is honoured first; 500/502/503/504 and
network errors back off exponentially. Task listings page by ``page`` (from 0) until
``last_page`` is true or a page comes back empty (no count is trusted).

ClickUp answers errors as ``{"err": …, "ECODE": …}``; the ECODE tells a bad or revoked token
(``OAUTH_017/019/021/025/077``) from a token that may not read a Workspace or item
(``OAUTH_023/026/027/029…045``, which ClickUp also answers for ids that do not exist).
Every timestamp ClickUp sends is a string of Unix milliseconds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import requests

from connectors.clickup import settings
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
    "CANONICAL_KINDS",
    "ClickUpApiError",
    "ClickUpAuthError",
    "ClickUpClient",
    "ClickUpConfigError",
    "ClickUpError",
    "ClickUpRateLimitError",
    "MalformedItem",
    "RetryPolicy",
    "TaskContext",
    "parse_field",
    "parse_list",
    "parse_member",
    "parse_millis",
    "parse_status_history",
    "parse_task",
    "quarantine_row",
]

#: ECODEs of a token ClickUp does not accept (missing, invalid, revoked or expired).
TOKEN_ECODES = frozenset({"OAUTH_017", "OAUTH_018", "OAUTH_019", "OAUTH_021", "OAUTH_025", "OAUTH_077"})
#: ECODEs of a token that may not read the Workspace or the item (or the id does not exist).
TEAM_ECODES = frozenset({"OAUTH_023", "OAUTH_026", "OAUTH_027", *(f"OAUTH_0{n}" for n in range(29, 46))})


# -- errors -------------------------------------------------------------------------------


class ClickUpError(Exception):
    """Base of the connector's errors. Messages never contain the token."""


class ClickUpAuthError(ClickUpError):
    """ClickUp rejected the token, or the token may not read the Workspace or item asked for."""

    def __init__(
        self, message: str, *, ecode: str | None = None, permission: bool = False, detail: str = "", url: str = ""
    ) -> None:
        super().__init__(message)
        self.ecode = ecode
        self.permission = permission  # True: the token works but may not read this
        self.detail = detail  # what ClickUp said, e.g. "401 Team not authorized, OAUTH_027"
        self.url = url


class ClickUpApiError(ClickUpError):
    """ClickUp answered an error that retries did not fix (or could not be reached)."""

    def __init__(self, message: str, *, status: int | None, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class ClickUpRateLimitError(ClickUpApiError):
    """The rate limit would need a longer wait than allowed, or kept answering after retries."""


class ClickUpConfigError(ClickUpError):
    """The source's config names a Workspace or Space the token cannot see."""


# -- client -------------------------------------------------------------------------------


def error_body(response: requests.Response) -> tuple[str, str | None]:
    """ClickUp's ``(err, ECODE)`` from an error answer, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip(), None
    if isinstance(body, dict):
        message = str(body.get("err") or body.get("message") or body)[:300]
        ecode = body.get("ECODE")
        return message, ecode if isinstance(ecode, str) else None
    return str(body)[:200], None


class _TokenAuth(requests.auth.AuthBase):
    """``Authorization: pk_…`` for a personal token, ``Bearer …`` for an OAuth token (never logged)."""

    def __init__(self, token: str) -> None:
        self._token = token.strip()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self._token
        request.headers["Authorization"] = token if token.startswith("pk_") else f"Bearer {token}"
        return request

    def __repr__(self) -> str:
        return "_TokenAuth(<redacted>)"


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


class ClickUpClient:
    """ClickUp API v2 calls for one source: retries, page walks, errors that say what to do."""

    def __init__(self, base_url: str, token: str, *, source_name: str, policy: RetryPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.source_name = source_name
        self.policy = policy or RetryPolicy()
        self.requests_made = 0
        self._session = requests.Session()
        adapter = GitHubRetryAdapter(self.policy, context=f"ClickUp source '{source_name}'")
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.auth = _TokenAuth(token)
        self._session.headers.update({"Accept": "application/json", "User-Agent": settings.USER_AGENT})

    def get(self, path: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None) -> Any:
        """The JSON of ``GET path``; errors raised as :class:`ClickUpError`."""
        url = self.base_url + path
        try:
            response = self._session.get(url, params=params)
        except GitHubRateLimitError as exc:  # the shared adapter's "wait too long" answer
            raise ClickUpRateLimitError(
                f"ClickUp source '{self.source_name}' is rate limited for longer than the allowed "
                f"{self.policy.max_rate_limit_wait:.0f} s on {safe_url(url)}; run the load again later "
                "or use a token of a plan with a larger quota",
                status=exc.status,
                url=safe_url(url),
            ) from exc
        except requests.RequestException as exc:
            raise ClickUpApiError(
                f"ClickUp at {safe_url(self.base_url)} is unreachable for source '{self.source_name}' "
                f"({type(exc).__name__} after {_attempts(self.policy.max_attempts)}); check the base URL "
                "(https://api.clickup.com) and the network",
                status=None,
                url=safe_url(url),
            ) from exc
        self.requests_made += 1
        self.raise_for_status(response)
        try:
            return response.json()
        except ValueError as exc:
            raise ClickUpApiError(
                f"ClickUp answered {response.status_code} with a body that is not JSON for "
                f"{safe_url(response.url)} (source '{self.source_name}')",
                status=response.status_code,
                url=safe_url(response.url),
            ) from exc

    def task_pages(self, list_id: str, params: Mapping[str, Any]) -> Iterator[list[Any]]:
        """Pages of ``GET /list/{list_id}/task`` from page 0 until ``last_page`` is true or a
        page is empty. A body without a ``tasks`` array is an error (not an empty list)."""
        path = settings.LIST_TASKS.format(list_id=list_id)
        for page in range(settings.MAX_PAGES):
            body = self.get(path, {**params, "page": page})
            tasks = body.get("tasks") if isinstance(body, dict) else None
            if not isinstance(tasks, list):
                raise ClickUpApiError(
                    f"ClickUp answered a task page without a 'tasks' array for list {list_id} "
                    f"(page {page}, source '{self.source_name}'); the API may have changed",
                    status=200,
                    url=safe_url(self.base_url + path),
                )
            if not tasks:
                return
            yield tasks
            if body.get("last_page") is True:
                return
        raise ClickUpApiError(
            f"ClickUp list {list_id} did not end after {settings.MAX_PAGES} pages (source "
            f"'{self.source_name}'); the API never answered last_page",
            status=200,
            url=safe_url(self.base_url + path),
        )

    def raise_for_status(self, response: requests.Response) -> None:
        """Turn an error answer (after the adapter's retries) into a :class:`ClickUpError`."""
        status = response.status_code
        if status < 400:
            return
        url = safe_url(response.url)
        message, ecode = error_body(response)
        source = self.source_name
        said = f"{status} {message}" + (f", {ecode}" if ecode else "")
        if status in (401, 403) and (ecode in TOKEN_ECODES or (ecode is None and status == 401)):
            if ecode == "OAUTH_017":
                problem = "was not sent"
            elif ecode in ("OAUTH_025", None):
                problem = "was rejected as invalid"
            else:
                problem = "has expired or was revoked"
            raise ClickUpAuthError(
                f"the ClickUp token for source '{source}' {problem} ({said}); generate a new personal "
                "token in ClickUp (Settings › Apps › API Token) and update the source with "
                "`pulse source update`",
                ecode=ecode,
                detail=said,
                url=url,
            )
        if status in (401, 403) and not is_rate_limited(status, response.headers, message):
            raise ClickUpAuthError(
                f"the ClickUp token for source '{source}' may not read {url} ({said}): the id does not "
                "exist in the Workspace or the token's user has no access to it; check the source's "
                "workspace_id and space_ids, and share the Spaces with that user",
                ecode=ecode,
                permission=True,
                detail=said,
                url=url,
            )
        if is_rate_limited(status, response.headers, message):
            raise ClickUpRateLimitError(
                f"ClickUp source '{source}' stayed rate limited after {self.policy.max_rate_limit_retries} "
                f"waits ({said}) on {url}; run the load again later",
                status=status,
                url=url,
            )
        raise ClickUpApiError(
            f"ClickUp answered {said} for {url} (source '{source}')"
            + (f" after {_attempts(self.policy.max_attempts)}" if status in RETRYABLE_SERVER_ERRORS else ""),
            status=status,
            url=url,
        )


# -- parsing ------------------------------------------------------------------------------


def parse_millis(value: Any) -> datetime | None:
    """ClickUp's Unix milliseconds (a string of digits, or a number) as aware UTC; None stays None.

    Raises ValueError for anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a Unix time in milliseconds: {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        number = float(value.strip())
    else:
        raise ValueError(f"not a Unix time in milliseconds: {value!r}")
    return datetime.fromtimestamp(number / 1000, UTC)


class _ClickUpFields(_Fields):
    """The GitHub connector's typed-field reader, plus ClickUp's millisecond timestamps and ids."""

    def millis(self, *path: str, required: bool = False) -> datetime | None:
        ok, value = self._get(path, required)
        if not ok or value is None:
            return None
        try:
            return parse_millis(value)
        except ValueError:
            self.problems.append(f"'{'.'.join(path)}' is not a Unix time in milliseconds: {value!r}"[:200])
            return None

    def ident(self, *path: str, required: bool = False) -> str | None:
        """An id ClickUp sends as a string or a number, as text."""
        ok, value = self._get(path, required)
        if not ok or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.problems.append(f"'{'.'.join(path)}' is not an id: {value!r}"[:200])
            return None
        return str(value)

    def number(self, *path: str) -> float | None:
        ok, value = self._get(path, False)
        if not ok or value is None:
            return None
        try:
            return _to_float(value)
        except ValueError:
            self.problems.append(f"'{'.'.join(path)}' is not a number: {value!r}"[:200])
            return None


#: What each canonical column holds (the raw column type follows from it).
CANONICAL_KINDS: dict[str, str] = {
    "story_points": "number",
    "sprint": "sprint",
    "dmt_ac_quality": "text",
    "dmt_unit_test_task": "boolean",
    "dmt_unit_test_status": "text",
    "dmt_coverage_pct": "number",
    "dmt_pr_links": "text",
    "dmt_ci_evidence": "text",
    "dmt_reviewer_signoff": "boolean",
    "dmt_exception": "boolean",
    "dmt_exception_reason": "text",
    "dmt_exception_approver": "email",
    "dmt_exception_expires": "date",
}


@dataclass
class TaskContext:
    """What parsing a task needs beyond the task: the field mappings and the Workspace's layout."""

    field_mappings: dict[str, str] = field(default_factory=dict)  # canonical name -> custom field id
    sprint_lists: dict[str, datetime | None] = field(default_factory=dict)  # sprint list id -> start
    task_types: dict[int, str] = field(default_factory=dict)  # custom_item_id -> name
    space_names: dict[str, str] = field(default_factory=dict)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError(value)


def _option_label(custom: Mapping[str, Any], value: Any) -> str:
    """A drop-down value (the option's ``orderindex``, or its id) as the option's label."""
    config = custom.get("type_config") if isinstance(custom.get("type_config"), dict) else {}
    options = config.get("options") if isinstance(config, dict) else None
    if not isinstance(options, list):
        raise ValueError("the field has no type_config.options to resolve the value")
    for option in options:
        if not isinstance(option, dict):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and option.get("orderindex") == value:
            return str(option.get("name"))
        if isinstance(value, str) and (option.get("id") == value or str(option.get("orderindex")) == value):
            return str(option.get("name"))
    raise ValueError(f"value {value!r} is none of the field's options")


def custom_field_value(custom: Mapping[str, Any]) -> Any:
    """The value of one entry of ``task.custom_fields``, read by its type: drop-downs resolved to
    labels, checkboxes to booleans, numbers to floats, dates to datetimes, users to emails.
    None when the field is empty; ValueError when the value does not fit the type."""
    if "value" not in custom:
        return None
    value = custom.get("value")
    if value is None or value == "" or value == []:
        return None
    kind = custom.get("type")
    if kind == "drop_down":
        return _option_label(custom, value)
    if kind == "labels":
        if not isinstance(value, list):
            raise ValueError(f"labels value is not a list: {value!r}")
        return [_option_label(custom, v) for v in value]
    if kind == "checkbox":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"checkbox value is not true/false: {value!r}")
    if kind in ("number", "currency", "emoji"):
        return _to_float(value)
    if kind == "date":
        return parse_millis(value)
    if kind == "users":
        if not isinstance(value, list):
            raise ValueError(f"users value is not a list: {value!r}")
        return [str(u.get("email")) for u in value if isinstance(u, dict) and u.get("email")]
    if kind == "tasks":
        if not isinstance(value, list):
            raise ValueError(f"tasks value is not a list: {value!r}")
        return [str(t.get("id")) for t in value if isinstance(t, dict) and t.get("id")]
    return value


def _truthy(label: str) -> bool:
    text = label.strip().lower()
    if text in ("yes", "true", "done", "signed off", "approved", "1"):
        return True
    if text in ("no", "false", "not started", "0", "none"):
        return False
    raise ValueError(f"{label!r} is no yes/no value")


def canonical_value(kind: str, value: Any) -> Any:
    """A custom field's value as the canonical column ``kind`` wants it (ValueError if it cannot)."""
    if value is None:
        return None
    if kind == "number":
        return _to_float(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else _truthy(str(value))
    if kind == "date":
        if isinstance(value, datetime):
            return value.astimezone(UTC).date()
        if isinstance(value, str):
            return date.fromisoformat(value.strip()[:10])
        raise ValueError(f"not a date: {value!r}")
    if kind == "email":
        if isinstance(value, list):
            return value[0] if value else None
        return str(value)
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _sprint_of(f: _ClickUpFields, ctx: TaskContext, home: str | None) -> str | None:
    """The task's sprint: of its lists (home and ``locations``), the sprint list that starts last."""
    ids = [home] if home else []
    locations = f.item.get("locations")
    if isinstance(locations, list):
        ids += [str(loc.get("id")) for loc in locations if isinstance(loc, dict) and loc.get("id") is not None]
    floor = datetime.min.replace(tzinfo=UTC)
    sprints = [i for i in ids if i in ctx.sprint_lists]
    return max(sprints, key=lambda i: (ctx.sprint_lists[i] or floor, i)) if sprints else None


def parse_task(item: Any, ctx: TaskContext) -> JsonDict:
    """A task of ``GET /list/{id}/task`` as a ``tasks`` row; MalformedItem names every problem."""
    f = _ClickUpFields(item)
    task_id = f.ident("id", required=True)
    custom_item = f.integer("custom_item_id")
    assignees = item.get("assignees") if isinstance(item.get("assignees"), list) else []
    emails = [str(a["email"]) for a in assignees if isinstance(a, dict) and a.get("email")]
    links: list[str] = []
    for link in item.get("linked_tasks") or []:
        if isinstance(link, dict):
            other = link.get("link_id") if str(link.get("task_id")) == task_id else link.get("task_id")
            if other is not None and str(other) not in links:
                links.append(str(other))
    home = f.ident("list", "id", required=True)
    space_id = f.ident("space", "id", required=True)
    folder = item.get("folder") if isinstance(item.get("folder"), dict) else {}
    locations = [
        str(loc["id"]) for loc in item.get("locations") or [] if isinstance(loc, dict) and loc.get("id") is not None
    ]
    row: JsonDict = {
        "id": task_id,
        "custom_id": f.text("custom_id"),
        "name": f.text("name"),
        "status": f.text("status", "status", required=True),
        "status_type": f.text("status", "type"),
        "custom_item_id": custom_item,
        "task_type": _task_type(custom_item, ctx),
        "date_created": f.millis("date_created", required=True),
        "date_updated": f.millis("date_updated", required=True),
        "date_closed": f.millis("date_closed"),
        "date_done": f.millis("date_done"),
        "archived": f.boolean("archived"),
        "creator_id": f.integer("creator", "id"),
        "creator_email": f.text("creator", "email"),
        "assignee_email": emails[0] if emails else None,
        "assignee_emails": "\n".join(emails) or None,
        "parent_id": f.ident("parent"),
        "top_level_parent_id": f.ident("top_level_parent"),
        "list_id": home,
        "folder_id": None if folder.get("hidden") else f.ident("folder", "id"),
        "space_id": space_id,
        "space_name": ctx.space_names.get(space_id or ""),
        "location_list_ids": locations,
        "linked_task_ids": links,
        "tags": [str(t.get("name")) for t in item.get("tags") or [] if isinstance(t, dict)],
        "points": f.number("points"),
        "url": f.text("url"),
    }
    row.update(_canonical_columns(f, ctx, home))
    row["payload"] = item
    f.check()
    return row


def _task_type(custom_item: int | None, ctx: TaskContext) -> str:
    if custom_item is None or custom_item == 0:
        return "Task"
    if custom_item == 1:
        return "Milestone"
    return ctx.task_types.get(custom_item, f"Custom item {custom_item}")


def _canonical_columns(f: _ClickUpFields, ctx: TaskContext, home: str | None) -> JsonDict:
    entries = f.item.get("custom_fields")
    by_id = {str(c.get("id")): c for c in entries if isinstance(c, dict)} if isinstance(entries, list) else {}
    out: JsonDict = {}
    for canonical, kind in CANONICAL_KINDS.items():
        field_id = ctx.field_mappings.get(canonical)
        if kind == "sprint" and (field_id is None or field_id.startswith("folder:")):
            out[canonical] = _sprint_of(f, ctx, home)
            continue
        custom = by_id.get(field_id or "")
        if custom is None:
            out[canonical] = None
            continue
        try:
            out[canonical] = canonical_value("text" if kind == "sprint" else kind, custom_field_value(custom))
        except ValueError as exc:
            f.problems.append(f"custom field '{custom.get('name')}' ({field_id}) for {canonical}: {exc}"[:300])
            out[canonical] = None
    return out


def parse_status_history(task_id: str, body: Any) -> list[JsonDict]:
    """``time_in_status`` of one task as ``task_status_history`` rows, one per status.

    ClickUp keeps one entry per status: when it was *first* entered (``since``) and the total
    minutes spent in it; the current status also says when its current stint began.
    """
    f = _ClickUpFields(body)
    current = f.text("current_status", "status")
    current_since = f.millis("current_status", "total_time", "since")
    history = body.get("status_history") if isinstance(body, dict) else None
    if not isinstance(history, list):
        f.problems.append("missing required field 'status_history'")
        history = []
    rows: dict[str, JsonDict] = {}
    for entry in history:
        e = _ClickUpFields(entry)
        status = e.text("status", required=True)
        row = {
            "task_id": task_id,
            "status": status,
            "status_type": e.text("type"),
            "orderindex": e.integer("orderindex"),
            "since": e.millis("total_time", "since", required=True),
            "total_minutes": e.integer("total_time", "by_minute"),
            "is_current": status == current,
            "current_since": current_since if status == current else None,
            "payload": entry,
        }
        f.problems += e.problems
        if status is not None and not e.problems:
            rows[status] = row
    if current is not None and current not in rows and current_since is not None:
        rows[current] = {
            "task_id": task_id,
            "status": current,
            "status_type": None,
            "orderindex": None,
            "since": current_since,
            "total_minutes": f.integer("current_status", "total_time", "by_minute"),
            "is_current": True,
            "current_since": current_since,
            "payload": body.get("current_status"),
        }
    f.check()
    return list(rows.values())


def parse_list(item: Any, *, space: JsonDict, is_sprint: bool) -> JsonDict:
    f = _ClickUpFields(item)
    folder = item.get("folder") if isinstance(item.get("folder"), dict) else {}
    hidden = bool(folder.get("hidden"))
    row = {
        "id": f.ident("id", required=True),
        "name": f.text("name", required=True),
        "space_id": str(space.get("id")),
        "space_name": space.get("name"),
        "folder_id": None if hidden else f.ident("folder", "id"),
        "folder_name": None if hidden else f.text("folder", "name"),
        "is_sprint": is_sprint,
        "start_date": f.millis("start_date"),
        "due_date": f.millis("due_date"),
        "orderindex": f.integer("orderindex"),
        "archived": f.boolean("archived"),
        "task_count": f.integer("task_count"),
        "payload": item,
    }
    f.check()
    return row


def parse_field(item: Any, *, list_ids: list[str], canonical_name: str | None) -> JsonDict:
    f = _ClickUpFields(item)
    config: JsonDict = item["type_config"] if isinstance(item.get("type_config"), dict) else {}
    options: list[Any] = config["options"] if isinstance(config.get("options"), list) else []
    row = {
        "id": f.ident("id", required=True),
        "name": f.text("name", required=True),
        "type": f.text("type", required=True),
        "options": [
            {"id": o.get("id"), "name": o.get("name"), "orderindex": o.get("orderindex")}
            for o in options
            if isinstance(o, dict)
        ],
        "required": f.boolean("required"),
        "list_ids": sorted(list_ids),
        "canonical_name": canonical_name,
        "payload": item,
    }
    f.check()
    return row


def parse_member(item: Any) -> JsonDict:
    """A member of ``GET /team`` (``{"user": {...}}``) as a ``members`` row."""
    user = item.get("user") if isinstance(item, dict) else None
    f = _ClickUpFields(user)
    row = {
        "id": f.integer("id", required=True),
        "username": f.text("username"),
        "email": f.text("email"),
        "initials": f.text("initials"),
        "role": f.integer("role"),
        "payload": item,
    }
    f.check()
    return row


def item_key(item: Any) -> str:
    """A readable key for a quarantined task: its ``id`` when it has one."""
    if isinstance(item, dict) and isinstance(item.get("id"), str | int) and not isinstance(item.get("id"), bool):
        return f"task id={item['id']}"
    return "task"
