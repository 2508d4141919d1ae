"""Running one connector's dlt load for one tenant: the part every connector shares.

One pipeline and one dataset per tenant and source type. Dataset names are kept verbatim
(``raw_<source>__<tenant>``: dlt's snake_case normalization would fold the ``__``), merge
staging goes to ``pulse_staging_<dataset>``, out of the ``raw_*`` namespace, and a
connector's own error raised while extracting comes out as itself, not wrapped by dlt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.common.schema.typing import TColumnSchema, TDataType, TTableSchemaColumns
from dlt.extract.source import DltSource
from dlt.pipeline.exceptions import PipelineStepFailed

log = logging.getLogger(__name__)


def run_tenant_load(
    *,
    pipeline_name: str,
    dataset_name: str,
    credentials_url: str,
    source: DltSource,
    error_type: type[Exception],
    pipelines_dir: str | None = None,
) -> LoadInfo:
    """Load ``source`` into ``dataset_name`` of the PostgreSQL at ``credentials_url``.

    The incremental cursors are stored in the destination (dlt's ``_dlt_pipeline_state``), so
    a lost ``pipelines_dir`` resumes where the last load ended. A load lands completely or not
    at all: an error while extracting leaves no package behind and is raised as the
    connector's own ``error_type`` when it was one. A package left over by an earlier run
    whose *load* step failed (e.g. the database was down) is complete, so it is loaded first.
    """
    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=dlt.destinations.postgres(
            credentials_url,
            enable_dataset_name_normalization=False,
            staging_dataset_name_layout="pulse_staging_%s",
        ),
        dataset_name=dataset_name,
        pipelines_dir=cast(str, pipelines_dir),  # None: dlt's default location
    )
    try:
        if pipeline.has_pending_data:
            log.warning("%s: loading a package left by an earlier run first", pipeline.pipeline_name)
            pipeline.run()
        return pipeline.run(source)
    except PipelineStepFailed as exc:
        cause = connector_cause(exc, error_type)
        if cause is not None and exc.step == "extract":
            raise cause from exc
        raise


def connector_cause(exc: BaseException, error_type: type[Exception]) -> Exception | None:
    """The ``error_type`` error at the root of a dlt step failure, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, error_type):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def row_counts(info: LoadInfo) -> dict[str, int]:
    """Rows landed per table by the load behind ``info`` (dlt's own tables left out)."""
    trace = getattr(info.pipeline, "last_trace", None)
    normalize = getattr(trace, "last_normalize_info", None)
    if normalize is None:
        return {}
    counts: dict[str, int] = normalize.row_counts
    return {table: count for table, count in counts.items() if not table.startswith("_dlt")}


#: Where a connector puts items it could not parse, with the reason; the rest of the load goes on.
QUARANTINE_TABLE = "quarantine"


def table_columns(spec: dict[str, TDataType], *, keys: Sequence[str]) -> TTableSchemaColumns:
    """dlt column hints for a raw table contract: every column typed (so it exists even when all
    values are null), primary keys not nullable."""
    columns: TTableSchemaColumns = {}
    for name, data_type in spec.items():
        column: TColumnSchema = {"name": name, "data_type": data_type, "nullable": name not in keys}
        if name in keys:
            column["primary_key"] = True
        columns[name] = column
    return columns


QUARANTINE_COLUMNS = table_columns(
    {"resource": "text", "item_key": "text", "reason": "text", "payload": "json", "seen_at": "timestamp"}, keys=[]
)
