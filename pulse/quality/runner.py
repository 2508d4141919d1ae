"""Validate one tenant's partition of a mart with Great Expectations.

Great Expectations takes seconds to import, so it is imported here, inside
:func:`validate_partition`, never when this module is imported: the Dagster definitions load
this module and must stay quick to load.

Each validation builds an ephemeral GE context (nothing written to disk, no analytics) with a
PostgreSQL data source on Pulse's database and a query asset that selects the tenant's rows
(``where tenant_id = '<tenant>'``) and only the columns the suite reads.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pulse.db import sqlalchemy_url
from pulse.quality.results import (
    EXAMPLE_ROWS,
    ExpectationResult,
    SuiteResult,
    failed_to_run,
    interpret,
)
from pulse.quality.suites import Expectation, Fresh, Suite
from pulse.settings import TENANT_SLUG_PATTERN

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_DATE_TYPES = {"date"}


class QualityConfigError(ValueError):
    """A suite or partition that cannot be validated as given (bad name or tenant slug)."""


def partition_query(suite: Suite, columns: list[str], tenant_id: str | None) -> str:
    """The SELECT of the tenant's rows (every tenant's when ``tenant_id`` is None).

    Names and the slug are checked, because GE query assets take no bind parameters.
    """
    for name in (suite.schema, suite.model, *columns):
        if not _IDENTIFIER.match(name):
            raise QualityConfigError(f"{name!r} in suite {suite.table} is not a plain lower-case SQL name")
    selected = ", ".join(f'"{column}"' for column in columns) or "1 as no_columns"
    query = f'select {selected} from "{suite.schema}"."{suite.model}"'
    if tenant_id is None:
        return query
    if not re.match(TENANT_SLUG_PATTERN, tenant_id):
        raise QualityConfigError(f"tenant {tenant_id!r} is not a tenant slug (lower-case letters, digits, _)")
    return f"{query} where tenant_id = '{tenant_id}'"


def validate_partition(
    suite: Suite,
    database_url: str,
    tenant_id: str | None,
    *,
    now: datetime | None = None,
) -> SuiteResult:
    """Validate the suite on ``tenant_id``'s rows of its mart (every tenant's when None).

    ``database_url`` is Pulse's admin URL (pulse.db.database_url): marts have row-level
    security for the app's role, not for the owner. ``now`` is the moment freshness is
    measured against (default: the current time).
    """
    now = now or datetime.now(UTC)
    url = sqlalchemy_url(database_url)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            column_types = table_columns(conn, suite.schema, suite.model)
            if column_types is None:
                return failed_to_run(
                    suite, f"table {suite.table} does not exist; build the mart (dbt) before checking it", tenant_id
                )
            row_count: int = conn.execute(
                sa.text(f"select count(*) from ({partition_query(suite, [], tenant_id)}) as partition_rows")
            ).scalar_one()
    finally:
        engine.dispose()

    missing: dict[str, ExpectationResult] = {}
    runnable: list[Expectation] = []
    for expectation in suite.expectations:
        absent = [column for column in expectation.columns if column not in column_types]
        if absent:
            names = ", ".join(absent)
            missing[expectation.key] = ExpectationResult(
                expectation, success=False, error=f"column {names} is not in {suite.table}; fix the suite or the model"
            )
        else:
            runnable.append(expectation)
    keys = [column for column in suite.key_columns if column in column_types]
    if tenant_id is None and "tenant_id" in column_types:
        keys.insert(0, "tenant_id")  # every tenant's rows: say whose row offends
    columns = [column for column in dict.fromkeys([*suite.columns, *keys]) if column in column_types]

    found = (
        _run_great_expectations(suite, url, tenant_id, runnable, columns, keys, column_types, now) if runnable else {}
    )
    results = tuple(missing.get(expectation.key) or found[expectation.key] for expectation in suite.expectations)
    outcome = SuiteResult(suite, tenant_id, results, row_count=row_count)
    log.info(outcome.summary())
    return outcome


def table_columns(conn: sa.Connection, schema: str, table: str) -> dict[str, str] | None:
    """The table's columns and their types (information_schema), or None if it does not exist."""
    rows = conn.execute(
        sa.text(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = :schema and table_name = :table order by ordinal_position"
        ),
        {"schema": schema, "table": table},
    ).all()
    return {str(row[0]): str(row[1]) for row in rows} or None


def _run_great_expectations(
    suite: Suite,
    url: str,
    tenant_id: str | None,
    expectations: list[Expectation],
    columns: list[str],
    keys: list[str],
    column_types: dict[str, str],
    now: datetime,
) -> dict[str, ExpectationResult]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = _ephemeral_context()
    source = context.data_sources.add_postgres(name="pulse", connection_string=url)
    try:
        asset = source.add_query_asset(name=suite.model, query=partition_query(suite, columns, tenant_id))
        batch = asset.add_batch_definition_whole_table("partition")
        gx_suite = context.suites.add(gx.ExpectationSuite(name=f"{suite.table}:{tenant_id or 'all'}"))
        for expectation in expectations:
            fresh_after = None
            if isinstance(expectation, Fresh):
                is_date = column_types.get(expectation.column) in _DATE_TYPES
                fresh_after = expectation.oldest_allowed(now, is_date=is_date)
            kind = getattr(gx.expectations, expectation.gx_type)
            gx_suite.add_expectation(
                kind(**expectation.gx_kwargs(fresh_after=fresh_after), meta={"pulse_key": expectation.key})
            )
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite.table}:partition", data=batch, suite=gx_suite)
        )
        result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLE_ROWS}
        if keys:
            result_format["unexpected_index_column_names"] = keys
        validation = definition.run(result_format=result_format)
    finally:
        source.get_execution_engine().engine.dispose()

    by_key = {expectation.key: expectation for expectation in expectations}
    found: dict[str, ExpectationResult] = {}
    for outcome in validation.results:
        config = outcome.expectation_config
        key = str(config.meta.get("pulse_key")) if config is not None and config.meta else ""
        if key not in by_key:
            raise RuntimeError(
                f"Great Expectations returned a result for an expectation Pulse did not declare: {config}"
            )
        found[key] = interpret(by_key[key], outcome.success, outcome.result, outcome.exception_info)
    return found


def _ephemeral_context() -> AbstractDataContext:
    """An in-memory GE context: no project folder, no data docs, no analytics, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)
