"""Azure Boards (work item tracking, REST 7.1) answering from the tenant's planning world.

The server hands every path under ``/azure`` that does not contain ``/_apis/git/`` to
:func:`handle`; ``request.path`` starts with the organisation (``/<tenant>-eng/…``).
Authentication, rate limiting and injected faults come from :mod:`connectors.sandbox.azure_common`.

Endpoints (paths below the organisation; names match case-insensitively, as Azure's do):

==================================================================  ==========================================
``GET  _apis/projects`` (``$top``/``$skip``, ``continuationToken``)   ``x-ms-continuationtoken`` while more remain
``GET  _apis/projects/{project}`` · ``…/teams`` · ``…/teams/{team}/members``  members page with ``$top``/``$skip``
``GET  _apis/wit/fields`` · ``{project}/_apis/wit/fields``           every field, DMT fields and look-alikes
``GET  _apis/work/processes/lists/{picklistId}``                     a picklist's values
``POST {project}/_apis/wit/wiql`` (``timePrecision``, ``$top``)      ids only, no paging, 400 VS402337 past the cap
``POST {project}/_apis/wit/workitemsbatch``                          at most 200 ids (VS403474), ``errorPolicy``
``GET  [{project}/]_apis/wit/workitems?ids=…`` · ``…/workitems/{id}``  ``fields``, ``asOf``, ``$expand``
``GET  {project}/_apis/wit/workitems/{id}/updates`` (``$top``/``$skip``)
``GET|POST {project}/_apis/wit/reporting/workitemrevisions``         ``continuationToken``, ``isLastBatch``
``GET  {project}/_apis/wit/workitemtypes[/{type}[/states]]``
``GET  {project}/{team}/_apis/work/teamsettings/iterations``         ``$timeframe=current``
==================================================================  ==========================================

``server.azure_wiql_cap`` (default :data:`WIQL_CAP`) lowers the WIQL result cap for tests.
While ``server.faults.malformed_work_item`` is set, hydrated work item lists carry the
world's :meth:`~connectors.sandbox.work.world.WorkWorld.malformed_target` broken: its
``System.ChangedDate`` is no date and ``System.WorkItemType`` is missing.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from connectors.sandbox.azure_boards import wiql
from connectors.sandbox.azure_boards.render import (
    FIELDS,
    FIELDS_BY_REF,
    IDENTITY_FIELDS,
    TYPE_INFO,
    TYPE_STATES,
    BoardsView,
    RenderedItem,
    Revision,
    azure_time,
    identity,
    identity_text,
    ms,
    team_id,
    team_name,
)
from connectors.sandbox.azure_common import azure_error, begin, not_authorized, project_guid, project_name
from connectors.sandbox.tools import Caller, ToolRequest, ToolResponse
from connectors.sandbox.work.world import Project

if TYPE_CHECKING:
    from connectors.sandbox.server import SandboxServer

#: WIQL answers at most this many ids (VS402337 beyond); ``server.azure_wiql_cap`` overrides it.
WIQL_CAP = 20_000
#: Work items per ``workitems``/``workitemsbatch`` call (VS403474 beyond).
BATCH_CAP = 200
#: Revisions per page of the reporting feed: the default and the most ``$maxPageSize`` may ask for.
REVISIONS_PAGE = 1000
MEMBERS_PAGE = 100
_PROCESS_ID = "adcc42ab-9882-485e-a3ed-7678f01f66bc"  # the Agile process template


class _Answer(Exception):
    """Raised inside a handler to answer at once (errors)."""

    def __init__(self, response: ToolResponse) -> None:
        super().__init__(response.status)
        self.response = response


def handle(server: SandboxServer, request: ToolRequest) -> ToolResponse:
    caller, refused, headers = begin(server, request)
    if refused is not None:
        return refused
    assert caller is not None
    try:
        response = _route(server, request, caller)
    except _Answer as answer:
        response = answer.response
    response.headers.update(headers)
    response.tenant = caller.tenant
    return response


# -- routing ----------------------------------------------------------------------------


def _route(server: SandboxServer, request: ToolRequest, caller: Caller) -> ToolResponse:
    segments = [unquote(part) for part in request.path.strip("/").split("/")]
    org, rest = segments[0], segments[1:]
    lower = [part.lower() for part in rest]
    context = _Context(server, request, caller, org)
    method = request.method
    if lower[:2] == ["_apis", "projects"]:
        return _projects_api(context, rest[2:], method)
    if lower[:3] == ["_apis", "wit", "fields"] and method == "GET":
        return _fields(context, rest[3:])
    if lower[:4] == ["_apis", "work", "processes", "lists"] and len(rest) == 5 and method == "GET":
        return _picklist(context, rest[4])
    if lower[:3] == ["_apis", "wit", "workitems"] and method == "GET":
        return _work_items_get(context, None, rest[3:])
    if lower[:3] == ["_apis", "wit", "wiql"] and method == "POST":
        return _wiql(context, None)
    if len(rest) >= 4 and lower[1:3] == ["_apis", "wit"]:
        project = context.project(rest[0])
        tail, low = rest[3:], lower[3:]
        if low == ["wiql"] and method == "POST":
            return _wiql(context, project)
        if low == ["workitemsbatch"] and method == "POST":
            return _work_items_batch(context)
        if low[:1] == ["workitems"] and method == "GET":
            return _work_items_get(context, project, tail[1:])
        if low == ["reporting", "workitemrevisions"] and method in ("GET", "POST"):
            return _revisions_feed(context, project)
        if low[:1] == ["workitemtypes"] and method == "GET":
            return _work_item_types(context, project, tail[1:])
        if low == ["fields"] and method == "GET":
            return _fields(context, [])
    if len(rest) == 6 and lower[2:] == ["_apis", "work", "teamsettings", "iterations"] and method == "GET":
        project = context.project(rest[0])
        return _iterations(context, project, rest[1])
    return _no_controller(request)


def _no_controller(request: ToolRequest) -> ToolResponse:
    """Azure's answer to a path no API serves: 404 with a plain-text message."""
    message = f"The controller for path '{request.path}' was not found or does not implement IController."
    return ToolResponse(404, message.encode(), headers={"content-type": "text/plain; charset=utf-8"})


