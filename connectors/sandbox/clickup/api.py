"""ClickUp API v2, answered from a tenant's planning world (see ``workspace.py`` for the shapes).

The sandbox server hands every request under ``/clickup`` to :func:`handle`; a source's base
URL is ``{sandbox.url}/clickup`` and requests go to ``{base}/api/v2/...``, as on
``https://api.clickup.com``.

Authentication is ClickUp's: ``Authorization: pk_sandbox_<tenant>`` (a personal token, no
scheme) or ``Authorization: Bearer pk_sandbox_<tenant>`` (how OAuth tokens are sent). Errors
are ClickUp's ``{"err": …, "ECODE": …}``:

=======================================  ======  ===========================================
situation                                status  body
=======================================  ======  ===========================================
no ``Authorization`` header              401     ``Authorization header required``, ``OAUTH_017``
a token that is not a sandbox token      401     ``Token invalid``, ``OAUTH_025``
``expired_token`` fault                  401     ``Oauth token not found``, ``OAUTH_019``
                                                 (ClickUp's answer to a revoked or expired token)
``*_noperm`` token, any Workspace read   401     ``Team not authorized``, ``OAUTH_027``
another Workspace's id                   401     ``Team not authorized``, ``OAUTH_027``
an unknown space, folder, list or task   401     ``Team(s) not authorized``, ``OAUTH_023``
more than 100 ``task_ids`` in bulk       400     ``ECODE`` ``TASK_118``
quota used up / ``too_many_requests``    429     ``Rate limit reached``, ``APP_002``
``server_errors`` fault                  500     ``Internal Server Error``, ``APP_500``
=======================================  ======  ===========================================

Every answer carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (Unix seconds): a per-token window of a minute with
``getattr(server, "clickup_rate_limit", server.tool_rate_limit)`` requests. The
``too_many_requests`` fault adds ``Retry-After: 1``.

Task listings (``GET /api/v2/list/{id}/task``) page by ``page`` (from 0) with 100 tasks a page
(``server.clickup_page_size`` overrides it, for tests); ``last_page`` is true when a page holds
fewer tasks than a full page, so a list whose size is a multiple of the page size ends with an
empty page. Closed tasks come only with ``include_closed=true``, subtasks only with
``subtasks=true`` and a sprint list's members only with ``include_timl=true``.
``date_updated_gt``/``date_updated_lt`` (Unix ms, exclusive) filter; ``order_by`` is ``created``
(default), ``updated``, ``id`` or ``due_date``, newest first unless ``reverse=true``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from connectors.sandbox.clickup.workspace import ClickUpWorkspace, ms
from connectors.sandbox.server import TOOL_FAULTS
from connectors.sandbox.tools import Caller, ToolRequest, ToolResponse, caller_from_token
from connectors.sandbox.work.world import DONE

PAGE_SIZE = 100
MAX_BULK_TASK_IDS = 100
ORDER_BY = ("created", "updated", "id", "due_date")

Handler = Callable[[Any, ClickUpWorkspace, ToolRequest, dict[str, str]], ToolResponse]


def error(status: int, message: str, ecode: str) -> ToolResponse:
    return ToolResponse(status, {"err": message, "ECODE": ecode})


def _ok(body: Any) -> ToolResponse:
    return ToolResponse(200, body)


# -- authentication --------------------------------------------------------------------------


def authenticate(authorization: str | None) -> tuple[Caller | None, ToolResponse | None]:
    """The caller of a request, or ClickUp's 401 for a missing or unknown token."""
    if not authorization or not authorization.strip():
        return None, error(401, "Authorization header required", "OAUTH_017")
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    token = rest.strip() if scheme.lower() == "bearer" else value
    caller = caller_from_token("clickup", token)
    if caller is None:
        return None, error(401, "Token invalid", "OAUTH_025")
    return caller, None


def _not_authorized_team() -> ToolResponse:
    return error(401, "Team not authorized", "OAUTH_027")


def _unknown_item() -> ToolResponse:
    return error(401, "Team(s) not authorized", "OAUTH_023")


# -- endpoints -------------------------------------------------------------------------------


