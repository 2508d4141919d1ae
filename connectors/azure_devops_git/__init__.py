"""Azure DevOps Git source: repositories, pull requests of every status, reviewers and their
votes (with the time each vote was cast), commits and linked work items.

``azure_devops_git_source(...)`` builds the dlt source without touching the network; HTTP
happens only when the source is iterated. ``load_azure_devops_git(...)`` (``pipeline.py``)
runs one load into the tenant's dataset ``raw_azure_devops_git__<tenant>``. Azure DevOps has
no "updated since" filter for pull requests, so the connector keeps what it saw in dlt's
state and re-reads only what can have changed; see README.md in this folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.common.schema.utils import normalize_schema_name
from dlt.extract.hints import TableNameMeta
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from connectors.azure_devops_git import settings
from connectors.azure_devops_git.helpers import (
    AzureDevOpsGitApiError,
    AzureDevOpsGitAuthError,
    AzureDevOpsGitClient,
    AzureDevOpsGitError,
    AzureDevOpsGitRateLimitError,
    JsonDict,
    LazyClient,
    MalformedItem,
    RetryPolicy,
    description_cut,
    item_key,
    parse_commit,
    parse_pull_request,
    parse_repository,
    parse_reviewer,
    parse_work_item_ref,
    review_activity,
)
from connectors.azure_devops_git.pipeline import dataset_name, load_azure_devops_git, pipeline_name, row_counts
from connectors.github.helpers import quarantine_row
from connectors.loading import QUARANTINE_COLUMNS, QUARANTINE_TABLE, table_columns
from pulse.fieldmap import FieldCandidate

log = logging.getLogger(__name__)

__all__ = [
    "PRIMARY_KEYS",
    "QUARANTINE_TABLE",
    "TABLES",
    "AzureDevOpsGitApiError",
    "AzureDevOpsGitAuthError",
    "AzureDevOpsGitError",
    "AzureDevOpsGitRateLimitError",
    "RetryPolicy",
    "azure_devops_git_source",
    "check_connection",
    "dataset_name",
    "discover_fields",
    "load_azure_devops_git",
    "pipeline_name",
    "row_counts",
]

#: The raw table contract: the dbt staging models read exactly these columns.
TABLES: dict[str, TTableSchemaColumns] = {
    "repositories": table_columns(
        {
            "id": "text",
            "name": "text",
            "project_id": "text",
            "project_name": "text",
            "default_branch": "text",
            "size": "bigint",
            "remote_url": "text",
            "web_url": "text",
            "is_disabled": "bool",
            "payload": "json",
        },
        keys=["id"],
    ),
    "pull_requests": table_columns(
        {
            "id": "bigint",
            "repository_id": "text",
            "repository_name": "text",
            "project_id": "text",
            "project_name": "text",
            "status": "text",
            "is_draft": "bool",
            "title": "text",
            "description": "text",
            "author_id": "text",
            "author_name": "text",
            "author_email": "text",
            "created_at": "timestamp",
            "closed_at": "timestamp",
            "source_ref": "text",
            "target_ref": "text",
            "merge_status": "text",
            "last_merge_source_commit": "text",
            "last_merge_target_commit": "text",
            "last_merge_commit": "text",
            "artifact_id": "text",
            "url": "text",
            "web_url": "text",
            "change_hash": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    "reviewers": table_columns(
        {
            "pull_request_id": "bigint",
            "reviewer_id": "text",
            "repository_id": "text",
            "display_name": "text",
            "unique_name": "text",
            "vote": "bigint",
            "is_required": "bool",
            "has_declined": "bool",
            "is_flagged": "bool",
            "is_container": "bool",
            "voted_at": "timestamp",
            "first_voted_at": "timestamp",
            "last_vote": "bigint",
            "vote_reset_at": "timestamp",
            "comment_count": "bigint",
            "last_commented_at": "timestamp",
            "first_commented_at": "timestamp",
            "payload": "json",
        },
        keys=["pull_request_id", "reviewer_id"],
    ),
    "commits": table_columns(
        {
            "pull_request_id": "bigint",
            "commit_id": "text",
            "repository_id": "text",
            "author_name": "text",
            "author_email": "text",
            "authored_at": "timestamp",
            "committer_name": "text",
            "committer_email": "text",
            "committed_at": "timestamp",
            "comment": "text",
            "url": "text",
            "payload": "json",
        },
        keys=["pull_request_id", "commit_id"],
    ),
    "pull_request_work_items": table_columns(
        {
            "pull_request_id": "bigint",
            "work_item_id": "bigint",
            "repository_id": "text",
            "url": "text",
            "payload": "json",
        },
        keys=["pull_request_id", "work_item_id"],
    ),
    QUARANTINE_TABLE: QUARANTINE_COLUMNS,
}
#: Tables read per changed pull request; a load replaces all of that pull request's rows.
CHILD_TABLES = ("reviewers", "commits", "pull_request_work_items")
PRIMARY_KEYS: dict[str, list[str]] = {
    "repositories": ["id"],
    "pull_requests": ["id"],
    "reviewers": ["pull_request_id", "reviewer_id"],
    "commits": ["pull_request_id", "commit_id"],
    "pull_request_work_items": ["pull_request_id", "work_item_id"],
}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _repository_names(value: Any) -> list[str]:
    """``repositories`` from a source's config: a list, or a comma-separated string."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


