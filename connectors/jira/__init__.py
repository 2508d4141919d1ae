"""Jira Cloud source: issues with their complete changelogs, sprints, boards, fields, statuses, users.

``jira_source(...)`` builds the dlt source without touching the network; HTTP happens only
when the source is iterated (``pipeline.run``). ``load_jira(...)`` runs one load into the
tenant's dataset ``raw_jira__<tenant>``. ``check_connection`` and ``discover_fields`` serve
``pulse source test`` and ``pulse source discover``. See README.md in this folder.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
from dlt.common.schema.typing import TDataType, TTableSchemaColumns
from dlt.common.schema.utils import normalize_schema_name
from dlt.extract.hints import TableNameMeta
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from connectors.github.helpers import MalformedItem, RetryPolicy, quarantine_row
from connectors.jira import settings
from connectors.jira.client import (
    JiraApiError,
    JiraAuthError,
    JiraClient,
    JiraError,
    JiraRateLimitError,
    jira_policy,
)
from connectors.jira.parsing import (
    NUMERIC_CANONICAL,
    embedded_changelog,
    field_candidates,
    issue_key_of,
    parse_board,
    parse_field,
    parse_history,
    parse_issue,
    parse_sprint,
    parse_status,
    parse_user,
)
from connectors.jira.pipeline import dataset_name, load_jira, pipeline_name, row_counts
from connectors.loading import QUARANTINE_COLUMNS, QUARANTINE_TABLE, table_columns
from pulse.fieldmap import CANONICAL_NAMES, FieldCandidate, field_ids, propose

__all__ = [
    "PRIMARY_KEYS",
    "QUARANTINE_TABLE",
    "TABLES",
    "JiraApiError",
    "JiraAuthError",
    "JiraError",
    "JiraRateLimitError",
    "RetryPolicy",
    "build_jql",
    "check_connection",
    "dataset_name",
    "discover_fields",
    "jira_policy",
    "jira_source",
    "jql_time",
    "load_jira",
    "pipeline_name",
    "project_keys",
    "row_counts",
]

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]

_CANONICAL_TYPES: dict[str, TDataType] = {
    name: "double" if name in NUMERIC_CANONICAL else "text" for name in CANONICAL_NAMES
}

#: The raw table contract: the dbt staging models read exactly these columns.
TABLES: dict[str, TTableSchemaColumns] = {
    "issues": table_columns(
        {
            "id": "text",
            "key": "text",
            "project_id": "text",
            "project_key": "text",
            "project_name": "text",
            "issue_type": "text",
            "issue_type_id": "text",
            "hierarchy_level": "bigint",
            "status": "text",
            "status_id": "text",
            "status_category": "text",
            "summary": "text",
            "assignee_account_id": "text",
            "assignee_email": "text",
            "reporter_account_id": "text",
            "reporter_email": "text",
            "parent_id": "text",
            "parent_key": "text",
            "caused_by_id": "text",
            "caused_by_key": "text",
            "labels": "json",
            "created_at": "timestamp",
            "updated_at": "timestamp",
            "resolved_at": "timestamp",
            "url": "text",
            **_CANONICAL_TYPES,
            "payload": "json",
        },
        keys=["id"],
    ),
    "issue_changes": table_columns(
        {
            "history_id": "text",
            "item_index": "bigint",
            "issue_id": "text",
            "issue_key": "text",
            "changed_at": "timestamp",
            "author_account_id": "text",
            "author_email": "text",
            "field": "text",
            "field_id": "text",
            "field_type": "text",
            "canonical_field": "text",
            "from_value": "text",
            "from_string": "text",
            "to_value": "text",
            "to_string": "text",
            "payload": "json",
        },
        keys=["history_id", "item_index"],
    ),
    "sprints": table_columns(
        {
            "id": "bigint",
            "board_id": "bigint",
            "origin_board_id": "bigint",
            "project_key": "text",
            "name": "text",
            "state": "text",
            "goal": "text",
            "start_at": "timestamp",
            "end_at": "timestamp",
            "completed_at": "timestamp",
            "payload": "json",
        },
        keys=["id"],
    ),
    "boards": table_columns(
        {
            "id": "bigint",
            "name": "text",
            "type": "text",
            "project_id": "text",
            "project_key": "text",
            "project_name": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    "fields": table_columns(
        {
            "id": "text",
            "name": "text",
            "is_custom": "bool",
            "schema_type": "text",
            "schema_items": "text",
            "schema_custom": "text",
            "schema_system": "text",
            "field_type": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    "statuses": table_columns(
        {
            "id": "text",
            "name": "text",
            "untranslated_name": "text",
            "category_key": "text",
            "category_name": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    "users": table_columns(
        {
            "account_id": "text",
            "account_type": "text",
            "email": "text",
            "display_name": "text",
            "active": "bool",
            "time_zone": "text",
            "payload": "json",
        },
        keys=["account_id"],
    ),
    QUARANTINE_TABLE: QUARANTINE_COLUMNS,
}
PRIMARY_KEYS = {
    "issues": ["id"],
    "issue_changes": ["history_id", "item_index"],
    "sprints": ["id"],
    "boards": ["id"],
    "fields": ["id"],
    "statuses": ["id"],
    "users": ["account_id"],
}


# -- JQL ---------------------------------------------------------------------------------------


def _ambiguous(local: datetime) -> bool:
    """Whether a wall-clock time occurs twice (the hour repeated when DST ends)."""
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


def jql_time(moment: datetime, zone: ZoneInfo | None, *, upper: bool) -> str:
    """``moment`` as a JQL date (``yyyy/MM/dd HH:mm``) in the account's zone, rounded outwards
    to the minute (down for a lower bound, up for an ``upper`` one) so the window only widens.

    A wall time DST makes ambiguous is widened by an hour, whichever of the two Jira picks; with
    no known zone the time is written in UTC and widened by the largest UTC offset."""
    moment = moment.astimezone(UTC)
    if zone is None:
        margin = timedelta(hours=settings.UNKNOWN_ZONE_MARGIN_HOURS)
        moment, zone = (moment + margin if upper else moment - margin), ZoneInfo("UTC")
    local = moment.astimezone(zone)
    floored = local.replace(second=0, microsecond=0)
    if upper and floored != local:
        floored = (floored.astimezone(UTC) + timedelta(minutes=1)).astimezone(zone)
    if _ambiguous(floored):
        floored = (floored.astimezone(UTC) + timedelta(hours=1 if upper else -1)).astimezone(zone)
    return floored.strftime("%Y/%m/%d %H:%M")


def build_jql(projects: Sequence[str], since: datetime | None, until: datetime | None, zone: ZoneInfo | None) -> str:
    """The issue query of one load: the projects, ``updated`` from ``since`` (always bounded, as
    ``/search/jql`` requires) up to ``until``, oldest created first so pages do not shift."""
    clauses = []
    if projects:
        clauses.append("project in (" + ", ".join(f'"{key}"' for key in projects) + ")")
    start = jql_time(since, zone, upper=False) if since is not None else "1970/01/01 00:00"
    clauses.append(f'updated >= "{start}"')
    if until is not None:
        clauses.append(f'updated <= "{jql_time(until, zone, upper=True)}"')
    return " AND ".join(clauses) + " ORDER BY created ASC, key ASC"


# -- the site ------------------------------------------------------------------------------------


def project_keys(config: dict[str, Any] | None) -> list[str]:
    """The ``projects`` config (comma-separated text or a list) as upper-case keys."""
    value = (config or {}).get("projects")
    if not value:
        return []
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [part.strip().upper() for part in parts if part.strip()]


class _Site:
    """What a load reads once and shares between resources: the client, the account's time
    zone, the field catalogue and the field mappings. Nothing is fetched before first use."""

    def __init__(
        self,
        base_url: str,
        credentials: dict[str, str],
        *,
        source_name: str,
        policy: RetryPolicy,
        mappings: dict[str, str] | None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = dict(credentials)
        self.source_name = source_name
        self.policy = policy
        self._given = {k: v for k, v in (mappings or {}).items() if v}
        self._lock = threading.RLock()
        self._client: JiraClient | None = None
        self._zone: tuple[ZoneInfo | None] | None = None
        self._catalogue: list[Any] | None = None
        self._mappings: dict[str, str] | None = None

    def client(self) -> JiraClient:
        with self._lock:
            if self._client is None:
                self._client = JiraClient(
                    self.base_url, self._credentials, source_name=self.source_name, policy=self.policy
                )
            return self._client

    def zone(self) -> ZoneInfo | None:
        """The account's profile time zone, in which Jira reads JQL dates (None if hidden)."""
        with self._lock:
            if self._zone is None:
                me = self.client().get(settings.MYSELF, what="reading the account's time zone (/myself)")
                name = me.get("timeZone") if isinstance(me, dict) else None
                try:
                    zone = ZoneInfo(name) if isinstance(name, str) and name else None
                except (ZoneInfoNotFoundError, ValueError):
                    zone = None
                if zone is None:
                    log.warning(
                        "Jira source '%s': the account hides its time zone; widening JQL dates", self.source_name
                    )
                self._zone = (zone,)
            return self._zone[0]

    def catalogue(self) -> list[Any]:
        with self._lock:
            if self._catalogue is None:
                fields = self.client().get(settings.FIELDS, what="reading the field catalogue (/field)")
                self._catalogue = fields if isinstance(fields, list) else []
            return self._catalogue

    def mappings(self) -> dict[str, str]:
        """``{canonical: field id}``: the source's stored mappings, else discovered now."""
        with self._lock:
            if self._mappings is None:
                if self._given:
                    self._mappings = dict(self._given)
                else:
                    proposal = propose(field_candidates(self.catalogue()))
                    self._mappings = {name: m.field_id for name, m in proposal.mappings.items()}
                    if proposal.missing:
                        log.warning(
                            "Jira source '%s': no field found for %s; map them with `pulse source map`",
                            self.source_name,
                            ", ".join(proposal.missing),
                        )
            return self._mappings

    def change_lookups(self) -> tuple[dict[str, str], dict[str, str]]:
        """(field id → canonical name, display name → field id) for reading changelog items."""
        by_field_id = {field_id: canonical for canonical, field_id in self.mappings().items()}
        by_name = {
            str(f["name"]): str(f["id"])
            for f in self.catalogue()
            if isinstance(f, dict) and f.get("id") and f.get("name")
        }
        return by_field_id, by_name

    def complete_histories(self, issue_ids: list[str]) -> dict[str, list[Any]]:
        """Every history of each issue (for changelogs ``expand=changelog`` cut short):
        ``/changelog/bulkfetch``, or one ``/issue/{id}/changelog`` walk per issue where the
        bulk endpoint does not exist (Jira Data Center)."""
        client = self.client()
        out: dict[str, dict[str, Any]] = {issue_id: {} for issue_id in issue_ids}
        try:
            for start in range(0, len(issue_ids), settings.BULK_ISSUES):
                for issue_id, histories in client.bulk_changelogs(issue_ids[start : start + settings.BULK_ISSUES]):
                    bucket = out.setdefault(issue_id, {})
                    for history in histories:
                        key = str(history.get("id")) if isinstance(history, dict) else str(len(bucket))
                        bucket[key] = history
        except JiraApiError as exc:
            if exc.status not in (404, 405):
                raise
            log.info("Jira source '%s': no bulk changelog endpoint; reading changelogs one by one", self.source_name)
            return {issue_id: client.issue_changelog(issue_id) for issue_id in issue_ids}
        return {issue_id: list(histories.values()) for issue_id, histories in out.items()}


