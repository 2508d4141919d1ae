"""What the tests of incremental models share: read a relation's rows of some tenants, and run
``dbt build`` of a selection at a given ``as_of`` (unit tests excluded: they run once, in
tests/integration/test_dbt_unit_tests.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from tests.conftest import run_dbt


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def tenant_rows(db_url: str, relation: str, tenants: Sequence[str]) -> set[tuple[Any, ...]]:
    """Every row of ``relation`` (schema.table) of ``tenants``, as a set."""
    return set(query(db_url, f"select * from {relation} where tenant_id = any(%s)", list(tenants)))


def plan_without_scans(db_url: str, sql: str, *params: Any) -> str:
    """PostgreSQL's plan of ``sql`` with sequential scans made costly (the test worlds' tables are
    small enough that a scan would win over any index): a scan left in it has no index to use."""
    with psycopg.connect(db_url) as conn:
        conn.execute("set enable_seqscan = off")
        return "\n".join(row[0] for row in conn.execute(f"explain {sql}", params))


def indexes_of(db_url: str, relation: str) -> dict[str, str]:
    """Each index of ``relation`` (schema.table) by name, as its columns and predicate, e.g.
    ``(tenant_id, sprint_uid) WHERE (sprint_uid IS NOT NULL)``, unique ones prefixed ``UNIQUE ``;
    an index of another method than btree names it first, e.g. ``gin (linked_task_ids)``."""
    rows = query(
        db_url,
        "select indexrelid::regclass::text, indisunique, pg_get_indexdef(indexrelid) "
        "from pg_index where indrelid = %s::regclass",
        relation,
    )
    return {
        name: ("UNIQUE " if unique else "") + full.split(" USING ", 1)[1].removeprefix("btree ")
        for name, unique, full in rows
    }


def index_definitions(db_url: str, relation: str) -> list[str]:
    """The definitions of ``relation``'s indexes (``indexes_of``), sorted."""
    return sorted(indexes_of(db_url, relation).values())


def drop_index(db_url: str, relation: str, definition: str) -> None:
    """Drop the index of ``relation`` that ``index_definitions`` shows as ``definition``."""
    [name] = [name for name, shown in indexes_of(db_url, relation).items() if shown == definition]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"drop index {name}")


def build_at(
    selection: str, as_of: datetime, *, cautious: bool = False, full_refresh: bool = False, **variables: object
) -> None:
    """``dbt build --select selection`` with var ``as_of`` (and ``variables``), no unit tests.
    ``cautious``: only the data tests of models built (the relationships tests of sources the
    tenants do not have stay out); ``full_refresh``: build the incremental models in full (the
    path of a first build, which reads no batch)."""
    run_dbt(
        [
            "build",
            "--select",
            selection,
            "--exclude",
            "test_type:unit",
            *(["--indirect-selection", "cautious"] if cautious else []),
            *(["--full-refresh"] if full_refresh else []),
            "--vars",
            json.dumps({"as_of": as_of.isoformat(), **variables}),
        ]
    )
