"""Agent-platform source: every agent run (who, which agent, model, tokens, cost, outcome).

``agent_platform_source(...)`` builds the dlt source without touching the network; HTTP
happens only when the source is iterated (``pipeline.run``). ``load_agent_platform(...)`` runs
one load into the tenant's dataset ``raw_agent_platform__<tenant>``. See README.md here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
from dlt.common.schema.typing import TDataType, TTableSchemaColumns
from dlt.common.schema.utils import normalize_schema_name
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from connectors.agent_platform import settings
from connectors.agent_platform.helpers import (
    RUN_STATUSES,
    AgentPlatformApiError,
    AgentPlatformAuthError,
    AgentPlatformClient,
    AgentPlatformError,
    AgentPlatformRateLimitError,
    MalformedItem,
    RetryPolicy,
    item_key,
    parse_run,
    quarantine_row,
)
from connectors.agent_platform.pipeline import dataset_name, load_agent_platform, pipeline_name, row_counts
from connectors.loading import QUARANTINE_COLUMNS, QUARANTINE_TABLE, table_columns

__all__ = [
    "COLUMNS",
    "QUARANTINE_TABLE",
    "RUN_COLUMN_TYPES",
    "RUN_STATUSES",
    "AgentPlatformApiError",
    "AgentPlatformAuthError",
    "AgentPlatformError",
    "AgentPlatformRateLimitError",
    "RetryPolicy",
    "agent_platform_source",
    "check_connection",
    "dataset_name",
    "load_agent_platform",
    "parse_run",
    "pipeline_name",
    "row_counts",
]


#: The raw ``runs`` table contract (dlt data types); the history import lands the same columns.
RUN_COLUMN_TYPES: dict[str, TDataType] = {
    "run_id": "text",
    "agent_type": "text",
    "user_email": "text",
    "user_name": "text",
    "team": "text",
    "status": "text",
    "model_name": "text",
    "model_version": "text",
    "created_at": "timestamp",
    "started_at": "timestamp",
    "ended_at": "timestamp",
    "updated_at": "timestamp",
    "input_tokens": "bigint",
    "output_tokens": "bigint",
    "cache_read_tokens": "bigint",
    "cache_write_tokens": "bigint",
    "cost_usd": "double",
    "error_category": "text",
    "error_message": "text",
    "payload": "json",
}


#: The raw table contracts: the dbt staging models read exactly these columns.
COLUMNS: dict[str, TTableSchemaColumns] = {
    "runs": table_columns(RUN_COLUMN_TYPES, keys=["run_id"]),
    QUARANTINE_TABLE: QUARANTINE_COLUMNS,
}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dlt.source(name="agent_platform", max_table_nesting=0)
def _agent_platform(
    base_url: str,
    token: str,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "agent_platform",
    page_size: int = settings.PAGE_SIZE,
    retry_policy: Any = None,
) -> DltResource:
    policy = retry_policy if isinstance(retry_policy, RetryPolicy) else RetryPolicy()
    size = max(1, min(settings.MAX_PAGE_SIZE, page_size))
    overlap = timedelta(seconds=settings.CURSOR_OVERLAP_SECONDS)
    since_date, until_date = _utc(start_date), _utc(end_date)

    @dlt.resource(name="runs")
    def runs(
        updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental(  # noqa: B008 (dlt's idiom)
            "updated_at",
            initial_value=since_date,
            end_value=until_date,
            on_cursor_value_missing="include",  # quarantine rows pass the cursor untouched
        ),
    ) -> Iterator[Any]:
        client = AgentPlatformClient(base_url, token, source_name=source_name, policy=policy)
        start, end = updated_at.start_value, updated_at.end_value
        since = start - overlap if start is not None else None
        for page in client.runs(since, size):
            rows: list[Any] = []
            for item in page:
                try:
                    row = parse_run(item)
                except MalformedItem as exc:
                    quarantined = quarantine_row("runs", item_key(item), str(exc), item)
                    yield dlt.mark.with_table_name(quarantined, QUARANTINE_TABLE)
                    continue
                if end is not None and row["updated_at"] >= end:
                    if rows:
                        yield rows
                    return  # listed by updated_at ascending: the rest is past the window
                rows.append(row)
            if rows:
                yield rows

    runs.apply_hints(
        table_name=QUARANTINE_TABLE,
        write_disposition="append",
        columns=COLUMNS[QUARANTINE_TABLE],
        create_table_variant=True,
    )
    runs.apply_hints(write_disposition="merge", primary_key="run_id", columns=COLUMNS["runs"])
    return runs


def agent_platform_source(
    base_url: str,
    token: str,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    source_name: str = "agent_platform",
    *,
    page_size: int = settings.PAGE_SIZE,
    retry_policy: RetryPolicy | None = None,
) -> DltSource:
    """The agent platform's dlt source (no network until it is iterated): resource ``runs``.

    ``start_date`` is the first run's cursor on ``updated_at``; ``end_date`` closes a backfill
    window (a run with an ``end_date`` does not move the stored cursor). ``source_name``
    names the Pulse source in error messages and (snake_cased) is the dlt source and schema
    name, so two agent-platform sources of one tenant keep separate cursors.
    """
    if end_date is not None and start_date is None:
        raise ValueError("end_date needs a start_date: a backfill window has two ends")
    dlt_name = normalize_schema_name(source_name) or "agent_platform"
    factory = _agent_platform if dlt_name == "agent_platform" else _agent_platform.with_args(name=dlt_name)
    return factory(
        base_url,
        token,
        start_date=start_date,
        end_date=end_date,
        source_name=source_name,
        page_size=page_size,
        retry_policy=retry_policy,
    )


def check_connection(
    base_url: str, token: str, *, source_name: str = "agent_platform", timeout: float = 10.0
) -> tuple[bool, str]:
    """List one run with ``token``: ``(ok, what happened)``. One attempt, short timeouts; the
    message never contains the token."""
    policy = RetryPolicy(
        max_attempts=1, max_rate_limit_retries=0, connect_timeout=min(5.0, timeout), read_timeout=timeout
    )
    client = AgentPlatformClient(base_url, token, source_name=source_name, policy=policy)
    try:
        first = next(client.runs(None, 1), [])
    except AgentPlatformError as exc:
        return False, str(exc)
    if not first:
        return True, f"ok, but the agent platform at {base_url} has no runs for this token yet"
    return True, f"ok: agent runs readable at {base_url}"
