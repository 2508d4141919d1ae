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


def build_at(selection: str, as_of: datetime, *, cautious: bool = False, **variables: object) -> None:
    """``dbt build --select selection`` with var ``as_of`` (and ``variables``), no unit tests.
    ``cautious``: only the data tests of models built (the relationships tests of sources the
    tenants do not have stay out)."""
    run_dbt(
        [
            "build",
            "--select",
            selection,
            "--exclude",
            "test_type:unit",
            *(["--indirect-selection", "cautious"] if cautious else []),
            "--vars",
            json.dumps({"as_of": as_of.isoformat(), **variables}),
        ]
    )
