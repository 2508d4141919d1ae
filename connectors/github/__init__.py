"""GitHub source: repositories, pull requests and their reviews, commits and check runs.

``github_source(...)`` builds the dlt source without touching the network; HTTP happens only
when the source is iterated (``pipeline.run``). ``load_github(...)`` runs one load into the
tenant's dataset ``raw_github__<tenant>``. See README.md in this folder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.common.schema.utils import normalize_schema_name
from dlt.extract.hints import TableNameMeta
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from connectors.github import settings
from connectors.github.helpers import (
    GitHubApiError,
    GitHubAuthError,
    GitHubClient,
    GitHubError,
    GitHubRateLimitError,
    JsonDict,
    LazyClient,
    MalformedItem,
    RetryPolicy,
    item_key,
    parse_check_run,
    parse_commit,
    parse_pull_request,
    parse_repository,
    parse_review,
    quarantine_row,
)
from connectors.github.pipeline import dataset_name, load_github, pipeline_name, row_counts
from connectors.loading import QUARANTINE_COLUMNS, QUARANTINE_TABLE, table_columns

__all__ = [
    "COLUMNS",
    "QUARANTINE_TABLE",
    "GitHubApiError",
    "GitHubAuthError",
    "GitHubError",
    "GitHubRateLimitError",
    "RetryPolicy",
    "check_connection",
    "dataset_name",
    "github_source",
    "load_github",
    "pipeline_name",
    "row_counts",
]


#: The raw table contract: the dbt staging models read exactly these columns.
COLUMNS: dict[str, TTableSchemaColumns] = {
    "repositories": table_columns(
        {
            "id": "bigint",
            "node_id": "text",
            "full_name": "text",
            "name": "text",
            "owner_login": "text",
            "is_private": "bool",
            "default_branch": "text",
            "created_at": "timestamp",
            "updated_at": "timestamp",
            "pushed_at": "timestamp",
            "payload": "json",
        },
        keys=["id"],
    ),
    "pull_requests": table_columns(
        {
            "id": "bigint",
            "node_id": "text",
            "repository_full_name": "text",
            "number": "bigint",
            "title": "text",
            "body": "text",
            "state": "text",
            "is_draft": "bool",
            "author_login": "text",
            "author_id": "bigint",
            "head_ref": "text",
            "head_sha": "text",
            "base_ref": "text",
            "created_at": "timestamp",
            "updated_at": "timestamp",
            "closed_at": "timestamp",
            "merged_at": "timestamp",
            "merge_commit_sha": "text",
            "html_url": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    "reviews": table_columns(
        {
            "id": "bigint",
            "pull_request_id": "bigint",
            "repository_full_name": "text",
            "pull_number": "bigint",
            "reviewer_login": "text",
            "reviewer_id": "bigint",
            "state": "text",
            "submitted_at": "timestamp",
            "commit_id": "text",
            "html_url": "text",
            "payload": "json",
        },
        keys=["id"],
    ),
    "commits": table_columns(
        {
            "sha": "text",
            "pull_request_id": "bigint",
            "repository_full_name": "text",
            "pull_number": "bigint",
            "author_login": "text",
            "author_email": "text",
            "author_name": "text",
            "authored_at": "timestamp",
            "committed_at": "timestamp",
            "message": "text",
            "payload": "json",
        },
        keys=["pull_request_id", "sha"],
    ),
    "check_runs": table_columns(
        {
            "id": "bigint",
            "repository_full_name": "text",
            "head_sha": "text",
            "pull_request_id": "bigint",
            "name": "text",
            "status": "text",
            "conclusion": "text",
            "started_at": "timestamp",
            "completed_at": "timestamp",
            "payload": "json",
        },
        keys=["id"],
    ),
    QUARANTINE_TABLE: QUARANTINE_COLUMNS,
}
PRIMARY_KEYS = {
    "repositories": ["id"],
    "pull_requests": ["id"],
    "reviews": ["id"],
    "commits": ["pull_request_id", "sha"],
    "check_runs": ["id"],
}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _with_contract(resource: DltResource) -> DltResource:
    """Give ``resource`` its table contract, plus a ``quarantine`` table variant for bad items.

    The variant is created first, while the resource has no hints of its own yet, so the
    quarantine table does not inherit the resource's columns and keys.
    """
    resource.apply_hints(
        table_name=QUARANTINE_TABLE,
        write_disposition="append",
        columns=COLUMNS[QUARANTINE_TABLE],
        create_table_variant=True,
    )
    resource.apply_hints(
        write_disposition="merge",
        primary_key=PRIMARY_KEYS[resource.name],
        columns=COLUMNS[resource.name],
    )
    return resource


def _quarantine(resource: str, key: str, reason: str, payload: Any) -> Any:
    return dlt.mark.with_table_name(quarantine_row(resource, key, reason, payload), QUARANTINE_TABLE)


def _is_quarantine(meta: Any) -> bool:
    return isinstance(meta, TableNameMeta) and meta.table_name == QUARANTINE_TABLE


def _full_names(org: str, repositories: Sequence[str]) -> list[str]:
    return [name if "/" in name else f"{org}/{name}" for name in repositories]


@dlt.source(name="github", max_table_nesting=0)
def _github(
    base_url: str,
    token: str,
    org: str,
    repositories: list[str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "github",
    page_size: int = settings.PAGE_SIZE,
    retry_policy: Any = None,
) -> list[DltResource]:
    policy = retry_policy if isinstance(retry_policy, RetryPolicy) else RetryPolicy()
    lazy = LazyClient(lambda: GitHubClient(base_url, token, source_name=source_name, org=org, policy=policy))
    chosen = _full_names(org, repositories) if repositories else None
    per_page = max(1, min(settings.PAGE_SIZE, page_size))
    since_date, until_date = _utc(start_date), _utc(end_date)

    def repository_items() -> Iterator[Any]:
        client = lazy.get()
        if chosen is not None:
            for full_name in chosen:
                yield client.get(settings.REPO.format(org=full_name.split("/")[0], repo=full_name.split("/", 1)[1]))
            return
        for page in client.paginate(settings.ORG_REPOS.format(org=org), params={"per_page": per_page}):
            yield from page

    def repository_full_names() -> list[str]:
        if chosen is not None:
            return chosen
        names = [item.get("full_name") for item in repository_items() if isinstance(item, dict)]
        return sorted(name for name in names if isinstance(name, str))

    @dlt.resource(name="repositories")
    def repositories_resource() -> Iterator[Any]:
        for item in repository_items():
            try:
                yield parse_repository(item)
            except MalformedItem as exc:
                yield _quarantine("repositories", item_key(item, fallback=org), str(exc), item)

    @dlt.resource(name="pull_requests")
    def pull_requests(
        updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental(  # noqa: B008 (dlt's idiom)
            "updated_at",
            initial_value=since_date,
            end_value=until_date,
            on_cursor_value_missing="include",  # quarantine rows pass the cursor untouched
        ),
    ) -> Iterator[Any]:
        since = updated_at.start_value
        client = lazy.get()
        params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": per_page}
        for full_name in repository_full_names():
            stop = False
            for page in client.paginate(settings.PULLS.format(full_name=full_name), params=params):
                for item in page:
                    try:
                        row = parse_pull_request(item, full_name)
                    except MalformedItem as exc:
                        yield _quarantine("pull_requests", item_key(item, fallback=full_name), str(exc), item)
                        continue
                    if since is not None and row["updated_at"] < since:
                        stop = True  # sorted by updated desc: everything after is older still
                        break
                    yield row
                if stop:
                    break

    def children(
        resource: str,
        path: str,
        pull_request: JsonDict,
        parse: Any,
        data_selector: str = "$",
        limit: int | None = None,
    ) -> Iterator[Any]:
        """Rows of one list endpoint under ``pull_request``; bad items and answers quarantined."""
        client = lazy.get()
        where = f"{pull_request['repository_full_name']}#{pull_request['number']}"
        seen = 0
        try:
            for page in client.paginate(path, params={"per_page": per_page}, data_selector=data_selector):
                rows = []
                for item in page:
                    try:
                        rows.append(parse(item, pull_request))
                    except MalformedItem as exc:
                        yield _quarantine(resource, item_key(item, fallback=where), str(exc), item)
                if rows:
                    yield rows
                seen += len(page)
                if limit is not None and seen >= limit:
                    break
        except GitHubApiError as exc:
            # A pull request whose head commit vanished (force-push) or that was deleted meanwhile:
            # keep the load going and leave a visible trace.
            if exc.status not in (404, 410, 422):
                raise
            yield _quarantine(resource, where, str(exc), {"url": exc.url, "status": exc.status})

    @dlt.transformer(name="reviews", data_from=pull_requests, parallelized=True)
    def reviews(pull_request: JsonDict, meta: Any = None) -> Iterator[Any]:
        if _is_quarantine(meta):
            return
        path = settings.PULL_REVIEWS.format(
            full_name=pull_request["repository_full_name"], number=pull_request["number"]
        )
        yield from children("reviews", path, pull_request, parse_review)

    @dlt.transformer(name="commits", data_from=pull_requests, parallelized=True)
    def commits(pull_request: JsonDict, meta: Any = None) -> Iterator[Any]:
        if _is_quarantine(meta):
            return
        path = settings.PULL_COMMITS.format(
            full_name=pull_request["repository_full_name"], number=pull_request["number"]
        )
        yield from children("commits", path, pull_request, parse_commit, limit=settings.MAX_PULL_COMMITS)

    @dlt.transformer(name="check_runs", data_from=pull_requests, parallelized=True)
    def check_runs(pull_request: JsonDict, meta: Any = None) -> Iterator[Any]:
        if _is_quarantine(meta):
            return
        path = settings.CHECK_RUNS.format(full_name=pull_request["repository_full_name"], sha=pull_request["head_sha"])
        yield from children("check_runs", path, pull_request, parse_check_run, data_selector="check_runs")

    return [
        _with_contract(repositories_resource),
        _with_contract(pull_requests),
        _with_contract(reviews),
        _with_contract(commits),
        _with_contract(check_runs),
    ]


def github_source(
    base_url: str,
    token: str,
    org: str,
    repositories: list[str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "github",
    *,
    page_size: int = settings.PAGE_SIZE,
    retry_policy: RetryPolicy | None = None,
) -> DltSource:
    """The GitHub dlt source of one organisation (no network until it is iterated).

    ``repositories`` limits the load to these repositories (``name`` or ``org/name``);
    by default every repository of ``org``. ``start_date`` is the first run's cursor on
    pull requests' ``updated_at``; ``end_date`` closes a backfill window (a run with an
    ``end_date`` does not move the stored cursor). ``source_name`` names the Pulse source in
    error messages, and (snake_cased) is the dlt source and schema name: two GitHub sources
    of one tenant share the tenant's dataset but keep separate cursors.
    """
    if end_date is not None and start_date is None:
        raise ValueError("end_date needs a start_date: a backfill window has two ends")
    dlt_name = normalize_schema_name(source_name) or "github"
    factory = _github if dlt_name == "github" else _github.with_args(name=dlt_name)
    return factory(
        base_url,
        token,
        org,
        repositories=list(repositories) if repositories else None,
        start_date=start_date,
        end_date=end_date,
        source_name=source_name,
        page_size=page_size,
        retry_policy=retry_policy,
    )


def check_connection(
    base_url: str,
    token: str,
    org: str,
    repositories: list[str] | None = None,
    *,
    source_name: str = "github",
    timeout: float = 10.0,
) -> tuple[bool, str]:
    """Reach ``org`` (and each of ``repositories``) with ``token``: ``(ok, what happened)``.

    One attempt per request and short timeouts, so that a wrong URL fails in seconds.
    The message never contains the token.
    """
    policy = RetryPolicy(
        max_attempts=1, max_rate_limit_retries=0, connect_timeout=min(5.0, timeout), read_timeout=timeout
    )
    client = GitHubClient(base_url, token, source_name=source_name, org=org, policy=policy)
    try:
        if repositories:
            for full_name in _full_names(org, repositories):
                owner, name = full_name.split("/", 1)
                client.get(settings.REPO.format(org=owner, repo=name))
            return True, f"ok: {len(repositories)} repositories of org '{org}' readable at {base_url}"
        first = next(client.paginate(settings.ORG_REPOS.format(org=org), params={"per_page": 1}), [])
    except GitHubError as exc:
        return False, str(exc)
    if not first:
        return True, f"ok, but org '{org}' has no repositories this token can see at {base_url}"
    return True, f"ok: org '{org}' readable at {base_url}"