def _user(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    person = ws.world.people[0]
    return _ok({"user": {**ws.user(person), "week_start_day": 1, "global_font_support": False, "timezone": "UTC"}})


def _teams(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    return _ok({"teams": [ws.team()]})


def _spaces(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    return _ok({"spaces": [ws.space(p) for p in ws.projects()]})


def _custom_items(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    return _ok({"custom_items": ws.custom_items()})


def _space(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    project = ws.project_of_space(groups["id"])
    return _unknown_item() if project is None else _ok(ws.space(project))


def _folders(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    project = ws.project_of_space(groups["id"])
    return _unknown_item() if project is None else _ok({"folders": [ws.folder(project)]})


def _folderless_lists(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    project = ws.project_of_space(groups["id"])
    if project is None:
        return _unknown_item()
    return _ok({"lists": [ws.list_json(ref) for ref in ws.lists(project) if not ref.is_sprint]})


def _folder(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    project = ws.project_of_folder(groups["id"])
    return _unknown_item() if project is None else _ok(ws.folder(project))


def _folder_lists(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    project = ws.project_of_folder(groups["id"])
    if project is None:
        return _unknown_item()
    return _ok({"lists": [ws.list_json(ref) for ref in ws.lists(project) if ref.is_sprint]})


def _list(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    ref = ws.list_ref(groups["id"])
    return _unknown_item() if ref is None else _ok(ws.list_json(ref))


def _fields(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    ref = ws.list_ref(groups["id"])
    if ref is None:
        return _unknown_item()
    return _ok({"fields": [ws.field(spec) for spec in ws.fields_of(ref)]})


def _members(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    ref = ws.list_ref(groups["id"])
    if ref is None:
        return _unknown_item()
    return _ok({"members": [ws.user(p) for p in ws.world.people if p.team == ref.project.team]})


def _flag(request: ToolRequest, name: str) -> bool:
    return (request.param(name) or "").lower() == "true"


def _int_param(request: ToolRequest, name: str) -> int | None:
    value = request.param(name)
    if value is None or value == "":
        return None
    if not re.fullmatch(r"\d+", value):
        raise ValueError(name)
    return int(value)


def _tasks(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    ref = ws.list_ref(groups["id"])
    if ref is None:
        return _unknown_item()
    try:
        page = _int_param(request, "page") or 0
        updated_gt = _int_param(request, "date_updated_gt")
        updated_lt = _int_param(request, "date_updated_lt")
    except ValueError as exc:
        return error(400, f"{exc.args[0]} must be a number", "INPUT_003")
    order_by = request.param("order_by") or "created"
    if order_by not in ORDER_BY:
        return error(400, "Order by must be one of id, created, updated, due_date", "INPUT_005")
    items = ws.items_in(ref, include_timl=_flag(request, "include_timl"))
    if not _flag(request, "include_closed"):
        items = [i for i in items if i.status != DONE]
    if not _flag(request, "subtasks"):
        items = [i for i in items if i.parent_id is None]
    if updated_gt is not None:  # ClickUp keeps milliseconds: compare what it shows
        items = [i for i in items if int(ms(i.updated_at) or 0) > updated_gt]
    if updated_lt is not None:
        items = [i for i in items if int(ms(i.updated_at) or 0) < updated_lt]
    keys: dict[str, Callable[[Any], Any]] = {
        "created": lambda i: (i.created_at, i.clickup_id),
        "updated": lambda i: (i.updated_at, i.clickup_id),
        "id": lambda i: i.clickup_id,
        "due_date": lambda i: (i.created_at, i.clickup_id),  # no due dates here: creation order
    }
    items.sort(key=keys[order_by], reverse=not _flag(request, "reverse"))
    size = max(1, int(getattr(server, "clickup_page_size", PAGE_SIZE)))
    chunk = items[page * size : (page + 1) * size]
    malformed = server.faults.malformed_work_item
    target = ws.world.malformed_target() if malformed else None
    tasks = [ws.malformed_task(i) if i is target else ws.task(i) for i in chunk]
    return _ok({"tasks": tasks, "last_page": len(chunk) < size})


def _task(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    item = ws.item(groups["id"])
    return _unknown_item() if item is None else _ok(ws.task(item))


def _time_in_status(server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]) -> ToolResponse:
    item = ws.item(groups["id"])
    return _unknown_item() if item is None else _ok(ws.time_in_status(item))


def _bulk_time_in_status(
    server: Any, ws: ClickUpWorkspace, request: ToolRequest, groups: dict[str, str]
) -> ToolResponse:
    ids = [i for value in request.params("task_ids") for i in value.split(",") if i]
    if not ids:
        return error(400, "task_ids required", "TASK_117")
    if len(ids) > MAX_BULK_TASK_IDS:
        return error(400, f"Too many task_ids: at most {MAX_BULK_TASK_IDS} per request", "TASK_118")
    out: dict[str, Any] = {}
    for task_id in ids:
        item = ws.item(task_id)
        if item is not None:
            out[task_id] = ws.time_in_status(item)
    return _ok(out)


ROUTES: tuple[tuple[re.Pattern[str], Handler, bool], ...] = tuple(
    (re.compile(f"^/api/v2{pattern}/?$"), handler, team_scoped)
    for pattern, handler, team_scoped in (
        # (path, handler, needs read permission on the Workspace)
        ("/user", _user, False),
        ("/team", _teams, False),
        ("/team/(?P<team>[^/]+)/space", _spaces, True),
        ("/team/(?P<team>[^/]+)/custom_item", _custom_items, True),
        ("/space/(?P<id>[^/]+)", _space, True),
        ("/space/(?P<id>[^/]+)/folder", _folders, True),
        ("/space/(?P<id>[^/]+)/list", _folderless_lists, True),
        ("/folder/(?P<id>[^/]+)", _folder, True),
        ("/folder/(?P<id>[^/]+)/list", _folder_lists, True),
        ("/list/(?P<id>[^/]+)", _list, True),
        ("/list/(?P<id>[^/]+)/field", _fields, True),
        ("/list/(?P<id>[^/]+)/task", _tasks, True),
        ("/list/(?P<id>[^/]+)/member", _members, True),
        ("/task/bulk_time_in_status/task_ids", _bulk_time_in_status, True),
        ("/task/(?P<id>[^/]+)", _task, True),
        ("/task/(?P<id>[^/]+)/time_in_status", _time_in_status, True),
    )
)


def _route(path: str) -> tuple[Handler, dict[str, str], bool] | None:
    for pattern, handler, team_scoped in ROUTES:
        match = pattern.match(path)
        if match:
            return handler, match.groupdict(), team_scoped
    return None


# -- the entry point ---------------------------------------------------------------------------


def handle(server: Any, request: ToolRequest) -> ToolResponse:
    """Answer one request under ``/clickup`` the way ClickUp's API v2 does."""
    caller, refusal = authenticate(request.headers.get("authorization"))
    if caller is None:
        assert refusal is not None
        limit = int(getattr(server, "clickup_rate_limit", server.tool_rate_limit))
        refusal.headers.update(_rate_headers(limit, limit, int(time.time()) + 60))
        return refusal
    with server.locked():
        fault = server.faults.take(request.path, TOOL_FAULTS)
    limit = int(getattr(server, "clickup_rate_limit", server.tool_rate_limit))
    token_key = f"clickup:{caller.tenant}:{caller.can_read}"
    limit, remaining, reset = server.rate_window(token_key, limit)
    response = _answer(server, caller, request, fault, over_quota=remaining < 0)
    response.headers.update(_rate_headers(limit, max(0, remaining), reset))
    if fault == "too_many_requests":
        response.headers["Retry-After"] = "1"
    response.tenant = caller.tenant
    response.fault = fault or ("quota_exhausted" if remaining < 0 else None)
    return response


def _answer(server: Any, caller: Caller, request: ToolRequest, fault: str | None, *, over_quota: bool) -> ToolResponse:
    if over_quota or fault == "too_many_requests":
        return error(429, "Rate limit reached", "APP_002")
    if fault == "expired_token":
        return error(401, "Oauth token not found", "OAUTH_019")
    if fault == "server_errors":
        return error(500, "Internal Server Error", "APP_500")
    if fault == "slow_responses":
        time.sleep(server.faults.slow_seconds)
    routed = _route(request.path)
    if routed is None or request.method not in ("GET", "HEAD"):
        return error(404, "Route not found", "APP_001")
    handler, groups, team_scoped = routed
    with server.locked():
        ws = ClickUpWorkspace(server.work_world(caller.tenant))
        if team_scoped and not caller.can_read:
            return _not_authorized_team()
        if "team" in groups and groups["team"] != ws.team_id:
            return _not_authorized_team()
        return handler(server, ws, request, groups)


def _rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}
