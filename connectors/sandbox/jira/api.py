"""Jira Cloud's REST API (the endpoints Pulse reads), answered from the tenant's planning world.

The sandbox server hands every request under ``/jira`` to :func:`handle`; a source's base URL
is ``{sandbox.url}/jira``. See README.md in this folder for the endpoints and their quirks.

Per request, in Jira's order: authentication (Basic ``<email>:atl_sandbox_<tenant>`` or
``Bearer atl_sandbox_<tenant>``; 401 otherwise), the rate limit (``server.tool_rate_limit``
requests a minute per token, ``X-RateLimit-*`` headers on every answer, 429 with
``Retry-After`` past it), then one injected fault (``server.faults``), then the answer.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.sandbox.jira import jql
from connectors.sandbox.jira.render import CALLER_TIME_ZONE, Site, malformed_issue, select_fields, world_version
from connectors.sandbox.tools import (
    Caller,
    ToolRequest,
    ToolResponse,
    basic_credentials,
    bearer_token,
    caller_from_token,
)
from connectors.sandbox.work.world import Project, WorkItem, WorkWorld

if TYPE_CHECKING:
    from connectors.sandbox.server import SandboxServer

JsonDict = dict[str, Any]

#: Histories ``expand=changelog`` embeds per issue (newest first); the rest need the changelog endpoints.
EMBEDDED_HISTORIES = 20
SEARCH_DEFAULT = 50
#: ``maxResults`` caps of ``/search/jql``: ids only, with fields, with ``expand=changelog``.
SEARCH_MAX_IDS, SEARCH_MAX, SEARCH_MAX_CHANGELOG = 5000, 100, 50
CHANGELOG_MAX = 100
BULK_MAX_ISSUES, BULK_DEFAULT, BULK_MAX = 1000, 1000, 10000
AGILE_MAX = 50
PROJECTS_MAX = 50
USERS_DEFAULT, USERS_MAX = 50, 1000

RETIRED_SEARCH = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
BAD_CREDENTIALS = b"Client must be authenticated to access this resource."


def errors(status: int, *messages: str, headers: dict[str, str] | None = None) -> ToolResponse:
    """Jira's error shape: ``{"errorMessages": [...], "errors": {}}``."""
    return ToolResponse(status, {"errorMessages": list(messages), "errors": {}}, dict(headers or {}))


