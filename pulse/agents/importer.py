"""History import: agent runs exported from elsewhere (JSONL or CSV) into ``raw_agent_import__<tenant>.runs``.

The table has the agent platform's raw ``runs`` columns (the connector's contract,
``connectors.agent_platform.RUN_COLUMN_TYPES``) plus ``source_file`` and ``imported_at``.
Each line is validated on its own: bad lines are reported with their line number and every
reason, good lines are kept. Rows are upserted on ``run_id`` and only written when their
content changed, so importing the same file twice changes nothing. A line without a
``run_id`` gets ``imp_<sha256 of its normalized content>``: the same run imported again (even
from CSV after JSONL) gets the same id.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from connectors.agent_platform import RUN_COLUMN_TYPES, RUN_STATUSES
from pulse import control
from pulse.settings import Settings, raw_schema

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv")
TABLE = "runs"
BATCH = 500
#: Rejected lines listed one by one in a report; the rest are counted.
REPORT_REJECTIONS = 20

TEXT_COLUMNS = tuple(name for name, kind in RUN_COLUMN_TYPES.items() if kind == "text")
TIME_COLUMNS = tuple(name for name, kind in RUN_COLUMN_TYPES.items() if kind == "timestamp")
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
#: Columns whose change makes a re-imported row "updated" (not source_file, imported_at).
CONTENT_COLUMNS = tuple(RUN_COLUMN_TYPES)
_STATUS_ALIASES = {"canceled": "cancelled", "success": "succeeded", "error": "failed"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SQL_TYPES: dict[str, Any] = {
    "text": sa.String,
    "timestamp": lambda: sa.DateTime(timezone=True),
    "bigint": sa.BigInteger,
    "double": sa.Double,
    "json": JSONB,
}


class ImportFileError(ValueError):
    """The file cannot be read at all (missing, not UTF-8, unknown format, no header)."""


class InvalidRow(ValueError):
    """A line that cannot be imported; ``reasons`` lists every problem."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class FileRecord:
    """One line of the file: its number (1-based, as an editor shows it) and its fields."""

    line: int
    data: dict[str, Any] | None
    problem: str | None = None  # the line could not even be read as a record


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


@dataclass
class ImportReport:
    tenant_id: str
    path: str
    format: str
    dry_run: bool
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return self.new + self.updated + self.unchanged

    def render(self, limit: int = REPORT_REJECTIONS) -> str:
        """The report as the CLI prints it; at most ``limit`` rejected lines one by one."""
        target = f"{dataset_name(self.tenant_id)}.{TABLE}"
        head = "dry run (nothing written): " if self.dry_run else ""
        lines = [
            f"{head}{self.path} ({self.format}) → {target}",
            f"kept: {self.kept} (new {self.new}, updated {self.updated}, unchanged {self.unchanged})",
            f"rejected: {len(self.rejected)}",
        ]
        lines += [f"  line {r.line}: {r.reason}" for r in self.rejected[:limit]]
        if len(self.rejected) > limit:
            lines.append(f"  … and {len(self.rejected) - limit} more rejected lines")
        return "\n".join(lines)


def dataset_name(tenant_id: str) -> str:
    return raw_schema("agent_import", tenant_id)


# -- reading ------------------------------------------------------------------------------


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ImportFileError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ImportFileError(f"cannot tell the format of {path.name} from its name; pass --format jsonl or csv")