# -- the source ---------------------------------------------------------------------------------


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _quarantine(resource: str, key: str, reason: str, payload: Any) -> Any:
    return dlt.mark.with_table_name(quarantine_row(resource, key, reason, payload), QUARANTINE_TABLE)


def _is_quarantine(meta: Any) -> bool:
    return isinstance(meta, TableNameMeta) and meta.table_name == QUARANTINE_TABLE


def _with_contract(resource: DltResource) -> DltResource:
    """The resource's table contract, plus a ``quarantine`` variant for bad items (created first,
    so the quarantine table does not inherit the resource's columns and keys)."""
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


def _batch(data: Any) -> list[Any]:
    return data if isinstance(data, list) else [data]


@dlt.source(name="jira", max_table_nesting=0)
def _jira(
    base_url: str,
    auth: Any,
    projects: list[str] | None = None,
    field_mappings: Any = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "jira",
    page_size: int = settings.PAGE_SIZE,
    retry_policy: Any = None,
) -> list[DltResource]:
    policy = retry_policy if isinstance(retry_policy, RetryPolicy) else jira_policy()
    site = _Site(base_url, auth, source_name=source_name, policy=policy, mappings=field_mappings)
    keys = list(projects or [])
    size = max(1, min(settings.PAGE_SIZE, page_size))
    overlap = timedelta(minutes=settings.CURSOR_OVERLAP_MINUTES)
    since_date, until_date = _utc(start_date), _utc(end_date)
    #: issue id → its embedded changelog, from ``issues`` until ``issue_changes`` takes it
    changelogs: dict[str, Any] = {}

    def rows_of(resource: str, items: Any, parse: Any, key_field: str) -> Iterator[Any]:
        rows = []
        for item in items if isinstance(items, list) else []:
            try:
                rows.append(parse(item))
            except MalformedItem as exc:
                key = f"{resource} {key_field}={item.get(key_field)}" if isinstance(item, dict) else resource
                yield _quarantine(resource, key, str(exc), item)
        if rows:
            yield rows

    @dlt.resource(name="fields")
    def fields_resource() -> Iterator[Any]:
        yield from rows_of("fields", site.catalogue(), parse_field, "id")

    @dlt.resource(name="statuses")
    def statuses() -> Iterator[Any]:
        items = site.client().get(settings.STATUSES, what="reading the statuses (/status)")
        yield from rows_of("statuses", items, parse_status, "id")

    @dlt.resource(name="users")
    def users() -> Iterator[Any]:
        pages = site.client().list_pages(
            settings.USERS, what="listing users (/users/search)", page_size=settings.USERS_PAGE_SIZE
        )
        seen: set[str] = set()
        for page in pages:
            fresh = [u for u in page if not (isinstance(u, dict) and u.get("accountId") in seen)]
            seen |= {str(u.get("accountId")) for u in page if isinstance(u, dict)}
            yield from rows_of("users", fresh, parse_user, "accountId")

    @dlt.resource(name="boards")
    def boards() -> Iterator[Any]:
        client = site.client()
        scopes: list[dict[str, Any]] = [{"projectKeyOrId": key} for key in keys] or [{}]
        seen: set[Any] = set()
        for params in scopes:
            what = f"listing the boards of project {params['projectKeyOrId']}" if params else "listing boards"
            for page in client.values_pages(
                settings.BOARDS, what=what, params=params, page_size=settings.AGILE_PAGE_SIZE
            ):
                fresh = [b for b in page if not (isinstance(b, dict) and b.get("id") in seen)]
                seen |= {b.get("id") for b in page if isinstance(b, dict)}
                yield from rows_of("boards", fresh, parse_board, "id")

    @dlt.transformer(name="sprints", data_from=boards)
    def sprints(board_rows: Any, meta: Any = None) -> Iterator[Any]:
        if _is_quarantine(meta):
            return
        client = site.client()
        for board in _batch(board_rows):
            if board.get("type") not in (None, "scrum"):
                continue  # kanban boards have no sprints (Jira answers 400)
            path = settings.BOARD_SPRINTS.format(board=board["id"])
            what = f"listing the sprints of board {board['id']}"
            for page in client.values_pages(path, what=what, page_size=settings.AGILE_PAGE_SIZE):
                yield from rows_of("sprints", page, lambda item, b=board: parse_sprint(item, b), "id")

    @dlt.resource(name="issues")
    def issues() -> Iterator[Any]:
        backfill = until_date is not None
        state = {} if backfill else dlt.current.resource_state()
        cursor = state.get("cursor") if isinstance(state.get("cursor"), dict) else None
        recent: dict[str, str] = dict(cursor["recent"]) if cursor else {}
        last = datetime.fromisoformat(cursor["updated_at"]) if cursor else None
        since = last - overlap if last is not None else since_date
        mappings = site.mappings()
        jql = build_jql(keys, since, until_date, site.zone())
        fields = [*settings.ISSUE_FIELDS, *dict.fromkeys(mappings.values())]
        newest, seen = last, dict(recent)
        for page in site.client().search(jql, fields, expand="changelog", page_size=size):
            rows = []
            for item in page:
                try:
                    row = parse_issue(item, mappings, site.base_url)
                except MalformedItem as exc:
                    yield _quarantine("issues", issue_key_of(item), str(exc), item)
                    continue
                updated, stamp = row["updated_at"], row["updated_at"].isoformat()
                if cursor is None and since_date is not None and updated < since_date:
                    continue  # before the first run's (or the window's) start
                if until_date is not None and updated >= until_date:
                    continue  # past the backfill window (JQL dates have minute precision)
                if recent.get(row["id"]) == stamp:
                    continue  # this version was loaded by an earlier run (the overlap)
                newest = updated if newest is None or updated > newest else newest
                seen[row["id"]] = stamp
                changelogs[row["id"]] = item.get("changelog")
                rows.append(row)
            if rows:
                yield rows
        if not backfill and newest is not None:
            horizon = newest - 2 * overlap
            state["cursor"] = {
                "updated_at": newest.isoformat(),
                "recent": {k: v for k, v in seen.items() if datetime.fromisoformat(v) >= horizon},
            }

    @dlt.transformer(name="issue_changes", data_from=issues)
    def issue_changes(issue_rows: Any, meta: Any = None) -> Iterator[Any]:
        if _is_quarantine(meta):
            return
        by_field_id, by_name = site.change_lookups()
        batch = _batch(issue_rows)
        histories: dict[str, list[Any]] = {}
        cut_short: list[str] = []
        for row in batch:
            embedded, complete = embedded_changelog(changelogs.pop(row["id"], None))
            if complete:
                histories[row["id"]] = embedded
            else:
                cut_short.append(row["id"])
        if cut_short:
            histories.update(site.complete_histories(cut_short))
        out: list[JsonDict] = []
        for row in batch:
            for history in histories.get(row["id"], []):
                try:
                    out += parse_history(history, row["id"], row["key"], by_field_id, by_name)
                except MalformedItem as exc:
                    hid = history.get("id") if isinstance(history, dict) else None
                    yield _quarantine("issue_changes", f"issue {row['key']} history={hid}", str(exc), history)
        if out:
            yield out

    return [
        _with_contract(fields_resource),
        _with_contract(statuses),
        _with_contract(users),
        _with_contract(boards),
        _with_contract(sprints),
        _with_contract(issues),
        _with_contract(issue_changes),
    ]