class BadRequest(Exception):
    """Raised by a handler to answer 400 (or ``status``) with Jira's error shape."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Context:
    server: SandboxServer
    request: ToolRequest
    caller: Caller
    world: WorkWorld
    site: Site

    def visible_projects(self) -> list[Project]:
        """Projects the caller may browse: all, or none for a token without permissions."""
        return list(self.world.projects) if self.caller.can_read else []

    def find_project(self, key_or_id: str) -> Project | None:
        return next((p for p in self.visible_projects() if key_or_id.upper() == p.key or key_or_id == str(p.id)), None)

    def find_issue(self, id_or_key: str) -> WorkItem | None:
        if not self.caller.can_read:
            return None
        index = self.site.index
        item = index.by_id.get(int(id_or_key)) if id_or_key.isdigit() else index.by_key.get(id_or_key.upper())
        return item


# -- entry point ---------------------------------------------------------------------------------


def handle(server: SandboxServer, request: ToolRequest) -> ToolResponse:
    """Answer one request under ``/jira`` (``request.path`` is the path below it)."""
    from connectors.sandbox.server import TOOL_FAULTS

    authorization = request.headers.get("authorization")
    caller, token = _authenticate(authorization)
    limit, remaining, reset = server.rate_window(f"jira:{token or 'anonymous'}", server.tool_rate_limit)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "X-Arequestid": uuid.uuid4().hex[:12],
        "Atl-Traceid": uuid.uuid4().hex,
    }
    if caller is None:
        response = _bad_credentials() if authorization else errors(401, NOT_AUTHENTICATED)
        return _finish(response, headers, None)
    if remaining < 0:
        wait = max(1, reset - int(time.time()))
        response = errors(
            429, "Rate limit exceeded.", headers={"Retry-After": str(wait), "RateLimit-Reason": "jira-burst-based"}
        )
        return _finish(response, headers, caller.tenant, "rate_limited")
    fault = server.faults.take(request.path, TOOL_FAULTS)
    if fault == "expired_token":
        return _finish(_bad_credentials(), headers, caller.tenant, fault)
    if fault == "too_many_requests":
        response = errors(
            429, "Rate limit exceeded.", headers={"Retry-After": "1", "RateLimit-Reason": "jira-burst-based"}
        )
        return _finish(response, headers, caller.tenant, fault)
    if fault == "server_errors":
        return _finish(errors(500, "Internal server error"), headers, caller.tenant, fault)
    if fault == "slow_responses":
        time.sleep(server.faults.slow_seconds)
    version = 2 if request.path.startswith("/rest/api/2/") else 3
    with server.locked():
        world = server.work_world(caller.tenant)
        context = Context(server, request, caller, world, Site(world, request.base_url, version))
        response = _route(context)
    return _finish(response, headers, caller.tenant, fault)


def _finish(
    response: ToolResponse, headers: dict[str, str], tenant: str | None, fault: str | None = None
) -> ToolResponse:
    response.headers = {**headers, **response.headers}
    response.tenant = tenant
    response.fault = fault
    return response


def _bad_credentials() -> ToolResponse:
    """What Jira Cloud answers a wrong, expired or revoked API token: plain text, not JSON."""
    return ToolResponse(
        401,
        BAD_CREDENTIALS,
        {
            "content-type": "text/plain;charset=UTF-8",
            "X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
            "WWW-Authenticate": 'OAuth realm="https%3A%2F%2Fsandbox.atlassian.net"',
        },
    )


def _authenticate(authorization: str | None) -> tuple[Caller | None, str | None]:
    """The caller and the token it used; ``(None, token or None)`` when it is not ours."""
    basic = basic_credentials(authorization)
    if basic is not None:
        email, token = basic
        caller = caller_from_token("jira", token)
        if caller is None or "@" not in email:
            return None, token
        return Caller(caller.tenant, caller.can_read, email=email), token
    bearer = bearer_token(authorization)
    if bearer is None:
        return None, None
    return caller_from_token("jira", bearer), bearer


# -- routing ---------------------------------------------------------------------------------------

Handler = Callable[[Context, "re.Match[str]"], ToolResponse]
_ROUTES: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []


def route(methods: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ROUTES.append((frozenset(methods.split()), re.compile(f"^{pattern}/?$"), handler))
        return handler

    return register


def _route(context: Context) -> ToolResponse:
    path, method = context.request.path, context.request.method
    allowed = False
    for methods, pattern, handler in _ROUTES:
        match = pattern.match(path)
        if match is None:
            continue
        allowed = True
        if method in methods or (method == "HEAD" and "GET" in methods):
            try:
                return handler(context, match)
            except BadRequest as exc:
                return errors(exc.status, str(exc))
    if allowed:
        return errors(405, f"Method {method} is not allowed on {path}.")
    return errors(404, f"No REST resource at {path} in the Jira sandbox (see connectors/sandbox/jira/README.md).")


def _int(context: Context, name: str, default: int, maximum: int, body: JsonDict | None = None) -> int:
    raw = body.get(name) if body is not None else context.request.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"The value '{raw}' is not a valid number for the parameter '{name}'.") from None
    if value < 0:
        raise BadRequest(f"The parameter '{name}' must not be negative.")
    return min(value, maximum)


def _body(context: Context) -> JsonDict:
    try:
        body = context.request.json()
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _values_page(items: list[Any], start: int, size: int, *, total: bool = True) -> JsonDict:
    """The ``startAt``/``maxResults``/``isLast``/``values`` envelope of the agile and project lists."""
    page = items[start : start + size]
    out: JsonDict = {"maxResults": size, "startAt": start}
    if total:
        out["total"] = len(items)
    out["isLast"] = start + len(page) >= len(items)
    out["values"] = page
    return out


# -- search ------------------------------------------------------------------------------------------


@route("GET POST", r"/rest/api/[23]/search")
def retired_search(context: Context, match: re.Match[str]) -> ToolResponse:
    return errors(410, RETIRED_SEARCH)


class _Orders:
    """Sorted search results per (world version, query), so each page costs a bisection."""

    def __init__(self, size: int = 16) -> None:
        self._cache: OrderedDict[tuple[Any, ...], tuple[list[tuple[float, ...]], list[WorkItem]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(
        self, key: tuple[Any, ...], build: Callable[[], tuple[list[tuple[float, ...]], list[WorkItem]]]
    ) -> tuple[list[tuple[float, ...]], list[WorkItem]]:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = build()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return value


_ORDERS = _Orders()


def _token(query_hash: str, last: tuple[float, ...]) -> str:
    raw = json.dumps({"q": query_hash, "after": list(last)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(token: str, query_hash: str) -> tuple[float, ...]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if raw["q"] != query_hash:
            raise ValueError("another query")
        return tuple(float(v) for v in raw["after"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise BadRequest(
            "The provided next page token is invalid or expired, or belongs to another query: "
            "repeat the search with the same JQL, or start again without a token."
        ) from exc


@route("GET POST", r"/rest/api/[23]/search/jql")
def search(context: Context, match: re.Match[str]) -> ToolResponse:
    """``/search/jql``: token paging (``nextPageToken``, ``isLast``, no ``total``); ids only
    unless ``fields`` are named; ``expand=changelog`` embeds the newest histories."""
    request = context.request
    if request.method == "POST":
        body = _body(context)
        text = body.get("jql") or ""
        token = body.get("nextPageToken")
        requested = body.get("fields") or []
        expand = body.get("expand") or ""
        requested = [requested] if isinstance(requested, str) else [str(f) for f in requested]
        expand = ",".join(expand) if isinstance(expand, list) else str(expand)
    else:
        body = None
        text = request.param("jql") or ""
        token = request.param("nextPageToken")
        requested = request.params("fields")
        expand = ",".join(request.params("expand"))
    wanted = select_fields(requested)
    changelog = "changelog" in [part.strip() for part in expand.split(",")]
    cap = SEARCH_MAX_IDS if wanted is None else (SEARCH_MAX_CHANGELOG if changelog else SEARCH_MAX)
    size = max(1, _int(context, "maxResults", SEARCH_DEFAULT, cap, body))
    now = datetime.now(UTC)
    try:
        query = jql.parse(str(text))
        predicate = jql.compile_query(query, context.visible_projects(), zone=CALLER_TIME_ZONE, now=now)
    except jql.JqlError as exc:
        raise BadRequest(str(exc)) from None
    world = context.world
    ranks = {p.key: n for n, p in enumerate(sorted(world.projects, key=lambda p: p.key))}
    sort_key = jql.sort_key(query, ranks)

    visible = {p.key for p in context.visible_projects()}

    def build() -> tuple[list[tuple[float, ...]], list[WorkItem]]:
        chosen = sorted((i for i in world.items if i.project_key in visible and predicate(i)), key=sort_key)
        return [sort_key(item) for item in chosen], chosen

    query_hash = hashlib.sha256(" ".join(str(text).split()).encode()).hexdigest()[:16]
    cache_key = (
        id(world),
        world_version(world),
        query_hash,
        context.caller.can_read,
        now.replace(second=0, microsecond=0),
    )
    keys, items = _ORDERS.get(cache_key, build)
    start = bisect.bisect_right(keys, _untoken(str(token), query_hash)) if token else 0
    page = items[start : start + size]
    broken = world.malformed_target() if context.server.faults.malformed_work_item and wanted else None
    rendered = []
    for item in page:
        issue = context.site.issue(item, wanted, changelog=changelog, embedded=EMBEDDED_HISTORIES)
        rendered.append(malformed_issue(issue) if item is broken else issue)
    out: JsonDict = {"issues": rendered}
    is_last = start + len(page) >= len(items)
    if not is_last:
        out["nextPageToken"] = _token(query_hash, keys[start + len(page) - 1])
    out["isLast"] = is_last
    return ToolResponse(200, out)


# -- issues and changelogs ------------------------------------------------------------------------


def _issue_or_404(context: Context, id_or_key: str) -> WorkItem:
    item = context.find_issue(id_or_key)
    if item is None:
        raise BadRequest("Issue does not exist or you do not have permission to see it.", status=404)
    return item


@route("GET", r"/rest/api/[23]/issue/(?P<issue>[^/]+)")
def get_issue(context: Context, match: re.Match[str]) -> ToolResponse:
    item = _issue_or_404(context, match["issue"])
    wanted = select_fields(context.request.params("fields") or ["*all"])
    changelog = "changelog" in ",".join(context.request.params("expand")).split(",")
    return ToolResponse(200, context.site.issue(item, wanted, changelog=changelog, embedded=CHANGELOG_MAX))


@route("GET", r"/rest/api/[23]/issue/(?P<issue>[^/]+)/changelog")
def issue_changelog(context: Context, match: re.Match[str]) -> ToolResponse:
    """``/issue/{idOrKey}/changelog``: oldest first, ``startAt``/``maxResults`` (≤ 100)/``isLast``."""
    item = _issue_or_404(context, match["issue"])
    start = _int(context, "startAt", 0, 10**9)
    size = max(1, _int(context, "maxResults", CHANGELOG_MAX, CHANGELOG_MAX))
    histories = context.site.histories(item)
    page = histories[start : start + size]
    url = f"{context.request.base_url}{context.request.path}"
    out: JsonDict = {"self": f"{url}?maxResults={size}&startAt={start}"}
    if start + len(page) < len(histories):
        out["nextPage"] = f"{url}?maxResults={size}&startAt={start + len(page)}"
    out |= {
        "maxResults": size,
        "startAt": start,
        "total": len(histories),
        "isLast": start + len(page) >= len(histories),
        "values": page,
    }
    return ToolResponse(200, out)


@route("POST", r"/rest/api/3/changelog/bulkfetch")
def bulk_changelog(context: Context, match: re.Match[str]) -> ToolResponse:
    """``POST /changelog/bulkfetch``: the histories of up to 1000 issues, ``maxResults`` histories
    a page (an issue's may continue on the next page), paged by ``nextPageToken``."""
    body = _body(context)
    wanted = body.get("issueIdsOrKeys")
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= BULK_MAX_ISSUES:
        raise BadRequest(f"issueIdsOrKeys must list between 1 and {BULK_MAX_ISSUES} issue ids or keys.")
    field_ids = body.get("fieldIds") or []
    if not isinstance(field_ids, list) or len(field_ids) > 10:
        raise BadRequest("fieldIds must list at most 10 field ids.")
    size = max(1, _int(context, "maxResults", BULK_DEFAULT, BULK_MAX, body))
    flat: list[tuple[str, JsonDict]] = []
    for ref in wanted:
        item = context.find_issue(str(ref))
        if item is None:
            continue  # issues the caller cannot see are left out, as Jira does
        for history in context.site.histories(item):
            if field_ids:
                items = [entry for entry in history["items"] if entry.get("fieldId") in field_ids]
                if not items:
                    continue
                history = {**history, "items": items}
            flat.append((str(item.id), history))
    request_hash = hashlib.sha256(json.dumps([wanted, field_ids]).encode()).hexdigest()[:16]
    token = body.get("nextPageToken")
    start = int(_untoken(str(token), request_hash)[0]) if token else 0
    page = flat[start : start + size]
    logs: list[JsonDict] = []
    for issue_id, history in page:
        if logs and logs[-1]["issueId"] == issue_id:
            logs[-1]["changeHistories"].append(history)
        else:
            logs.append({"issueId": issue_id, "changeHistories": [history]})
    out: JsonDict = {"issueChangeLogs": logs}
    if start + len(page) < len(flat):
        out["nextPageToken"] = _token(request_hash, (float(start + len(page)),))
    return ToolResponse(200, out)


# -- site metadata -----------------------------------------------------------------------------------


@route("GET", r"/rest/api/[23]/field")
def list_fields(context: Context, match: re.Match[str]) -> ToolResponse:
    return ToolResponse(200, context.site.fields())


@route("GET", r"/rest/api/[23]/status")
def list_statuses(context: Context, match: re.Match[str]) -> ToolResponse:
    return ToolResponse(200, context.site.statuses())


@route("GET", r"/rest/api/[23]/myself")
def myself(context: Context, match: re.Match[str]) -> ToolResponse:
    return ToolResponse(200, context.site.myself(context.caller.email))


@route("GET", r"/rest/api/[23]/users/search")
def search_users(context: Context, match: re.Match[str]) -> ToolResponse:
    """``/users/search``: a plain list, ``startAt``/``maxResults``; an empty page ends it."""
    start = _int(context, "startAt", 0, 10**9)
    size = _int(context, "maxResults", USERS_DEFAULT, USERS_MAX)
    users = context.site.users()
    wanted = context.request.param("accountId")
    if wanted:
        users = [u for u in users if u["accountId"] == wanted]
    return ToolResponse(200, users[start : start + size])


@route("GET", r"/rest/api/[23]/project/search")
def search_projects(context: Context, match: re.Match[str]) -> ToolResponse:
    start = _int(context, "startAt", 0, 10**9)
    size = max(1, _int(context, "maxResults", PROJECTS_MAX, PROJECTS_MAX))
    keys = {k.upper() for value in context.request.params("keys") for k in value.split(",") if k}
    projects = [p for p in context.visible_projects() if not keys or p.key in keys]
    values = [context.site.project(p) for p in projects]
    page = _values_page(values, start, size)
    url = f"{context.request.base_url}{context.request.path}"
    out: JsonDict = {"self": f"{url}?maxResults={size}&startAt={start}"}
    if not page["isLast"]:
        out["nextPage"] = f"{url}?maxResults={size}&startAt={start + size}"
    return ToolResponse(200, out | page)


@route("GET", r"/rest/api/[23]/project/(?P<project>[^/]+)")
def get_project(context: Context, match: re.Match[str]) -> ToolResponse:
    project = context.find_project(match["project"])
    if project is None:
        raise BadRequest(f"No project could be found with key '{match['project']}'.", status=404)
    return ToolResponse(200, context.site.project(project, full=True))


# -- agile -------------------------------------------------------------------------------------------


@route("GET", r"/rest/agile/1\.0/board")
def list_boards(context: Context, match: re.Match[str]) -> ToolResponse:
    start = _int(context, "startAt", 0, 10**9)
    size = max(1, _int(context, "maxResults", AGILE_MAX, AGILE_MAX))
    projects = context.visible_projects()
    wanted = context.request.param("projectKeyOrId")
    if wanted:
        project = context.find_project(wanted)
        if project is None:
            raise BadRequest(f"No project could be found with key '{wanted}'.")
        projects = [project]
    kind = context.request.param("type")
    boards = [context.site.board(p) for p in projects]
    boards = [b for b in boards if not kind or b["type"] in kind.split(",")]
    return ToolResponse(200, _values_page(boards, start, size))


def _board_project(context: Context, board: str) -> Project:
    project = None
    if board.isdigit():
        project = next((p for p in context.visible_projects() if context.site.board_id(p) == int(board)), None)
    if project is None:
        raise BadRequest("Board does not exist or you do not have permission to see it.", status=404)
    return project


@route("GET", r"/rest/agile/1\.0/board/(?P<board>[^/]+)")
def get_board(context: Context, match: re.Match[str]) -> ToolResponse:
    return ToolResponse(200, context.site.board(_board_project(context, match["board"])))


@route("GET", r"/rest/agile/1\.0/board/(?P<board>[^/]+)/sprint")
def board_sprints(context: Context, match: re.Match[str]) -> ToolResponse:
    """A board's sprints, oldest first, ``state`` filtered; ``startAt``/``maxResults``/``isLast``
    (no ``total``, as Jira)."""
    project = _board_project(context, match["board"])
    start = _int(context, "startAt", 0, 10**9)
    size = max(1, _int(context, "maxResults", AGILE_MAX, AGILE_MAX))
    states = {s.strip() for value in context.request.params("state") for s in value.split(",") if s.strip()}
    unknown = states - {"future", "active", "closed"}
    if unknown:
        raise BadRequest(f"The sprint state '{sorted(unknown)[0]}' is not valid; use future, active or closed.")
    clock = context.world.clock
    sprints = sorted((s for s in context.world.sprints if s.project_key == project.key), key=lambda s: (s.start, s.id))
    values = [context.site.sprint(s) for s in sprints if not states or s.state(clock) in states]
    return ToolResponse(200, _values_page(values, start, size, total=False))
