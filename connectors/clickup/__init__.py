"""ClickUp source: tasks with canonical fields, their status history, lists (sprints),
custom fields, members, and the sprint memberships Pulse observes itself.

``clickup_source(...)`` builds the dlt source without touching the network; HTTP happens only
when the source is iterated (``pipeline.run``). ``load_clickup(...)`` runs one load into the
tenant's dataset ``raw_clickup__<tenant>``. See README.md in this folder for the API's
quirks and why ``sprint_memberships`` exists (ClickUp keeps no sprint history).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
from dlt.common.schema.typing import TDataType, TTableSchemaColumns
from dlt.common.schema.utils import normalize_schema_name
from dlt.extract.hints import TableNameMeta
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from connectors.clickup import settings
from connectors.clickup.catalog import Catalog, build_catalog, config_list
from connectors.clickup.helpers import (
    CANONICAL_KINDS,
    ClickUpApiError,
    ClickUpAuthError,
    ClickUpClient,
    ClickUpConfigError,
    ClickUpError,
    ClickUpRateLimitError,
    JsonDict,
    MalformedItem,
    RetryPolicy,
    item_key,
    parse_field,
    parse_list,
    parse_member,
    parse_status_history,
    parse_task,
    quarantine_row,
)
from connectors.clickup.pipeline import dataset_name, load_clickup, pipeline_name, row_counts
from connectors.loading import QUARANTINE_COLUMNS, QUARANTINE_TABLE, table_columns
from pulse.fieldmap import FieldCandidate

__all__ = [
    "PRIMARY_KEYS",
    "QUARANTINE_TABLE",
    "TABLES",
    "ClickUpApiError",
    "ClickUpAuthError",
    "ClickUpConfigError",
    "ClickUpError",
    "ClickUpRateLimitError",
    "RetryPolicy",
    "check_connection",
    "clickup_source",
    "dataset_name",
    "discover_fields",
    "load_clickup",
    "pipeline_name",
    "row_counts",
]

_CANONICAL_TYPES: dict[str, TDataType] = {
    "number": "double",
    "boolean": "bool",
    "date": "date",
    "text": "text",
    "email": "text",
    "sprint": "text",
}

#: The raw table contracts: the dbt staging models read exactly these columns.
TABLES: dict[str, TTableSchemaColumns] = {
    "tasks": table_columns(
        {
            "id": "text",
            "custom_id": "text",
            "name": "text",
            "status": "text",
            "status_type": "text",
            "custom_item_id": "bigint",
            "task_type": "text",
            "date_created": "timestamp",
            "date_updated": "timestamp",
            "date_closed": "timestamp",
            "date_done": "timestamp",
            "archived": "bool",
            "creator_id": "bigint",
            "creator_email": "text",
            "assignee_email": "text",
            "assignee_emails": "text",
            "parent_id": "text",
            "top_level_parent_id": "text",
            "list_id": "text",
            "folder_id": "text",
            "space_id": "text",
            "space_name": "text",
            "location_list_ids": "json",
            "linked_task_ids": "json",
            "tags": "json",
            "points": "double",
            "url": "text",
            **{name: _CANONICAL_TYPES[kind] for name, kind in CANONICAL_KINDS.items()},
            "payload": "json",
        },
        keys=["id"],
    ),
    "task_status_history": table_columns(
        {
            "task_id": "text",
            "status": "text",
            "status_type": "text",
            "orderindex": "bigint",
            "since": "timestamp",
            "total_minutes": "bigint",
            "is_current": "bool",
            "current_since": "timestamp",
            "payload": "json",
        },
        keys=["task_id", "status"],
    ),
    "lists": table_columns(
        {
            "id": "text",
            "name": "text",
            "space_id": "text",
            "space_name": "text",
            "folder_id": "text",
            "folder_name": "text",
            "is_sprint": "bool",
            "start_date": "timestamp",
            "due_date": "timestamp",
            "orderindex": "bigint",
            "archived": "bool",
            "task_count": "bigint",
            "payload": "json",
        },
        keys=["id"],
    ),
    "custom_fields": table_columns(
        {
            "id": "text",
            "name": "text",
            "type": "text",
            "options": "json",
            "required": "bool",
            "list_ids": "json",
            "canonical_name": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    "members": table_columns(
        {"id": "bigint", "username": "text", "email": "text", "initials": "text", "role": "bigint", "payload": "json"},
        keys=["id"],
    ),
    "sprint_memberships": table_columns(
        {
            "list_id": "text",
            "task_id": "text",
            "first_seen_at": "timestamp",
            "last_seen_at": "timestamp",
            "left_at": "timestamp",
            "seen_on_first_walk": "bool",
        },
        keys=["list_id", "task_id"],
    ),
    QUARANTINE_TABLE: QUARANTINE_COLUMNS,
}
PRIMARY_KEYS = {
    "tasks": ["id"],
    "task_status_history": ["task_id", "status"],
    "lists": ["id"],
    "custom_fields": ["id"],
    "members": ["id"],
    "sprint_memberships": ["list_id", "task_id"],
}

_TASK_PARAMS = {"include_closed": "true", "subtasks": "true", "archived": "false"}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _token(credentials: dict[str, str]) -> str:
    token = (credentials or {}).get("token") or ""
    if not token.strip():
        raise ClickUpConfigError("ClickUp credentials need a 'token' (a personal token, pk_…)")
    return token.strip()


class _Lazy:
    """The client and the Workspace catalog, created on first use (building a source touches nothing)."""

    def __init__(self, client: Callable[[], ClickUpClient], config: dict[str, Any], mappings: dict[str, str]) -> None:
        self._make_client = client
        self._config = config
        self._mappings = mappings
        self._client: ClickUpClient | None = None
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()

    def client(self) -> ClickUpClient:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def catalog(self) -> Catalog:
        client = self.client()
        with self._lock:
            if self._catalog is None:
                self._catalog = build_catalog(client, self._config, self._mappings)
            return self._catalog


def _with_contract(resource: DltResource, *, quarantine: bool = False) -> DltResource:
    """Give ``resource`` its table contract (and a ``quarantine`` variant first, see GitHub's)."""
    if quarantine:
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


def _parsed(resource: str, key: str, item: Any, parse: Callable[..., JsonDict], **context: Any) -> Any:
    """``parse(item)``, or a quarantine row saying why it could not be parsed."""
    try:
        return parse(item, **context)
    except MalformedItem as exc:
        return _quarantine(resource, key, str(exc), item)


@dlt.source(name="clickup", max_table_nesting=0)
def _clickup(
    base_url: str,
    token: str,
    config: dict[str, Any],
    field_mappings: dict[str, str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "clickup",
    page_size: int = settings.PAGE_SIZE,
    retry_policy: Any = None,
) -> list[DltResource]:
    policy = retry_policy if isinstance(retry_policy, RetryPolicy) else RetryPolicy()
    lazy = _Lazy(
        lambda: ClickUpClient(base_url, token, source_name=source_name, policy=policy),
        dict(config or {}),
        dict(field_mappings or {}),
    )
    batch = max(1, min(settings.MAX_BULK_TASK_IDS, page_size))
    since_date, until_date = _utc(start_date), _utc(end_date)

    @dlt.resource(name="lists")
    def lists() -> Iterator[Any]:
        for info in lazy.catalog().lists:
            yield _parsed(
                "lists", f"list id={info.id}", info.payload, parse_list, space=info.space, is_sprint=info.is_sprint
            )

    @dlt.resource(name="custom_fields")
    def custom_fields() -> Iterator[Any]:
        catalog = lazy.catalog()
        canonical = {field_id: name for name, field_id in catalog.mappings.items()}
        for field_id, item in catalog.fields.items():
            lists_of = catalog.field_lists.get(field_id, [])
            key = f"field id={field_id}"
            yield _parsed(
                "custom_fields", key, item, parse_field, list_ids=lists_of, canonical_name=canonical.get(field_id)
            )

    @dlt.resource(name="members")
    def members() -> Iterator[Any]:
        for member in lazy.catalog().members:
            yield _parsed("members", "member", member, parse_member)

    @dlt.resource(name="tasks")
    def tasks(
        date_updated: dlt.sources.incremental[datetime] = dlt.sources.incremental(  # noqa: B008 (dlt's idiom)
            "date_updated",
            initial_value=since_date,
            end_value=until_date,
            lag=settings.CURSOR_OVERLAP_SECONDS,
            on_cursor_value_missing="include",  # quarantine rows pass the cursor untouched
        ),
    ) -> Iterator[Any]:
        catalog = lazy.catalog()
        client = lazy.client()
        context = catalog.context()
        params: dict[str, Any] = {**_TASK_PARAMS, "order_by": "created", "reverse": "true"}
        start, end = date_updated.start_value, date_updated.end_value
        if start is not None:
            params["date_updated_gt"] = _millis(start) - 1  # ClickUp's bound is exclusive
        if end is not None:
            params["date_updated_lt"] = _millis(end)
        for info in catalog.lists:
            for page in client.task_pages(info.id, params):
                rows: list[JsonDict] = []
                for item in page:
                    home = item.get("list") if isinstance(item, dict) else None
                    if isinstance(home, dict) and str(home.get("id")) != info.id:
                        continue  # listed here as a second list; its home list lists it too
                    try:
                        rows.append(parse_task(item, context))
                    except MalformedItem as exc:
                        yield _quarantine("tasks", item_key(item), f"list {info.id}: {exc}", item)
                if rows:
                    yield rows

    @dlt.transformer(name="task_status_history", data_from=tasks)
    def task_status_history(rows: Any, meta: Any = None) -> Iterator[Any]:
        if isinstance(meta, TableNameMeta) and meta.table_name == QUARANTINE_TABLE:
            return
        client = lazy.client()
        ids = [row["id"] for row in (rows if isinstance(rows, list) else [rows])]
        for offset in range(0, len(ids), batch):
            chunk = ids[offset : offset + batch]
            if len(chunk) == 1:
                bodies = {chunk[0]: client.get(settings.TIME_IN_STATUS.format(task_id=chunk[0]))}
            else:
                bodies = client.get(settings.BULK_TIME_IN_STATUS, [("task_ids", task_id) for task_id in chunk])
            out: list[JsonDict] = []
            for task_id in chunk:
                body = bodies.get(task_id) if isinstance(bodies, dict) else None
                if body is None:
                    continue  # deleted since it was listed
                try:
                    out += parse_status_history(task_id, body)
                except MalformedItem as exc:
                    yield _quarantine("task_status_history", f"task id={task_id}", str(exc), body)
            if out:
                yield out

    @dlt.resource(name="sprint_memberships")
    def sprint_memberships() -> Iterator[Any]:
        """Who is in each sprint list now, as seen by this load (ClickUp keeps no sprint history).

        Resource state keeps, per sprint list, when Pulse first walked it and its current
        members with when each was first seen; a member no longer listed gets ``left_at``.
        """
        catalog = lazy.catalog()
        client = lazy.client()
        now = catalog.loaded_at
        state = dlt.current.resource_state()
        walked: dict[str, str] = state.setdefault("walked", {})  # list id -> first walk
        # list id -> task id -> [first seen, seen on the list's first walk, last seen]
        current: dict[str, dict[str, list[Any]]] = state.setdefault("members", {})
        params = {**_TASK_PARAMS, "include_timl": "true", "order_by": "created", "reverse": "true"}
        stamp = now.isoformat()
        for gone in set(current) - {info.id for info in catalog.sprint_lists}:
            current.pop(gone)  # deleted, archived or no longer a sprint list: nothing left to watch
        for info in catalog.sprint_lists:
            if info.id in walked and not info.is_recent(now):
                current.pop(info.id, None)  # frozen: its rows keep what the last walk saw
                continue
            first_walk = info.id not in walked
            walked.setdefault(info.id, stamp)
            seen: dict[str, None] = {}
            for page in client.task_pages(info.id, params):
                for item in page:
                    if isinstance(item, dict) and isinstance(item.get("id"), str | int):
                        seen[str(item["id"])] = None
            before = current.get(info.id, {})
            members: dict[str, list[Any]] = {}
            rows: list[JsonDict] = []
            for task_id in seen:
                first_seen, on_first_walk, _ = before.get(task_id, [stamp, first_walk, stamp])
                members[task_id] = [first_seen, on_first_walk, stamp]
                rows.append(_membership(info.id, task_id, first_seen, stamp, None, on_first_walk))
            for task_id, (first_seen, on_first_walk, last_seen) in before.items():
                if task_id not in members:  # no longer in the sprint: it left at this load
                    rows.append(_membership(info.id, task_id, first_seen, last_seen, stamp, on_first_walk))
            current[info.id] = members
            if rows:
                yield rows

    return [
        _with_contract(lists, quarantine=True),
        _with_contract(custom_fields, quarantine=True),
        _with_contract(members, quarantine=True),
        _with_contract(tasks, quarantine=True),
        _with_contract(task_status_history, quarantine=True),
        _with_contract(sprint_memberships),
    ]


def _membership(
    list_id: str, task_id: str, first_seen: str, last_seen: str, left: str | None, on_first_walk: bool
) -> JsonDict:
    return {
        "list_id": list_id,
        "task_id": task_id,
        "first_seen_at": datetime.fromisoformat(first_seen),
        "last_seen_at": datetime.fromisoformat(last_seen),
        "left_at": datetime.fromisoformat(left) if left else None,
        "seen_on_first_walk": bool(on_first_walk),
    }


def clickup_source(
    base_url: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    field_mappings: dict[str, str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "clickup",
    *,
    page_size: int = settings.PAGE_SIZE,
    retry_policy: RetryPolicy | None = None,
) -> DltSource:
    """The ClickUp dlt source of one Workspace (no network until it is iterated).

    ``credentials``: ``token`` (a personal token ``pk_…``, or an OAuth access token).
    ``config``: ``workspace_id`` (needed when the token sees several Workspaces) and
    ``space_ids`` (a list or comma-separated; default every Space). ``field_mappings`` is
    ``{canonical name: ClickUp field id}`` (``sprint``: ``folder:<id>[,<id>…]``); without it the
    load proposes them from the Workspace's fields first. ``start_date`` is the first run's
    cursor on ``date_updated``; ``end_date`` closes a backfill window (such a run does not move
    the stored cursor). ``page_size`` is the number of task ids per ``bulk_time_in_status``
    request (ClickUp's task pages are always 100). ``source_name`` names the Pulse source in
    error messages and (snake_cased) is the dlt source name, so two ClickUp sources of one
    tenant keep separate cursors.
    """
    if end_date is not None and start_date is None:
        raise ValueError("end_date needs a start_date: a backfill window has two ends")
    dlt_name = normalize_schema_name(source_name) or "clickup"
    factory = _clickup if dlt_name == "clickup" else _clickup.with_args(name=dlt_name)
    return factory(
        base_url,
        _token(credentials),
        dict(config or {}),
        field_mappings=dict(field_mappings or {}),
        start_date=start_date,
        end_date=end_date,
        source_name=source_name,
        page_size=page_size,
        retry_policy=retry_policy,
    )


def _quick_client(base_url: str, credentials: dict[str, str], source_name: str, timeout: float) -> ClickUpClient:
    policy = RetryPolicy(
        max_attempts=1, max_rate_limit_retries=0, connect_timeout=min(5.0, timeout), read_timeout=timeout
    )
    return ClickUpClient(base_url, _token(credentials), source_name=source_name, policy=policy)


def check_connection(
    base_url: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    *,
    source_name: str = "clickup",
    timeout: float = 10.0,
) -> tuple[bool, str]:
    """Reach the Workspace and its Spaces with the token: ``(ok, what happened)``.

    Says which of these failed: the host is unreachable, the token is rejected or expired,
    the token may not read the Workspace, the Workspace or a Space id is unknown. One attempt
    per request, short timeouts; the message never contains the token.
    """
    try:
        client = _quick_client(base_url, credentials, source_name, timeout)
        catalog = build_catalog(client, config, None, propose_missing=False)
    except ClickUpAuthError as exc:
        if exc.permission:
            return False, (
                f"the ClickUp token of source '{source_name}' is valid but may not read {exc.url} "
                f"({exc.detail}); give the token's user access to the Workspace and its Spaces, "
                "or use the token of a member who has it"
            )
        return False, str(exc)
    except ClickUpError as exc:
        return False, str(exc)
    sprints = catalog.sprint_lists
    spaces = ", ".join(str(s.get("name")) for s in catalog.spaces) or "none"
    wanted = config_list(config.get("space_ids"))
    scope = f"{len(wanted)} configured Space(s)" if wanted else "every Space"
    return True, (
        f"ok: Workspace '{catalog.team.get('name')}' ({catalog.team_id}) at {base_url}, {scope}: {spaces}; "
        f"{len(catalog.lists)} lists ({len(sprints)} in sprint folders), {len(catalog.members)} members"
    )


def discover_fields(base_url: str, credentials: dict[str, str], config: dict[str, Any]) -> list[FieldCandidate]:
    """The Workspace's custom fields (and its sprint folders) as field-mapping candidates.

    Types are normalized to ``pulse.fieldmap.FIELD_TYPES``; ``schema_key`` is ClickUp's own
    field type (``drop_down``, ``checkbox``…). The sprint is no field in ClickUp: the folders
    that hold sprint lists are offered as one ``sprint`` candidate ``folder:<id>[,<id>…]``.
    """
    policy = RetryPolicy(max_attempts=2, max_rate_limit_retries=2, server_error_backoff=1.0)
    client = ClickUpClient(base_url, _token(credentials), source_name="clickup", policy=policy)
    return build_catalog(client, config, None, propose_missing=False).candidates()
