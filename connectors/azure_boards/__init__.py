"""Azure Boards source: work items with their full revision history, iterations, fields, states, members.

``azure_boards_source(...)`` builds the dlt source without touching the network; HTTP happens
only when the source is iterated (``pipeline.run``). ``load_azure_boards(...)`` runs one load
into the tenant's dataset ``raw_azure_boards__<tenant>``. See README.md in this folder.

Work items come from WIQL (ids only, sliced under Azure's 20,000-id cap) hydrated 200 at a
time as of the query's moment, incrementally on ``System.ChangedDate`` (millisecond
precision, with a small overlap that the merge on primary keys de-duplicates). History comes
from the reporting revisions feed, incrementally on the same date. The tool's own field ids
never reach the models: mapped fields (story points, the sprint, the DMT fields) land in
columns named after Pulse's canonical names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.common.schema.utils import normalize_schema_name
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from connectors.azure_boards import settings
from connectors.azure_boards.helpers import (
    CANONICAL_KINDS,
    AzureBoardsApiError,
    AzureBoardsAuthError,
    AzureBoardsClient,
    AzureBoardsError,
    AzureBoardsQueryTooLarge,
    AzureBoardsRateLimitError,
    JsonDict,
    MalformedItem,
    RetryPolicy,
    chunks,
    item_key,
    parse_azure_time,
    parse_field,
    parse_iteration,
    parse_member,
    parse_project,
    parse_revision,
    parse_state,
    parse_work_item,
    quarantine_row,
    wiql_ids,
    wiql_time,
)
from connectors.azure_boards.pipeline import dataset_name, load_azure_boards, pipeline_name, row_counts
from connectors.loading import QUARANTINE_COLUMNS, QUARANTINE_TABLE, table_columns
from pulse.fieldmap import FieldCandidate, propose

__all__ = [
    "PRIMARY_KEYS",
    "QUARANTINE_TABLE",
    "TABLES",
    "AzureBoardsApiError",
    "AzureBoardsAuthError",
    "AzureBoardsError",
    "AzureBoardsQueryTooLarge",
    "AzureBoardsRateLimitError",
    "RetryPolicy",
    "azure_boards_source",
    "check_connection",
    "dataset_name",
    "discover_fields",
    "load_azure_boards",
    "pipeline_name",
    "row_counts",
]

T = TypeVar("T")

_CANONICAL_TYPES = {"number": "double", "text": "text", "boolean": "bool", "date": "date"}

#: The raw table contract: the dbt staging models read exactly these columns.
TABLES: dict[str, TTableSchemaColumns] = {
    "work_items": table_columns(
        {
            "id": "bigint",
            "rev": "bigint",
            "project": "text",
            "work_item_type": "text",
            "state": "text",
            "reason": "text",
            "title": "text",
            "assigned_to_email": "text",
            "assigned_to_name": "text",
            "created_by_email": "text",
            "changed_by_email": "text",
            "created_at": "timestamp",
            "changed_at": "timestamp",
            "activated_at": "timestamp",
            "resolved_at": "timestamp",
            "closed_at": "timestamp",
            "iteration_path": "text",
            "area_path": "text",
            "blocked": "text",
            "tags": "text",
            "parent_id": "bigint",
            "caused_by_id": "bigint",
            "pull_requests": "json",
            "url": "text",
            **{name: _CANONICAL_TYPES[kind] for name, kind in CANONICAL_KINDS.items()},  # type: ignore[misc]
            "payload": "json",
        },
        keys=["id"],
    ),
    "work_item_revisions": table_columns(
        {
            "id": "bigint",
            "rev": "bigint",
            "changed_at": "timestamp",
            "changed_by_email": "text",
            "work_item_type": "text",
            "project": "text",
            "state": "text",
            "reason": "text",
            "iteration_path": "text",
            "story_points": "double",
            "assigned_to_email": "text",
            "blocked": "text",
            "payload": "json",
        },
        keys=["id", "rev"],
    ),
    "iterations": table_columns(
        {
            "id": "text",
            "name": "text",
            "path": "text",
            "project": "text",
            "team": "text",
            "start_date": "timestamp",
            "finish_date": "timestamp",
            "time_frame": "text",
            "url": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    "fields": table_columns(
        {
            "reference_name": "text",
            "name": "text",
            "type": "text",
            "usage": "text",
            "read_only": "bool",
            "is_identity": "bool",
            "is_picklist": "bool",
            "picklist_id": "text",
            "picklist_values": "json",
            "payload": "json",
        },
        keys=["reference_name"],
    ),
    "states": table_columns(
        {
            "project": "text",
            "work_item_type": "text",
            "name": "text",
            "category": "text",
            "color": "text",
            "payload": "json",
        },
        keys=["project", "work_item_type", "name"],
    ),
    "team_members": table_columns(
        {
            "team_id": "text",
            "id": "text",
            "project": "text",
            "team_name": "text",
            "display_name": "text",
            "unique_name": "text",
            "email": "text",
            "is_team_admin": "bool",
            "payload": "json",
        },
        keys=["team_id", "id"],
    ),
    "projects": table_columns(
        {
            "id": "text",
            "name": "text",
            "description": "text",
            "state": "text",
            "visibility": "text",
            "default_team_id": "text",
            "default_team_name": "text",
            "process": "text",
            "last_update_time": "timestamp",
            "url": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    QUARANTINE_TABLE: QUARANTINE_COLUMNS,
}
PRIMARY_KEYS = {
    "work_items": ["id"],
    "work_item_revisions": ["id", "rev"],
    "iterations": ["id"],
    "fields": ["reference_name"],
    "states": ["project", "work_item_type", "name"],
    "team_members": ["team_id", "id"],
    "projects": ["id"],
}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _project_names(config: Mapping[str, Any]) -> list[str]:
    """The configured projects: ``project`` (or ``projects``), a name or comma-separated names."""
    raw = config.get("project") or config.get("projects")
    if raw is None:
        return []
    parts = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    return [str(part).strip() for part in parts if str(part).strip()]


def _token(credentials: Mapping[str, str]) -> str:
    return str(credentials.get("token") or credentials.get("pat") or "")


def field_candidate(item: JsonDict, options: tuple[str, ...] = ()) -> FieldCandidate | None:
    """One entry of ``/_apis/wit/fields`` as a :class:`FieldCandidate` (types normalized)."""
    reference = item.get("referenceName")
    name = item.get("name")
    if not isinstance(reference, str) or not isinstance(name, str):
        return None
    kind = str(item.get("type") or "").lower()
    if item.get("isIdentity") or kind == "identity":
        normalized = "user"
    elif item.get("isPicklist") or kind.startswith("picklist"):
        normalized = "option"
    elif kind in ("integer", "double"):
        normalized = "number"
    elif kind == "boolean":
        normalized = "boolean"
    elif kind == "datetime":
        normalized = "datetime"
    elif kind in ("plaintext", "html", "history"):
        normalized = "text"
    elif kind == "string":
        normalized = "url" if reference.lower().endswith(("url", "link")) and "link" in name.lower() else "string"
    elif kind == "treepath":
        normalized = "sprint" if reference == settings.DEFAULT_SPRINT_FIELD else "other"
    else:
        normalized = "other"
    return FieldCandidate(id=reference, name=name, type=normalized, schema_key=reference, options=options)


class _Context:
    """What the resources of one source share, fetched once and lazily (thread-safe)."""

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        config: Mapping[str, Any],
        field_mappings: Mapping[str, str] | None,
        source_name: str,
        policy: RetryPolicy,
        page_size: int,
    ) -> None:
        self.base_url = base_url
        self.credentials = dict(credentials)
        self.config = dict(config)
        self.given_mappings = dict(field_mappings or {})
        self.source_name = source_name
        self.policy = policy
        self.page_size = max(1, page_size)
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}

    def _once(self, key: str, make: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            value: T = self._cache[key]
            return value

    @property
    def client(self) -> AzureBoardsClient:
        return self._once(
            "client",
            lambda: AzureBoardsClient(
                self.base_url, _token(self.credentials), source_name=self.source_name, policy=self.policy
            ),
        )

    def projects(self) -> list[JsonDict]:
        """Each configured project (every project of the organisation by default), in full."""

        def load() -> list[JsonDict]:
            client = self.client
            names = _project_names(self.config)
            if not names:
                names = [str(p["name"]) for p in _list_projects(client) if isinstance(p, dict) and p.get("name")]
            out = []
            for name in names:
                project, _ = client.get(client.url(settings.PROJECT, project=name))
                out.append(project)
            return out

        return self._once("projects", load)

    def team(self, project: JsonDict) -> tuple[str, str]:
        """``(team id, team name)`` of ``project``: the configured ``team`` or the default team."""
        name = str(project.get("name"))

        def load() -> tuple[str, str]:
            configured = self.config.get("team")
            if configured and len(self.projects()) == 1:
                client = self.client
                team, _ = client.get(client.url(settings.PROJECT + "/teams/{team}", project=name, team=str(configured)))
                return str(team["id"]), str(team["name"])
            default = project.get("defaultTeam") or {}
            return str(default.get("id") or f"{name} Team"), str(default.get("name") or f"{name} Team")

        return self._once(f"team:{name}", load)

    def fields(self) -> list[JsonDict]:
        def load() -> list[JsonDict]:
            client = self.client
            answer, _ = client.get(client.url(settings.FIELDS))
            return [item for item in answer.get("value") or [] if isinstance(item, dict)]

        return self._once("fields", load)

    def field_names(self) -> set[str]:
        return {str(item.get("referenceName")) for item in self.fields()}

    def picklist(self, picklist_id: str) -> list[str]:
        def load() -> list[str]:
            client = self.client
            answer, _ = client.get(client.url(settings.PICKLIST, picklist_id=picklist_id))
            return [str(value) for value in answer.get("items") or []]

        return self._once(f"picklist:{picklist_id}", load)

    def mappings(self) -> dict[str, str]:
        """``{canonical name: field reference name}``: as given, else discovered now."""
        if self.given_mappings:
            return self.given_mappings

        def discover() -> dict[str, str]:
            candidates = [c for c in (field_candidate(item) for item in self.fields()) if c is not None]
            proposal = propose(candidates)
            return {name: mapping.field_id for name, mapping in proposal.mappings.items()}

        return self._once("mappings", discover)


def _list_projects(client: AzureBoardsClient) -> Iterator[JsonDict]:
    """Every project of the organisation, following ``x-ms-continuationtoken``."""
    token: str | None = None
    while True:
        params: dict[str, Any] = {"$top": 100}
        if token:
            params["continuationToken"] = token
        answer, headers = client.get(client.url(settings.PROJECTS), params)
        yield from (item for item in answer.get("value") or [] if isinstance(item, dict))
        token = headers.get("x-ms-continuationtoken")
        if not token:
            return


def _with_contract(resource: DltResource) -> DltResource:
    """Give ``resource`` its table contract, plus a ``quarantine`` table variant for bad items
    (created first, so that it does not inherit the resource's columns and keys)."""
    resource.apply_hints(
        table_name=QUARANTINE_TABLE,
        write_disposition="append",
        columns=TABLES[QUARANTINE_TABLE],
        create_table_variant=True,
    )
    resource.apply_hints(
        write_disposition="merge", primary_key=PRIMARY_KEYS[resource.name], columns=TABLES[resource.name]
    )
    return resource


def _quarantine(resource: str, key: str, reason: str, payload: Any) -> Any:
    return dlt.mark.with_table_name(quarantine_row(resource, key, reason, payload), QUARANTINE_TABLE)


def _parsed(resource: str, items: list[Any], parse: Callable[[Any], JsonDict], where: str) -> Iterator[Any]:
    """Rows of ``items`` as one list, and each item ``parse`` rejects as a quarantine row."""
    rows = []
    for item in items:
        try:
            rows.append(parse(item))
        except MalformedItem as exc:
            yield _quarantine(resource, item_key(item, fallback=where), str(exc), item)
    if rows:
        yield rows


@dlt.source(name="azure_boards", max_table_nesting=0)
def _azure_boards(
    base_url: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    field_mappings: dict[str, str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "azure_boards",
    page_size: int = settings.BATCH_SIZE,
    retry_policy: Any = None,
) -> list[DltResource]:
    policy = retry_policy if isinstance(retry_policy, RetryPolicy) else RetryPolicy()
    ctx = _Context(base_url, credentials, config, field_mappings, source_name, policy, page_size)
    batch_size = max(1, min(settings.BATCH_SIZE, page_size))
    since_date, until_date = _utc(start_date), _utc(end_date)

    @dlt.resource(name="projects")
    def projects() -> Iterator[Any]:
        yield from _parsed("projects", ctx.projects(), parse_project, ctx.client.org)

    @dlt.resource(name="fields")
    def fields() -> Iterator[Any]:
        def parse(item: Any) -> JsonDict:
            picklist_id = item.get("picklistId") if isinstance(item, dict) else None
            values = ctx.picklist(str(picklist_id)) if item.get("isPicklist") and picklist_id else None
            return parse_field(item, values)

        yield from _parsed("fields", ctx.fields(), parse, ctx.client.org)

    @dlt.resource(name="states")
    def states() -> Iterator[Any]:
        client = ctx.client
        for project in ctx.projects():
            name = str(project["name"])
            types, _ = client.get(client.url(settings.WORK_ITEM_TYPES, project=name))
            for work_item_type in types.get("value") or []:
                type_name = work_item_type.get("name") if isinstance(work_item_type, dict) else None
                if not isinstance(type_name, str):
                    continue
                answer, _ = client.get(client.url(settings.TYPE_STATES, project=name, type=type_name))
                yield from _parsed(
                    "states",
                    answer.get("value") or [],
                    lambda item, p=name, t=type_name: parse_state(item, p, t),  # type: ignore[misc]
                    f"{name}/{type_name}",
                )

    @dlt.resource(name="iterations")
    def iterations() -> Iterator[Any]:
        client = ctx.client
        for project in ctx.projects():
            name = str(project["name"])
            _, team = ctx.team(project)
            answer, _ = client.get(client.url(settings.ITERATIONS, project=name, team=team))
            yield from _parsed(
                "iterations",
                answer.get("value") or [],
                lambda item, p=name, t=team: parse_iteration(item, p, t),  # type: ignore[misc]
                f"{name}/{team}",
            )

    @dlt.resource(name="team_members")
    def team_members() -> Iterator[Any]:
        client = ctx.client
        top = max(1, min(settings.MEMBERS_PAGE_SIZE, page_size))
        for project in ctx.projects():
            name = str(project["name"])
            team_id, team = ctx.team(project)
            skip = 0
            while True:
                url = client.url(settings.TEAM_MEMBERS, project=name, team=team)
                answer, _ = client.get(url, {"$top": top, "$skip": skip})
                page = answer.get("value") or []
                yield from _parsed(
                    "team_members",
                    page,
                    lambda item, p=name, i=team_id, t=team: parse_member(item, p, i, t),  # type: ignore[misc]
                    f"{name}/{team}",
                )
                if len(page) < top:
                    break  # a short page is the last
                skip += top

    @dlt.resource(name="work_items")
    def work_items(
        changed_at: dlt.sources.incremental[datetime] = dlt.sources.incremental(  # noqa: B008 (dlt's idiom)
            "changed_at",
            initial_value=since_date,
            end_value=until_date,
            on_cursor_value_missing="include",  # quarantine rows pass the cursor untouched
        ),
    ) -> Iterator[Any]:
        client = ctx.client
        mappings = ctx.mappings()
        since, until = _since(changed_at.start_value), _utc(changed_at.end_value)
        for project in ctx.projects():
            name = str(project["name"])
            wiql_url = client.url(settings.WIQL, project=name)

            def run(query: str, url: str = wiql_url) -> JsonDict:
                answer, _ = client.post(url, {"query": query}, {"timePrecision": "true"})
                return answer if isinstance(answer, dict) else {}

            ids, as_of = wiql_ids(run, since, until, now=datetime.now(UTC))
            batch_url = client.url(settings.WORK_ITEMS_BATCH, project=name)
            for batch in chunks(ids, batch_size):
                body: JsonDict = {"ids": batch, "$expand": "relations", "errorPolicy": "omit"}
                if as_of is not None:
                    body["asOf"] = wiql_time(as_of)
                answer, _ = client.post(batch_url, body)
                # errorPolicy "omit": items deleted (or not yet created at asOf) come back as null
                found = [item for item in answer.get("value") or [] if item is not None]
                yield from _parsed(
                    "work_items", found, lambda item: parse_work_item(item, mappings), f"{ctx.client.org}/{name}"
                )

    @dlt.resource(name="work_item_revisions")
    def work_item_revisions(
        changed_at: dlt.sources.incremental[datetime] = dlt.sources.incremental(  # noqa: B008 (dlt's idiom)
            "changed_at",
            initial_value=since_date,
            end_value=until_date,
            on_cursor_value_missing="include",
        ),
    ) -> Iterator[Any]:
        client = ctx.client
        mappings = ctx.mappings()
        since, until = _since(changed_at.start_value), _utc(changed_at.end_value)
        known = ctx.field_names()
        wanted = [
            *settings.REVISION_FIELDS,
            settings.BLOCKED_FIELD,
            mappings.get("sprint"),
            mappings.get("story_points"),
        ]
        names = list(dict.fromkeys(name for name in wanted if name and name in known))
        size = max(1, min(settings.REVISIONS_PAGE_SIZE, page_size))
        for project in ctx.projects():
            name = str(project["name"])
            url = client.url(settings.REVISIONS, project=name)
            params: dict[str, Any] = {"fields": ",".join(names), "includeIdentityRef": "true", "$maxPageSize": size}
            if since is not None:
                params["startDateTime"] = wiql_time(since)
            token: str | None = None
            while True:
                answer, _ = client.get(url, {**params, **({"continuationToken": token} if token else {})})
                values = [v for v in answer.get("values") or [] if until is None or _before(v, until)]
                yield from _parsed(
                    "work_item_revisions", values, lambda item: parse_revision(item, mappings), f"{client.org}/{name}"
                )
                next_token = answer.get("continuationToken")
                if answer.get("isLastBatch") is True or not next_token or next_token == token:
                    break  # the feed's own end signal (or a token that no longer moves)
                token = str(next_token)

    return [
        _with_contract(projects),
        _with_contract(fields),
        _with_contract(states),
        _with_contract(iterations),
        _with_contract(team_members),
        _with_contract(work_items),
        _with_contract(work_item_revisions),
    ]


def _since(cursor: datetime | None) -> datetime | None:
    """Where to start asking: a little before the cursor, so a change stamped with the cursor's
    own millisecond (or a clock a little behind) is not missed; dlt drops the rows it already
    has (older than the cursor, or equal and seen) and the merge keeps one row per key."""
    start = _utc(cursor)
    return start - timedelta(seconds=settings.CURSOR_OVERLAP_SECONDS) if start is not None else None


def _before(revision: Any, until: datetime) -> bool:
    """Whether a feed entry changed before ``until`` (unreadable entries pass, to be quarantined)."""
    try:
        return parse_azure_time(revision["fields"]["System.ChangedDate"]) < until
    except (KeyError, TypeError, ValueError):
        return True


def azure_boards_source(
    base_url: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    field_mappings: dict[str, str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "azure_boards",
    *,
    page_size: int = settings.BATCH_SIZE,
    retry_policy: RetryPolicy | None = None,
) -> DltSource:
    """The Azure Boards dlt source of one organisation (no network until it is iterated).

    ``base_url`` is ``https://dev.azure.com/<org>``; ``credentials["token"]`` a PAT;
    ``config["project"]`` one project or comma-separated projects (default: every project),
    ``config["team"]`` the team whose iterations are the sprints (default: the project's
    default team, ``<project> Team``). ``field_mappings`` is ``{canonical name: field
    reference name}``; without it the load discovers the fields first. ``start_date`` is the
    first run's cursor on ``System.ChangedDate``; ``end_date`` closes a backfill window (a
    run with an ``end_date`` does not move the stored cursors). ``page_size`` caps the work
    items per hydration call (at most 200) and the revisions and members per page.
    ``source_name`` names the Pulse source in error messages and (snake_cased) is the dlt
    source and schema name, so two Azure Boards sources of one tenant keep separate cursors.
    """
    if end_date is not None and start_date is None:
        raise ValueError("end_date needs a start_date: a backfill window has two ends")
    dlt_name = normalize_schema_name(source_name) or "azure_boards"
    factory = _azure_boards if dlt_name == "azure_boards" else _azure_boards.with_args(name=dlt_name)
    return factory(
        base_url,
        dict(credentials),
        dict(config),
        field_mappings=dict(field_mappings) if field_mappings else None,
        start_date=start_date,
        end_date=end_date,
        source_name=source_name,
        page_size=page_size,
        retry_policy=retry_policy,
    )


def _probe_policy(timeout: float) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=1, max_rate_limit_retries=0, connect_timeout=min(5.0, timeout), read_timeout=timeout
    )


def discover_fields(base_url: str, credentials: dict[str, str], config: dict[str, Any]) -> list[FieldCandidate]:
    """The organisation's work item fields as candidates for the canonical field mappings.

    Types are normalized (identity → ``user``, picklists → ``option`` with their values,
    integer/double → ``number``, dateTime → ``datetime``, plainText/html → ``text``);
    ``schema_key`` is the field's reference name (``Microsoft.VSTS.Scheduling.StoryPoints``).
    """
    client = AzureBoardsClient(base_url, _token(credentials), source_name=str(config.get("name") or "azure_boards"))
    answer, _ = client.get(client.url(settings.FIELDS))
    out: list[FieldCandidate] = []
    for item in answer.get("value") or []:
        if not isinstance(item, dict):
            continue
        options: tuple[str, ...] = ()
        if item.get("isPicklist") and item.get("picklistId"):
            values, _ = client.get(client.url(settings.PICKLIST, picklist_id=str(item["picklistId"])))
            options = tuple(str(value) for value in values.get("items") or [])
        candidate = field_candidate(item, options)
        if candidate is not None:
            out.append(candidate)
    return out


def check_connection(
    base_url: str, credentials: dict[str, str], config: dict[str, Any], *, timeout: float = 10.0
) -> tuple[bool, str]:
    """Reach the organisation, each configured project, its team and its work items with the PAT.

    ``(ok, what happened)``: which of host, PAT, permission, project or team failed, or what the
    PAT can see. One attempt per request and short timeouts; the message never contains the PAT.
    """
    name = str(config.get("name") or "azure_boards")
    try:
        client = AzureBoardsClient(base_url, _token(credentials), source_name=name, policy=_probe_policy(timeout))
        visible = list(_list_projects(client))
        names = _project_names(config) or [str(p.get("name")) for p in visible]
        if not names:
            return True, f"ok, but the PAT sees no project in org '{client.org}' at {base_url}"
        seen: list[str] = []
        for project_name in names:
            project, _ = client.get(client.url(settings.PROJECT, project=project_name))
            configured = config.get("team")
            team = (
                str(configured)
                if configured and len(names) == 1
                else str((project.get("defaultTeam") or {}).get("name") or f"{project_name} Team")
            )
            sprints, _ = client.get(client.url(settings.ITERATIONS, project=project_name, team=team))
            query = {"query": "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project"}
            found, _ = client.post(client.url(settings.WIQL, project=project_name), query, {"$top": 1})
            seen.append(
                f"project '{project.get('name')}' (team '{team}', {len(sprints.get('value') or [])} iterations"
                f"{', work items readable' if isinstance(found, dict) else ''})"
            )
    except AzureBoardsError as exc:
        return False, str(exc)
    return True, f"ok: org '{client.org}' at {base_url}: " + "; ".join(seen)