def parse_file(path: Path | str, fmt: str | None = None) -> Iterator[FileRecord]:
    """The records of a JSONL (one JSON object a line) or CSV (header row) file, with line numbers.

    Blank lines are skipped. A JSONL line that is no JSON object comes as a record with a
    ``problem``; a file that cannot be read at all raises ImportFileError.
    """
    path = Path(path)
    kind = detect_format(path, fmt)
    if not path.is_file():
        raise ImportFileError(f"no file {str(path)!r}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if kind == "jsonl":
                yield from _jsonl(handle)
            else:
                yield from _csv(handle, path)
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _jsonl(handle: Any) -> Iterator[FileRecord]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield FileRecord(number, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            yield FileRecord(number, None, f"a JSON {type(data).__name__}, not an object")
            continue
        yield FileRecord(number, data)


def _csv(handle: Any, path: Path) -> Iterator[FileRecord]:
    reader = csv.DictReader(handle)
    header = reader.fieldnames or []
    if not set(header) & set(RUN_COLUMN_TYPES):
        raise ImportFileError(
            f"{path.name} has no header row with the runs columns ({', '.join(RUN_COLUMN_TYPES)}); "
            "the first line must name the columns"
        )
    for row in reader:
        data = {key: (value if value != "" else None) for key, value in row.items() if key is not None}
        if None in row:
            yield FileRecord(reader.line_num, None, f"{len(row[None])} more fields than the header has")
            continue
        if all(value is None for value in data.values()):
            continue
        yield FileRecord(reader.line_num, data)


# -- validation ---------------------------------------------------------------------------


def _flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """The raw-table column values of ``record``, API item shape (``id``, ``user.email``,
    ``usage.*``…) or flat; flat names win where both are present."""
    flat = {name: record[name] for name in RUN_COLUMN_TYPES if name in record and name != "payload"}

    def nested(column: str, *path: str) -> None:
        current: Any = record
        for key in path:
            if not isinstance(current, Mapping) or key not in current:
                return
            current = current[key]
        flat.setdefault(column, current)

    nested("run_id", "id")
    nested("user_email", "user", "email")
    nested("user_name", "user", "name")
    nested("model_name", "model", "name")
    nested("model_version", "model", "version")
    for column in TOKEN_COLUMNS:
        nested(column, "usage", column)
    nested("error_category", "error", "category")
    nested("error_message", "error", "message")
    return flat


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    else:
        raise ValueError(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _whole_number(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+(\.0*)?\s*", value):
        return int(float(value))
    raise ValueError(value)


def validate_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` (API item shape or flat) as a raw ``runs`` row; InvalidRow lists every problem.

    Rules: ``user_email`` present and an address; ``status`` one of the platform's statuses
    (``canceled`` read as ``cancelled``); timestamps ISO 8601 (no offset means UTC), and
    ``created_at`` or ``started_at`` present; ``ended_at`` not before ``started_at``; token
    counts whole and not negative; ``cost_usd`` a number, not negative, or empty (not reported).
    ``updated_at`` defaults to the latest timestamp, ``created_at`` to ``started_at``,
    ``run_id`` to ``imp_<sha256>`` of the normalized row.
    """
    flat = {k: None if isinstance(v, str) and not v.strip() else v for k, v in _flatten(record).items()}
    problems: list[str] = []
    row: dict[str, Any] = {}
    for column in TEXT_COLUMNS:
        value = flat.get(column)
        if value is not None and not isinstance(value, str):
            value = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
            if value is None:
                problems.append(f"{column} is not text: {flat.get(column)!r}"[:200])
        row[column] = value.strip() or None if isinstance(value, str) else None

    email = row["user_email"]
    if email is None:
        problems.append("missing user_email")
    elif not _EMAIL.match(email):
        problems.append(f"user_email is not an email address: {email!r}"[:200])
    else:
        row["user_email"] = email.lower()

    status = row["status"]
    if status is None:
        problems.append("missing status")
    else:
        status = _STATUS_ALIASES.get(status.lower(), status.lower())
        if status not in RUN_STATUSES:
            problems.append(f"unknown status {row['status']!r} (expected one of {', '.join(sorted(RUN_STATUSES))})")
        row["status"] = status

    for column in TIME_COLUMNS:
        value = flat.get(column)
        row[column] = None
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            row[column] = _timestamp(value)
        except ValueError:
            problems.append(f"unparseable {column}: {value!r}"[:200])
    if row["created_at"] is None and flat.get("created_at") is None:
        if row["started_at"] is not None:
            row["created_at"] = row["started_at"]
        elif flat.get("started_at") is None:
            problems.append("missing created_at (and no started_at to take it from)")
    started, ended = row["started_at"], row["ended_at"]
    if started is not None and ended is not None and ended < started:
        problems.append(f"ended before started (ended_at {ended.isoformat()} < started_at {started.isoformat()})")
    if row["updated_at"] is None and flat.get("updated_at") is None:
        moments = [row[c] for c in ("created_at", "started_at", "ended_at") if row[c] is not None]
        row["updated_at"] = max(moments) if moments else None

    for column in TOKEN_COLUMNS:
        value = flat.get(column)
        row[column] = None
        if value is None:
            continue
        try:
            number = _whole_number(value)
        except ValueError:
            problems.append(f"{column} is not a whole number: {value!r}"[:200])
            continue
        if number < 0:
            problems.append(f"negative {column}: {number}")
        else:
            row[column] = number

    cost = flat.get("cost_usd")
    row["cost_usd"] = None
    if cost is not None:
        try:
            if isinstance(cost, bool):
                raise ValueError(cost)
            amount = float(cost)
        except (TypeError, ValueError):
            problems.append(f"cost_usd is not a number: {cost!r}"[:200])
        else:
            if amount < 0:
                problems.append(f"negative cost_usd: {amount}")
            else:
                row["cost_usd"] = amount

    if problems:
        raise InvalidRow(problems)
    if row["run_id"] is None:
        row["run_id"] = content_run_id(row)
    row["payload"] = dict(record)
    return {name: row[name] for name in RUN_COLUMN_TYPES}


def content_run_id(row: Mapping[str, Any]) -> str:
    """``imp_`` + sha256 of the row's normalized content (columns other than run_id and payload)."""
    content = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in row.items()
        if name in RUN_COLUMN_TYPES and name not in ("run_id", "payload")
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"imp_{digest[:32]}"


# -- writing ------------------------------------------------------------------------------


def runs_table(tenant_id: str) -> sa.Table:
    """``raw_agent_import__<tenant>.runs``: the platform's raw runs columns, source_file, imported_at."""
    columns = [
        sa.Column(name, _SQL_TYPES[kind](), primary_key=name == "run_id", nullable=name != "run_id")
        for name, kind in RUN_COLUMN_TYPES.items()
    ]
    columns.append(sa.Column("source_file", sa.String(), nullable=True))
    columns.append(sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()))
    return sa.Table(TABLE, sa.MetaData(schema=dataset_name(tenant_id)), *columns)


def import_runs(
    settings: Settings, tenant_id: str, path: Path | str, dry_run: bool = False, fmt: str | None = None
) -> ImportReport:
    """Validate every line of ``path`` and upsert the good ones into ``raw_agent_import__<tenant_id>.runs``.

    ``dry_run`` runs the same statements in a transaction that is rolled back, so the report's
    new/updated/unchanged counts are exact and nothing stays written. Raises ControlError for
    an unknown tenant and ImportFileError for a file that cannot be read.
    """
    from pulse.db import admin_engine

    path = Path(path)
    kind = detect_format(path, fmt)
    engine = admin_engine(settings)
    with engine.connect() as conn:
        control.require_tenant(conn, tenant_id)
    report = ImportReport(tenant_id=tenant_id, path=str(path), format=kind, dry_run=dry_run)
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    for record in parse_file(path, kind):
        if record.data is None:
            report.rejected.append(Rejection(record.line, record.problem or "unreadable line"))
            continue
        try:
            row = validate_row(record.data)
        except InvalidRow as exc:
            report.rejected.append(Rejection(record.line, str(exc)))
            continue
        earlier = rows.get(row["run_id"])
        if earlier is not None:
            report.rejected.append(
                Rejection(
                    earlier[0], f"run_id {row['run_id']!r} appears again on line {record.line}; the later line is kept"
                )
            )
        rows[row["run_id"]] = (record.line, {**row, "source_file": path.name})
    report.rejected.sort(key=lambda rejection: rejection.line)

    table = runs_table(tenant_id)
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            conn.execute(sa.text(f'create schema if not exists "{dataset_name(tenant_id)}"'))
            table.create(conn, checkfirst=True)
            values = [row for _, row in sorted(rows.values(), key=lambda item: item[0])]
            for start in range(0, len(values), BATCH):
                inserted, updated = _upsert(conn, table, values[start : start + BATCH])
                report.new += inserted
                report.updated += updated
            report.unchanged = len(values) - report.new - report.updated
        except BaseException:
            transaction.rollback()
            raise
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    log.info(
        "agent runs import %s for tenant %s: %d new, %d updated, %d unchanged, %d rejected%s",
        path.name,
        tenant_id,
        report.new,
        report.updated,
        report.unchanged,
        len(report.rejected),
        " (dry run)" if dry_run else "",
    )
    return report


def _upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert ``rows``, updating existing runs only where their content differs: (new, updated)."""
    insert = pg_insert(table).values(rows)
    excluded = insert.excluded
    changed = sa.tuple_(*(table.c[name] for name in CONTENT_COLUMNS)).is_distinct_from(
        sa.tuple_(*(excluded[name] for name in CONTENT_COLUMNS))
    )
    statement: Any = insert.on_conflict_do_update(
        index_elements=[table.c.run_id],
        set_={
            **{name: excluded[name] for name in CONTENT_COLUMNS if name != "run_id"},
            "source_file": excluded.source_file,
            "imported_at": sa.func.now(),
        },
        where=changed,
    ).returning(sa.literal_column("xmax = 0").label("inserted"))
    results = [bool(inserted) for (inserted,) in conn.execute(statement)]
    new = sum(results)
    return new, len(results) - new