def _with_contract(resource: DltResource) -> DltResource:
    """Give ``resource`` its table contract, plus a ``quarantine`` table variant for bad items
    (created first, so the quarantine table inherits none of the resource's columns or keys)."""
    resource.apply_hints(
        table_name=QUARANTINE_TABLE,
        write_disposition="append",
        columns=TABLES[QUARANTINE_TABLE],
        create_table_variant=True,
    )
    name = resource.name
    resource.apply_hints(write_disposition="merge", primary_key=PRIMARY_KEYS[name], columns=TABLES[name])
    if name in CHILD_TABLES:
        # A changed pull request's children replace what was stored for it (a reviewer removed,
        # a commit force-pushed away, a work item unlinked): delete-insert by pull request.
        resource.apply_hints(merge_key="pull_request_id")
    return resource


def _quarantine(resource: str, key: str, reason: str, payload: Any) -> Any:
    return dlt.mark.with_table_name(quarantine_row(resource, key, reason, payload), QUARANTINE_TABLE)


def _is_quarantine(meta: Any) -> bool:
    return isinstance(meta, TableNameMeta) and meta.table_name == QUARANTINE_TABLE


def _state_value(row: JsonDict) -> str:
    """What the state keeps of a pull request: whether it was active, and its change hash."""
    return ("a" if row["status"] == "active" else "c") + str(row["change_hash"])


def _where(project: str, pull_request: JsonDict) -> str:
    """How quarantine records name a pull request: ``project/repository!id``."""
    return f"{project}/{pull_request.get('repository_name')}!{pull_request['id']}"


def _child_path(client: AzureDevOpsGitClient, template: str, pull_request: JsonDict) -> str:
    return client.path(template, repository=pull_request["repository_id"], id=pull_request["id"])


@dataclass
class _Seen:
    """What one run saw of one repository's pull requests, for the state of the next run."""

    candidates: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    newest: datetime | None = None

    def note(self, row: JsonDict) -> None:
        value = _state_value(row)
        self.candidates[str(row["id"])] = (value, None if row["status"] == "active" else row["closed_at"])
        for moment in (row["created_at"], row["closed_at"]):
            if moment is not None and (self.newest is None or moment > self.newest):
                self.newest = moment

    def known(self, since: datetime | None) -> dict[str, str]:
        """The state to keep: active pull requests, and closed ones not older than ``since``."""
        return {
            key: value
            for key, (value, closed) in self.candidates.items()
            if closed is None or since is None or closed >= since
        }