class _Context:
    """What every handler needs: the server, the request, the caller and the rendered world."""

    def __init__(self, server: SandboxServer, request: ToolRequest, caller: Caller, org: str) -> None:
        self.server = server
        self.request = request
        self.caller = caller
        self.org = org
        self.base = request.base_url
        with server.locked():
            self.view = _view(server, caller.tenant)
            self.malformed = server.faults.malformed_work_item

    def project(self, name: str) -> Project:
        project = self.view.project(name)
        if project is None:
            raise _Answer(
                azure_error(
                    404,
                    f"TF200016: The following project does not exist: {name}. Verify that the name of the "
                    "project is correct and that the project exists on the specified Azure DevOps Server.",
                    "ProjectDoesNotExistWithNameException",
                )
            )
        return project

    def require_read(self) -> None:
        if not self.caller.can_read:
            raise _Answer(not_authorized(self.caller))

    def identity(self, email: str) -> dict[str, Any]:
        return identity(self.view.world, email, self.org, self.base)

    def org_url(self, path: str) -> str:
        return f"{self.base}/{self.org}/{path}"


_VIEWS: dict[str, tuple[tuple[int, ...], BoardsView]] = {}


def _view(server: SandboxServer, tenant: str) -> BoardsView:
    """The rendered world of ``tenant``, rebuilt only when the world has changed (call under the lock)."""
    world = server.work_world(tenant)
    github = server.world(tenant)
    signature = (id(server), id(world), world.advances, len(world.items), sum(len(i.changes) for i in world.items))
    cached = _VIEWS.get(tenant)
    if cached is not None and cached[0] == signature:
        return cached[1]
    view = BoardsView(world, github)
    _VIEWS[tenant] = (signature, view)
    return view


def _bad_request(message: str, type_key: str = "VssServiceException") -> _Answer:
    return _Answer(azure_error(400, message, type_key))


def _int_param(request: ToolRequest, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"The value '{raw}' of parameter '{name}' is not an integer.") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _bad_request(f"The value {value} of parameter '{name}' must be {bound}.")
    return value


def _json_body(request: ToolRequest) -> Any:
    try:
        return request.json()
    except ValueError:
        raise _bad_request(
            "The request body could not be read as JSON: VS402371: the body must be a JSON object.",
            "VssRequestContentException",
        ) from None


