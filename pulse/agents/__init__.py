"""Agent runs beyond the connectors: importing a tenant's history from files.

``import_runs(settings, tenant_id, path, dry_run)`` validates a JSONL or CSV export and
upserts it into ``raw_agent_import__<tenant>.runs``; ``pulse agents import`` wraps it
(``pulse.agents.cli``).
"""

from pulse.agents.importer import (
    FileRecord,
    ImportFileError,
    ImportReport,
    InvalidRow,
    Rejection,
    dataset_name,
    import_runs,
    parse_file,
    validate_row,
)

__all__ = [
    "FileRecord",
    "ImportFileError",
    "ImportReport",
    "InvalidRow",
    "Rejection",
    "dataset_name",
    "import_runs",
    "parse_file",
    "validate_row",
]