def jira_source(
    base_url: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    field_mappings: dict[str, str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "jira",
    *,
    page_size: int = settings.PAGE_SIZE,
    retry_policy: RetryPolicy | None = None,
) -> DltSource:
    """The Jira Cloud dlt source of one site (no network until it is iterated).

    ``credentials``: ``email`` and ``token`` (an API token, Basic auth), or only ``token`` (an
    OAuth access token, Bearer). ``config["projects"]``: project keys (comma-separated text or a
    list); default every project the account can browse. ``field_mappings``: ``{canonical name:
    field id}`` (``pulse.fieldmap.field_ids``); empty means: discover them at the start of the
    load. ``start_date`` is the first run's cursor on ``updated``; ``end_date`` closes a
    backfill window (a run with an ``end_date`` neither reads nor moves the stored cursor).
    ``source_name`` names the source in errors and, snake_cased, is the dlt source and schema
    name, so two Jira sources of one tenant keep separate cursors.
    """
    if end_date is not None and start_date is None:
        raise ValueError("end_date needs a start_date: a backfill window has two ends")
    dlt_name = normalize_schema_name(source_name) or "jira"
    factory = _jira if dlt_name == "jira" else _jira.with_args(name=dlt_name)
    mappings = field_ids(field_mappings) if field_mappings and _is_stored(field_mappings) else field_mappings
    return factory(
        base_url,
        dict(credentials),
        projects=project_keys(config),
        field_mappings=dict(mappings or {}),
        start_date=start_date,
        end_date=end_date,
        source_name=source_name,
        page_size=page_size,
        retry_policy=retry_policy,
    )


def _is_stored(mappings: dict[str, Any]) -> bool:
    """Whether ``mappings`` is the stored form (``{name: {"field_id": …}}``) rather than ids."""
    return any(isinstance(value, dict) for value in mappings.values())


# -- source test and discovery ---------------------------------------------------------------------


def _quick_client(base_url: str, credentials: dict[str, str], source_name: str, timeout: float) -> JiraClient:
    policy = jira_policy(
        max_attempts=1, max_rate_limit_retries=0, connect_timeout=min(5.0, timeout), read_timeout=timeout
    )
    return JiraClient(base_url, credentials, source_name=source_name, policy=policy)


def check_connection(
    base_url: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    *,
    source_name: str = "jira",
    timeout: float = 10.0,
) -> tuple[bool, str]:
    """Sign in, then list the projects the account can browse: ``(ok, what happened)``.

    Says which of these failed: the host is unreachable, the credentials are rejected, the
    account may browse no project at all (a missing permission), or a configured project is
    unknown to it; on success, who signed in and what it can read. One attempt per request,
    short timeouts; the message never contains the token."""
    site = base_url.rstrip("/")
    try:
        client = _quick_client(base_url, credentials, source_name, timeout)
        me = client.get(settings.MYSELF, what="signing in (/myself)")
        visible: list[str] = []
        for page in client.values_pages(
            settings.PROJECT_SEARCH, what="listing projects", page_size=settings.PROJECT_PAGE_SIZE
        ):
            visible += [str(p.get("key")) for p in page if isinstance(p, dict) and p.get("key")]
    except JiraError as exc:
        return False, str(exc)
    who = f"{me.get('displayName') or me.get('accountId')} <{me.get('emailAddress') or 'email hidden'}>"
    if not visible:
        return False, (
            f"signed in to {site} as {who}, but the account can browse no project: it lacks the Browse projects "
            "permission; grant it on the projects to load (or use another account's API token)"
        )
    wanted = project_keys(config)
    unknown = [key for key in wanted if key not in visible]
    if unknown:
        return False, (
            f"unknown project {', '.join(unknown)} at {site} (or {who} may not browse it); projects this "
            f"account can read: {', '.join(visible)}; fix the source's `projects` config"
        )
    chosen = wanted or visible
    zone = me.get("timeZone") or "hidden"
    return (
        True,
        f"ok: signed in to {site} as {who} (time zone {zone}); {len(chosen)} projects readable: {', '.join(chosen)}",
    )


def discover_fields(
    base_url: str, credentials: dict[str, str], config: dict[str, Any], *, source_name: str = "jira"
) -> list[FieldCandidate]:
    """The site's custom fields as candidates for ``pulse.fieldmap.propose`` (type from the
    field's schema, ``schema_key`` its custom type key such as ``…:gh-sprint``)."""
    client = _quick_client(base_url, credentials, source_name, 30.0)
    fields = client.get(settings.FIELDS, what="reading the field catalogue (/field)")
    return field_candidates(fields if isinstance(fields, list) else [])