@dlt.source(name="azure_devops_git", max_table_nesting=0)
def _azure_devops_git(
    base_url: str,
    token: str,
    project: str,
    repositories: list[str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "azure_devops_git",
    page_size: int = settings.PAGE_SIZE,
    retry_policy: Any = None,
) -> list[DltResource]:
    policy = retry_policy if isinstance(retry_policy, RetryPolicy) else RetryPolicy()
    top = max(1, min(settings.MAX_PAGE_SIZE, page_size))
    commits_top = max(1, min(settings.COMMITS_PAGE_SIZE, page_size))
    overlap = timedelta(seconds=settings.CURSOR_OVERLAP_SECONDS)
    since_date, until_date = _utc(start_date), _utc(end_date)
    backfill = until_date is not None
    chosen = list(repositories or [])

    def make_client() -> AzureDevOpsGitClient:
        if not project:
            raise AzureDevOpsGitError(
                f"source '{source_name}' has no 'project' in its config; set it with "
                "`pulse source update --config project=<project>`"
            )
        if not token:
            raise AzureDevOpsGitAuthError(
                f"source '{source_name}' has no PAT; set it with `pulse source update --credential token=<PAT>`"
            )
        return AzureDevOpsGitClient(base_url, token, source_name=source_name, project=project, policy=policy)

    lazy = LazyClient(make_client)

    def repository_items() -> list[Any]:
        client = lazy.get()
        if chosen:
            return [client.json(client.path(settings.REPOSITORY, repository=name)) for name in chosen]
        return client.values(client.path(settings.REPOSITORIES))

    @dlt.resource(name="repositories")
    def repositories_resource() -> Iterator[Any]:
        for item in repository_items():
            try:
                yield parse_repository(item)
            except MalformedItem as exc:
                yield _quarantine("repositories", item_key(item, fallback=project), str(exc), item)

    def pull_request_rows(
        client: AzureDevOpsGitClient, repo: JsonDict, known: dict[str, str], cursor: datetime | None, seen: _Seen
    ) -> Iterator[Any]:
        """One repository's pull requests that are new or changed (every one in a first run, those
        created in the window in a backfill), as rows or quarantine records.

        Lists are ordered by creation, newest first. Incremental runs read every active pull
        request, then all of them newest first until one that closed before the cursor, then
        one by one those that were active last time and were not listed (they closed since,
        but were created before the place the list stopped). Only pull requests whose change
        hash differs from the stored one are emitted.
        """
        where = f"{project}/{repo['name']}"
        path = client.path(settings.PULL_REQUESTS, repository=repo["id"])
        processed: set[int] = set()

        def parsed(item: Any) -> Any:
            """A row, or a quarantine record for an item that does not parse."""
            try:
                return parse_pull_request(item, client.base_url)
            except MalformedItem as exc:
                return _quarantine("pull_requests", item_key(item, fallback=where), str(exc), item)

        def listed(status: str) -> Iterator[Any]:
            for page in client.pages_by_skip(path, {"searchCriteria.status": status}, top):
                for item in page:
                    yield parsed(item)

        def emit(row: Any, *, compare: bool) -> Iterator[Any]:
            if not isinstance(row, dict):
                yield row  # quarantined
                return
            if row["id"] in processed:
                return  # listed twice in one run (its status changed while we were paging)
            processed.add(row["id"])
            seen.note(row)
            if compare and known.get(str(row["id"])) == _state_value(row):
                return
            if description_cut(row):
                single = client.path(settings.PULL_REQUEST, repository=repo["id"], id=row["id"])
                try:
                    whole = parse_pull_request(client.json(single), client.base_url)
                    row = {**whole, "change_hash": row["change_hash"]}
                except MalformedItem:
                    pass  # keep the cut description rather than lose the pull request
                except AzureDevOpsGitApiError as exc:
                    if exc.status != 404:
                        raise
                    log.warning("pull request %s was deleted while it was being read", row["web_url"])
            yield row

        if backfill:
            assert since_date is not None and until_date is not None
            for row in listed("all"):
                if isinstance(row, dict) and row["created_at"] >= until_date:
                    continue
                if isinstance(row, dict) and row["created_at"] < since_date:
                    return  # the rest was created earlier still
                yield from emit(row, compare=False)
            return
        if cursor is None:
            for row in listed("all"):
                yield from emit(row, compare=False)
            return
        for row in listed("active"):
            yield from emit(row, compare=True)
        stop = cursor - overlap
        for row in listed("all"):
            closed = row.get("closed_at") if isinstance(row, dict) and row["status"] != "active" else None
            if closed is not None and closed < stop:
                break  # every closed pull request listed after it was either seen or active last time
            yield from emit(row, compare=True)
        for key, value in known.items():
            if not value.startswith("a") or int(key) in processed:
                continue
            try:
                item = client.json(client.path(settings.PULL_REQUEST, repository=repo["id"], id=key))
            except AzureDevOpsGitApiError as exc:
                if exc.status == 404:
                    continue  # deleted since the last run
                raise
            yield from emit(parsed(item), compare=True)

    @dlt.resource(name="pull_requests")
    def pull_requests() -> Iterator[Any]:
        client = lazy.get()
        state = dlt.current.resource_state()
        stored = state.get("cursor")
        cursor = datetime.fromisoformat(stored) if isinstance(stored, str) else since_date
        known_by_repo: dict[str, dict[str, str]] = dict(state.get("known") or {})
        newest = cursor
        seen_by_repo: dict[str, _Seen] = {}
        for item in repository_items():
            try:
                repo = parse_repository(item)
            except MalformedItem:
                continue  # quarantined by the repositories resource
            seen = seen_by_repo[repo["id"]] = _Seen()
            yield from pull_request_rows(client, repo, known_by_repo.get(repo["id"], {}), cursor, seen)
            if seen.newest is not None and (newest is None or seen.newest > newest):
                newest = seen.newest
        if backfill:
            return  # a backfill window leaves the cursor and the stored state as they were
        since = None if newest is None else newest - overlap
        for repo_id, seen in seen_by_repo.items():
            known_by_repo[repo_id] = seen.known(since)
        state["known"] = known_by_repo
        if newest is not None:
            state["cursor"] = newest.isoformat()

    def children(resource: str, pull_request: JsonDict, rows: Iterator[Any]) -> Iterator[Any]:
        """Rows of one child endpoint; a pull request deleted meanwhile leaves a quarantine trace."""
        where = _where(project, pull_request)
        try:
            yield from rows
        except AzureDevOpsGitApiError as exc:
            if exc.status not in (404, 410):
                raise
            yield _quarantine(resource, where, str(exc), {"url": exc.url, "status": exc.status})

    @dlt.transformer(name="reviewers", data_from=pull_requests, parallelized=True)
    def reviewers(pull_request: JsonDict, meta: Any = None) -> Iterator[Any]:
        if _is_quarantine(meta):
            return
        items = pull_request["payload"].get("reviewers") or []
        if not items:
            return  # nobody to date a vote for: no need to read the threads

        def rows() -> Iterator[Any]:
            client = lazy.get()
            where = _where(project, pull_request)
            path = _child_path(client, settings.PULL_REQUEST_THREADS, pull_request)
            activity, bad = review_activity(client.values(path))
            for thread, reason in bad:
                yield _quarantine("pull_request_threads", item_key(thread, fallback=where), reason, thread)
            out = []
            for item in items:
                try:
                    out.append(parse_reviewer(item, pull_request, activity))
                except MalformedItem as exc:
                    yield _quarantine("reviewers", item_key(item, fallback=where), str(exc), item)
            if out:
                yield out

        yield from children("reviewers", pull_request, rows())

    @dlt.transformer(name="commits", data_from=pull_requests, parallelized=True)
    def commits(pull_request: JsonDict, meta: Any = None) -> Iterator[Any]:
        if _is_quarantine(meta):
            return

        def rows() -> Iterator[Any]:
            client = lazy.get()
            where = _where(project, pull_request)
            path = _child_path(client, settings.PULL_REQUEST_COMMITS, pull_request)
            for page in client.pages_by_token(path, {"$top": commits_top}):
                out = []
                for item in page:
                    try:
                        out.append(parse_commit(item, pull_request))
                    except MalformedItem as exc:
                        yield _quarantine("commits", item_key(item, fallback=where), str(exc), item)
                if out:
                    yield out

        yield from children("commits", pull_request, rows())

    @dlt.transformer(name="pull_request_work_items", data_from=pull_requests, parallelized=True)
    def pull_request_work_items(pull_request: JsonDict, meta: Any = None) -> Iterator[Any]:
        if _is_quarantine(meta):
            return

        def rows() -> Iterator[Any]:
            client = lazy.get()
            where = _where(project, pull_request)
            path = _child_path(client, settings.PULL_REQUEST_WORK_ITEMS, pull_request)
            out = []
            for item in client.values(path):
                try:
                    out.append(parse_work_item_ref(item, pull_request))
                except MalformedItem as exc:
                    yield _quarantine("pull_request_work_items", item_key(item, fallback=where), str(exc), item)
            if out:
                yield out

        yield from children("pull_request_work_items", pull_request, rows())

    return [
        _with_contract(repositories_resource),
        _with_contract(pull_requests),
        _with_contract(reviewers),
        _with_contract(commits),
        _with_contract(pull_request_work_items),
    ]


def azure_devops_git_source(
    base_url: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    field_mappings: dict[str, str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "azure_devops_git",
    *,
    page_size: int = settings.PAGE_SIZE,
    retry_policy: RetryPolicy | None = None,
) -> DltSource:
    """The Azure DevOps Git dlt source of one project (no network until it is iterated).

    ``base_url`` is the organisation (``https://dev.azure.com/<org>``); ``credentials`` holds
    ``token`` (a PAT with Code (Read)); ``config`` holds ``project`` and optionally
    ``repositories`` (names or ids, a list or comma-separated; default every repository of the
    project). ``field_mappings`` is accepted for the shared connector interface and unused:
    pull requests carry no work item fields, only links to work items (so this source never
    runs field discovery). ``start_date`` is the first run's cursor; with ``end_date`` the
    run is a backfill window of pull requests *created* in ``[start_date, end_date)`` that
    leaves the stored cursor and state alone. ``page_size`` is the ``$top`` of pull request
    lists (at most 1000) and of commit pages (at most 100). ``source_name`` names the Pulse
    source in messages and, snake_cased, the dlt source (two sources of one tenant keep
    separate state).
    """
    del field_mappings  # see the docstring: nothing to map in pull requests
    if end_date is not None and start_date is None:
        raise ValueError("end_date needs a start_date: a backfill window has two ends")
    dlt_name = normalize_schema_name(source_name) or "azure_devops_git"
    factory = _azure_devops_git if dlt_name == "azure_devops_git" else _azure_devops_git.with_args(name=dlt_name)
    return factory(
        base_url,
        str(credentials.get("token") or ""),
        str(config.get("project") or ""),
        repositories=_repository_names(config.get("repositories")) or None,
        start_date=start_date,
        end_date=end_date,
        source_name=source_name,
        page_size=page_size,
        retry_policy=retry_policy,
    )


def _quick_client(base_url: str, credentials: dict[str, str], project: str, timeout: float) -> AzureDevOpsGitClient:
    """A client that tries each request once, with short timeouts (a wrong URL fails in seconds)."""
    policy = RetryPolicy(
        max_attempts=1, max_rate_limit_retries=0, connect_timeout=min(5.0, timeout), read_timeout=timeout
    )
    return AzureDevOpsGitClient(
        base_url, str(credentials.get("token") or ""), source_name="azure_devops_git", project=project, policy=policy
    )


def check_connection(
    base_url: str, credentials: dict[str, str], config: dict[str, Any], *, timeout: float = 10.0
) -> tuple[bool, str]:
    """Reach the project (and each configured repository) with the PAT: ``(ok, what happened)``.

    Says exactly what failed — an unreachable host, a rejected or expired PAT, a PAT without
    read permission, an unknown organisation, project or repository — and on success which
    repositories the PAT can read. The message never contains the PAT.
    """
    project = str(config.get("project") or "")
    if not credentials.get("token"):
        return False, "no PAT: set the credential 'token' (a PAT with the Code (Read) scope)"
    if not project:
        return False, "no project: set the config 'project' (the Azure DevOps project holding the repositories)"
    client = _quick_client(base_url, credentials, project, timeout)
    chosen = _repository_names(config.get("repositories"))
    try:
        listed = client.values(client.path(settings.REPOSITORIES))
        for name in chosen:
            client.json(client.path(settings.REPOSITORY, repository=name))
    except AzureDevOpsGitError as exc:
        return False, str(exc)
    names = sorted(str(item.get("name")) for item in listed if isinstance(item, dict))
    where = f"project '{project}' of organisation '{client.org}' at {client.base_url}"
    if chosen:
        return True, f"ok: {len(chosen)} of the {len(names)} repositories of {where} readable ({', '.join(chosen)})"
    if not names:
        return True, f"ok, but {where} has no repositories this PAT can read"
    return True, f"ok: {len(names)} repositories of {where} readable ({', '.join(names)})"


def discover_fields(base_url: str, credentials: dict[str, str], config: dict[str, Any]) -> list[FieldCandidate]:
    """The work item fields of the organisation the repositories belong to.

    Pull requests have no custom fields of their own; the fields Pulse maps (story points, the
    sprint, the Done-Means-Tested fields) live on the work items the pull requests link to, in
    the same organisation, readable with the same PAT (Work Items (Read)). They are read exactly
    as the Azure Boards connector reads them (``_apis/wit/fields`` with picklist values; types
    normalized to ``pulse.fieldmap.FIELD_TYPES``; ``schema_key`` is the field's reference name).
    """
    from connectors.azure_boards import discover_fields as boards_discover_fields

    return boards_discover_fields(base_url, credentials, {"name": str(config.get("name") or "azure_devops_git")})