def _parse_moment(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad_request(f"The value '{text}' of '{name}' is not a valid date and time.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- projects, teams, members -----------------------------------------------------------


def _project_json(context: _Context, project: Project, *, full: bool) -> dict[str, Any]:
    name = project_name(project)
    guid = project_guid(context.caller.tenant, name)
    out: dict[str, Any] = {
        "id": guid,
        "name": name,
        "description": project.name,
        "url": context.org_url(f"_apis/projects/{guid}"),
        "state": "wellFormed",
        "revision": 400 + project.id % 100,
        "visibility": "private",
        "lastUpdateTime": azure_time(context.view.world.now),
    }
    if full:
        team = team_id(context.caller.tenant, project)
        out["capabilities"] = {
            "processTemplate": {"templateName": "Agile", "templateTypeId": _PROCESS_ID},
            "versioncontrol": {"sourceControlType": "Git", "gitEnabled": "True", "tfvcEnabled": "False"},
        }
        out["_links"] = {
            "self": {"href": out["url"]},
            "web": {"href": context.org_url(quote(name))},
        }
        out["defaultTeam"] = {
            "id": team,
            "name": team_name(project),
            "url": context.org_url(f"_apis/projects/{guid}/teams/{team}"),
        }
    return out


def _team_json(context: _Context, project: Project) -> dict[str, Any]:
    name = project_name(project)
    guid = project_guid(context.caller.tenant, name)
    team = team_id(context.caller.tenant, project)
    return {
        "id": team,
        "name": team_name(project),
        "url": context.org_url(f"_apis/projects/{guid}/teams/{team}"),
        "description": f"The default project team of {name}.",
        "identityUrl": f"https://spsprodweu5.vssps.visualstudio.com/_apis/Identities/{team}",
        "projectName": name,
        "projectId": guid,
    }


def _find_team(context: _Context, project: Project, name: str) -> None:
    if name.lower() not in (team_name(project).lower(), team_id(context.caller.tenant, project)):
        raise _Answer(
            azure_error(
                404,
                f"The team with id or name '{name}' does not exist in project '{project_name(project)}'.",
                "TeamNotFoundException",
            )
        )


def _projects_api(context: _Context, rest: list[str], method: str) -> ToolResponse:
    if method != "GET":
        raise _Answer(azure_error(405, f"The {method} method is not supported here.", "HttpMethodNotAllowed"))
    projects = sorted(context.view.world.projects, key=lambda p: project_name(p).lower())
    if not rest:
        start = _int_param(context.request, "$skip", 0)
        token = context.request.param("continuationToken")
        if token:
            try:
                start = int(token)
            except ValueError:
                raise _bad_request(f"The continuation token '{token}' is not valid.") from None
        top = _int_param(context.request, "$top", 100, low=1)
        page = projects[start : start + top]
        headers = {}
        if start + top < len(projects):
            headers["x-ms-continuationtoken"] = str(start + top)
        listed = [_project_json(context, project, full=False) for project in page]
        return ToolResponse(200, {"count": len(listed), "value": listed}, headers=headers)
    project = context.project(rest[0])
    lower = [part.lower() for part in rest[1:]]
    if not lower:
        return ToolResponse(200, _project_json(context, project, full=True))
    if lower == ["teams"]:
        return ToolResponse(200, {"count": 1, "value": [_team_json(context, project)]})
    if len(lower) == 2 and lower[0] == "teams":
        _find_team(context, project, rest[2])
        return ToolResponse(200, _team_json(context, project))
    if len(lower) == 3 and lower[0] == "teams" and lower[2] == "members":
        _find_team(context, project, rest[2])
        context.require_read()
        members = context.view.members(project)
        skip = _int_param(context.request, "$skip", 0)
        top = _int_param(context.request, "$top", MEMBERS_PAGE, low=1)
        value: list[dict[str, Any]] = []
        for person in members[skip : skip + top]:
            entry: dict[str, Any] = {"identity": context.identity(person.email)}
            if person.is_lead:
                entry["isTeamAdmin"] = True  # Azure leaves the flag out for ordinary members
            value.append(entry)
        return ToolResponse(200, {"count": len(value), "value": value})
    raise _Answer(_no_controller(context.request))


# -- fields, picklists, types and states -------------------------------------------------


def _field_json(context: _Context, spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": spec.name,
        "referenceName": spec.reference_name,
        "description": "",
        "type": spec.type,
        "usage": "workItem",
        "readOnly": spec.read_only,
        "canSortBy": spec.type not in ("html", "plainText", "history"),
        "isQueryable": True,
        "supportedOperations": [{"referenceName": "SupportedOperations.Equals", "name": "="}],
        "isIdentity": spec.type == "identity",
        "isPicklist": spec.is_picklist,
        "isPicklistSuggested": False,
        "url": context.org_url(f"_apis/wit/fields/{spec.reference_name}"),
    }
    if spec.picklist_id:
        out["picklistId"] = spec.picklist_id
    return out


def _fields(context: _Context, rest: list[str]) -> ToolResponse:
    context.require_read()
    if rest:
        spec = FIELDS_BY_REF.get(rest[0].lower())
        if spec is None:
            raise _Answer(
                azure_error(
                    404, f"TF51535: Cannot find field {rest[0]}.", "WorkItemTrackingFieldDefinitionNotFoundException"
                )
            )
        return ToolResponse(200, _field_json(context, spec))
    value = [_field_json(context, spec) for spec in FIELDS]
    return ToolResponse(200, {"count": len(value), "value": value})


def _picklist(context: _Context, picklist_id: str) -> ToolResponse:
    context.require_read()
    for spec in FIELDS:
        if spec.picklist_id == picklist_id.lower():
            return ToolResponse(
                200,
                {
                    "items": list(spec.picklist),
                    "id": spec.picklist_id,
                    "name": f"picklist_{spec.picklist_id}",
                    "type": "String" if not spec.picklist[0].isdigit() else "Integer",
                    "isSuggested": False,
                    "url": context.org_url(f"_apis/work/processes/lists/{spec.picklist_id}"),
                },
            )
    raise _Answer(
        azure_error(
            404, f"VS402862: The picklist with id '{picklist_id}' does not exist.", "PickListDoesNotExistException"
        )
    )


def _states_json(type_name: str) -> list[dict[str, Any]]:
    return [{"name": name, "color": color, "category": category} for name, color, category in TYPE_STATES[type_name]]


def _work_item_types(context: _Context, project: Project, rest: list[str]) -> ToolResponse:
    context.require_read()
    guid = project_guid(context.caller.tenant, project_name(project))

    def type_json(name: str) -> dict[str, Any]:
        reference, color, icon = TYPE_INFO[name]
        return {
            "name": name,
            "referenceName": reference,
            "description": f"The Agile process's {name}.",
            "color": color,
            "icon": {"id": icon, "url": f"{context.base}/_apis/wit/workItemIcons/{icon}?color={color}&v=2"},
            "isDisabled": False,
            "states": _states_json(name),
            "url": context.org_url(f"{guid}/_apis/wit/workItemTypes/{quote(name)}"),
        }

    if not rest:
        value = [type_json(name) for name in TYPE_STATES]
        return ToolResponse(200, {"count": len(value), "value": value})
    name = next((known for known in TYPE_STATES if known.lower() == rest[0].lower()), None)
    if name is None:
        raise _Answer(
            azure_error(
                404,
                f"VS402323: Work item type {rest[0]} does not exist in project {project_name(project)}.",
                "WorkItemTypeNotFoundException",
            )
        )
    if len(rest) == 1:
        return ToolResponse(200, type_json(name))
    if len(rest) == 2 and rest[1].lower() == "states":
        states = _states_json(name)
        return ToolResponse(200, {"count": len(states), "value": states})
    raise _Answer(azure_error(404, f"Unknown path below work item type {name}.", "NotFoundException"))


# -- iterations -------------------------------------------------------------------------


def _iterations(context: _Context, project: Project, team: str) -> ToolResponse:
    _find_team(context, project, team)
    context.require_read()
    value = context.view.iterations(project, context.org, context.base)
    timeframe = context.request.param("$timeframe")
    if timeframe:
        if timeframe.lower() != "current":
            raise _bad_request(f"The timeframe '{timeframe}' is not supported; the only value is 'current'.")
        value = [entry for entry in value if entry["attributes"]["timeFrame"] == "current"]
    return ToolResponse(200, {"count": len(value), "value": value})


# -- WIQL -------------------------------------------------------------------------------


def _values(rendered: RenderedItem) -> dict[str, Any]:
    latest = rendered.revisions[-1]
    return {
        "system.id": rendered.item.id,
        "system.teamproject": rendered.project,
        "system.changeddate": latest.at,
        "system.createddate": rendered.revisions[0].at,
        "system.workitemtype": rendered.type,
        "system.state": latest.state,
    }


def _wiql(context: _Context, project: Project | None) -> ToolResponse:
    context.require_read()
    body = _json_body(context.request)
    text = body.get("query") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise _bad_request('VS402325: The WIQL query is missing: send {"query": "SELECT …"}.')
    time_precision = (context.request.param("timePrecision") or "").lower() == "true"
    try:
        query = wiql.parse(text, time_precision=time_precision)
    except wiql.WiqlError as exc:
        raise _Answer(azure_error(400, str(exc), "WorkItemTrackingQueryInvalidSyntaxException")) from None
    uses_project = any(condition.value == "@project" for condition in query.conditions)
    if project is None and uses_project:
        raise _bad_request(
            "TF51011: The specified project in the query @project does not exist: send the query to "
            "{organization}/{project}/_apis/wit/wiql.",
            "WorkItemTrackingQueryInvalidSyntaxException",
        )
    project_label = project_name(project) if project is not None else ""
    with context.server.locked():
        rows = [_values(rendered) for rendered in context.view.items.values()]
        as_of = max(datetime.now(UTC), context.view.world.clock)
    found = sorted((row for row in rows if wiql.matches(query, row, project_label)), key=wiql.sort_key(query))
    top = _int_param(context.request, "$top", 0, low=0)
    cap = int(getattr(context.server, "azure_wiql_cap", WIQL_CAP))
    if top:
        found = found[:top]
    elif len(found) > cap:
        raise _bad_request(
            f"VS402337: The number of work items returned exceeds the size limit of {cap}. "
            "Change the query to return fewer work items.",
            "WorkItemTrackingQueryResultSizeLimitExceededException",
        )

    def column(reference: str) -> dict[str, Any]:
        spec = FIELDS_BY_REF.get(reference)
        real = spec.reference_name if spec else reference
        return {
            "referenceName": real,
            "name": spec.name if spec else real,
            "url": context.org_url(f"_apis/wit/fields/{real}"),
        }

    scope = project_guid(context.caller.tenant, project_label) + "/" if project is not None else ""
    return ToolResponse(
        200,
        {
            "queryType": "flat",
            "queryResultType": "workItem",
            "asOf": _as_of_text(as_of),
            "columns": [column(name) for name in query.columns],
            "sortColumns": [{"field": column(name), "descending": descending} for name, descending in query.order],
            "workItems": [
                {"id": row["system.id"], "url": context.org_url(f"{scope}_apis/wit/workItems/{row['system.id']}")}
                for row in found
            ],
        },
    )


def _as_of_text(moment: datetime) -> str:
    """``asOf``: the query's moment with milliseconds, rounded up so nothing listed is later."""
    cut = ms(moment)
    return azure_time(cut + timedelta(milliseconds=1) if cut < moment else cut)


# -- hydration --------------------------------------------------------------------------


def _ids(raw: Any) -> list[int]:
    if isinstance(raw, str):
        parts = [part.strip() for part in raw.split(",") if part.strip()]
    elif isinstance(raw, list):
        parts = raw
    else:
        raise _bad_request("VS403470: The list of work item ids is missing or not valid.")
    out: list[int] = []
    for part in parts:
        try:
            out.append(int(part))
        except (TypeError, ValueError):
            raise _bad_request(f"VS403470: '{part}' is not a work item id.") from None
    return out


def _hydrate(
    context: _Context,
    ids: list[int],
    *,
    fields: list[str] | None,
    as_of: datetime | None,
    expand: str | None,
    omit_missing: bool,
) -> list[dict[str, Any] | None]:
    if not ids:
        raise _bad_request("VS403470: The list of work item ids is missing or not valid.")
    if len(ids) > BATCH_CAP:
        raise _bad_request(
            f"VS403474: The maximum number of work items that can be requested in a single call is {BATCH_CAP}; "
            f"this request asked for {len(ids)}.",
        )
    if fields is not None and expand not in (None, "none"):
        raise _bad_request(
            "The expand parameter can not be used with the fields parameter.", "ConflictingParametersException"
        )
    for name in fields or []:
        if name.lower() not in FIELDS_BY_REF:
            raise _bad_request(
                f"TF51535: Cannot find field {name}.", "WorkItemTrackingFieldDefinitionNotFoundException"
            )
    out: list[dict[str, Any] | None] = []
    with context.server.locked():
        broken_id = context.view.world.malformed_target().id if context.malformed else None
        for item_id in ids:
            rendered = context.view.items.get(item_id)
            revision: Revision | None = None
            if rendered is not None:
                revision = rendered.at(ms(as_of) if as_of else None)
            if rendered is None or revision is None:
                if omit_missing:
                    out.append(None)
                    continue
                raise _Answer(
                    azure_error(
                        404,
                        f"TF401232: Work item {item_id} does not exist, or you do not have permissions to read it.",
                        "WorkItemUnauthorizedAccessException",
                        error_code=600171,
                    )
                )
            out.append(
                context.view.work_item(
                    rendered,
                    revision,
                    context.org,
                    context.base,
                    fields=fields,
                    expand=expand,
                    broken=item_id == broken_id,
                )
            )
    return out


def _expand(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    text = str(raw).lower()
    if text not in ("none", "relations", "fields", "links", "all"):
        raise _bad_request(f"The value '{raw}' of $expand is not one of None, Relations, Fields, Links, All.")
    return text


def _work_items_batch(context: _Context) -> ToolResponse:
    context.require_read()
    body = _json_body(context.request)
    if not isinstance(body, dict):
        raise _bad_request('VS403470: The body must be {"ids": […], "fields": […]}.')
    fields = body.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise _bad_request("The value of 'fields' must be a list of field reference names.")
    as_of = _parse_moment(body["asOf"], "asOf") if body.get("asOf") else None
    policy = str(body.get("errorPolicy") or "fail").lower()
    value = _hydrate(
        context,
        _ids(body.get("ids")),
        fields=fields,
        as_of=as_of,
        expand=_expand(body.get("$expand")),
        omit_missing=policy == "omit",
    )
    return ToolResponse(200, {"count": len(value), "value": value})


def _work_items_get(context: _Context, project: Project | None, rest: list[str]) -> ToolResponse:
    context.require_read()
    request = context.request
    raw_fields = request.param("fields")
    fields = [name.strip() for name in raw_fields.split(",") if name.strip()] if raw_fields else None
    as_of = _parse_moment(request.param("asOf") or "", "asOf") if request.param("asOf") else None
    expand = _expand(request.param("$expand"))
    if not rest:
        policy = (request.param("errorPolicy") or "fail").lower()
        value = _hydrate(
            context,
            _ids(request.param("ids")),
            fields=fields,
            as_of=as_of,
            expand=expand,
            omit_missing=policy == "omit",
        )
        return ToolResponse(200, {"count": len(value), "value": value})
    try:
        item_id = int(rest[0])
    except ValueError:
        raise _bad_request(f"'{rest[0]}' is not a work item id.") from None
    if len(rest) == 1:
        (single,) = _hydrate(context, [item_id], fields=fields, as_of=as_of, expand=expand, omit_missing=False)
        return ToolResponse(200, single)
    if len(rest) == 2 and rest[1].lower() == "updates":
        return _updates(context, item_id)
    raise _Answer(azure_error(404, f"Unknown path below work item {item_id}.", "NotFoundException"))


# -- history ----------------------------------------------------------------------------


def _updates(context: _Context, item_id: int) -> ToolResponse:
    """``/workitems/{id}/updates``: what each revision changed, ``{oldValue, newValue}`` per field."""
    rendered = context.view.items.get(item_id)
    if rendered is None:
        raise _Answer(
            azure_error(
                404,
                f"TF401232: Work item {item_id} does not exist, or you do not have permissions to read it.",
                "WorkItemUnauthorizedAccessException",
                error_code=600171,
            )
        )
    skip = _int_param(context.request, "$skip", 0)
    top = _int_param(context.request, "$top", 200, low=1)
    updates: list[dict[str, Any]] = []
    with context.server.locked():
        previous: dict[str, Any] = {}
        for index, revision in enumerate(rendered.revisions):
            values = context.view.fields(rendered, revision, context.org, context.base)
            values["System.Rev"] = revision.rev
            changed: dict[str, Any] = {}
            for name in sorted(set(values) | set(previous)):
                old, new = previous.get(name), values.get(name)
                if old == new:
                    continue
                entry: dict[str, Any] = {}
                if old is not None:
                    entry["oldValue"] = old
                if new is not None:
                    entry["newValue"] = new
                changed[name] = entry
            following = rendered.revisions[index + 1] if index + 1 < len(rendered.revisions) else None
            url = context.view.url(item_id, rendered.project, context.org, context.base)
            updates.append(
                {
                    "id": index + 1,
                    "workItemId": item_id,
                    "rev": revision.rev,
                    "revisedBy": context.identity(revision.by),
                    "revisedDate": azure_time(following.at) if following else "9999-01-01T00:00:00Z",
                    "fields": changed,
                    "url": f"{url}/updates/{index + 1}",
                }
            )
            previous = values
    page = updates[skip : skip + top]
    return ToolResponse(200, {"count": len(page), "value": page})


def _token(revision_at: datetime, item_id: int, rev: int) -> str:
    raw = f"{int(revision_at.timestamp() * 1000)};{item_id};{rev}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[int, int, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        stamp, item_id, rev = base64.urlsafe_b64decode(padded.encode()).decode().split(";")
        return int(stamp), int(item_id), int(rev)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad_request(
            f"VS402474: The continuation token '{token}' is not valid.", "InvalidContinuationToken"
        ) from None


def _revisions_feed(context: _Context, project: Project) -> ToolResponse:
    """``reporting/workitemrevisions``: every revision of the project's items, oldest change first."""
    context.require_read()
    request = context.request
    body = _json_body(request) if request.method == "POST" else None
    if request.method == "POST" and not isinstance(body, dict):
        raise _bad_request('The body must be {"fields": […], "types": […]}.')
    options = body or {}
    fields: list[str] | None = None
    if options.get("fields"):
        fields = [str(name) for name in options["fields"]]
    elif request.param("fields"):
        fields = [name.strip() for name in (request.param("fields") or "").split(",") if name.strip()]
    for name in fields or []:
        if name.lower() not in FIELDS_BY_REF:
            raise _bad_request(
                f"TF51535: Cannot find field {name}.", "WorkItemTrackingFieldDefinitionNotFoundException"
            )
    types = {str(t).lower() for t in options.get("types") or []} or {
        t.strip().lower() for t in (request.param("types") or "").split(",") if t.strip()
    }
    flag = options.get("includeIdentityRef", request.param("includeIdentityRef"))
    identity_ref = str(flag).lower() == "true"
    start = (
        _parse_moment(request.param("startDateTime") or "", "startDateTime") if request.param("startDateTime") else None
    )
    token = request.param("continuationToken")
    after = _untoken(token) if token else None
    size = _int_param(request, "$maxPageSize", REVISIONS_PAGE, low=1, high=REVISIONS_PAGE)
    with context.server.locked():
        feed_key = (project.key, tuple(sorted(types)), start)
        feed = context.view.feeds.get(feed_key)
        if feed is None:
            every = [
                (revision, rendered)
                for rendered in context.view.project_items(project)
                if not types or rendered.type.lower() in types
                for revision in rendered.revisions
                if start is None or revision.at >= ms(start)
            ]
            every.sort(key=lambda entry: (entry[0].at, entry[1].item.id, entry[0].rev))
            keys = [(int(e[0].at.timestamp() * 1000), e[1].item.id, e[0].rev) for e in every]
            feed = context.view.feeds[feed_key] = (keys, every)
        keys, every = feed
        first = bisect.bisect_right(keys, tuple(after)) if after is not None else 0
        entries = every[first:]
        page = entries[:size]
        values = []
        for revision, rendered in page:
            all_fields = context.view.fields(rendered, revision, context.org, context.base)
            all_fields["System.Rev"] = revision.rev
            if fields is not None:
                wanted = {name.lower() for name in fields}
                all_fields = {name: value for name, value in all_fields.items() if name.lower() in wanted}
            if not identity_ref:
                for name in IDENTITY_FIELDS & set(all_fields):
                    all_fields[name] = identity_text(context.view.world, all_fields[name]["uniqueName"])
            values.append({"id": rendered.item.id, "rev": revision.rev, "fields": all_fields})
    last = len(page) == len(entries)
    if page:
        next_token = _token(page[-1][0].at, page[-1][1].item.id, page[-1][0].rev)
    else:
        next_token = token or _token(ms(start) if start else datetime(1970, 1, 1, tzinfo=UTC), 0, 0)
    params = [(key, value) for key, value in request.query if key != "continuationToken"]
    params.append(("continuationToken", next_token))
    next_link = f"{context.base}{request.path}?{urlencode(params)}"
    return ToolResponse(
        200, {"values": values, "nextLink": next_link, "continuationToken": next_token, "isLastBatch": last}
    )
