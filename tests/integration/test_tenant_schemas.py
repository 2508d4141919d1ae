"""Which raw schemas the staging views union (tenant_schemas, dbt_project/macros/tenancy.sql).

The macro reads every tenant's raw tables in one catalog statement per dbt invocation and
splits each schema name raw_<source type>__<slug> by position. These cases are the ones a
pattern match gets wrong: a tenant slug holds '_', which LIKE reads as any character; a source
type holds '_' too; a schema whose name looks like a tenant's is not one unless the tenant is in
the control plane.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pulse import control
from pulse.db import admin_engine
from tests.conftest import run_dbt

TENANTS = ("tsc_a", "tsc_b")
SCHEMAS = {
    # a tenant's GitHub tables
    "raw_github__tsc_a": ("pull_requests", "reviews"),
    # a slug read as a pattern would match this one ('_' is any character): no such tenant
    "raw_github__tscxa": ("pull_requests",),
    # a source type with '_' in its name
    "raw_azure_devops_git__tsc_b": ("pull_requests",),
    # not raw_: a loader's scratch copy
    "scratch_github__tsc_b": ("pull_requests",),
    # a tenant's schema without the table asked for
    "raw_github__tsc_b": ("commits",),
}


@pytest.fixture(scope="module")
def schemas(db_url: str) -> Iterator[None]:
    def execute(*statements: str) -> None:
        with admin_engine().begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))

    with admin_engine().begin() as conn:
        for slug in TENANTS:
            control.add_tenant(conn, slug, f"Tenant schemas {slug}", actor="test")
    execute(
        *(f"create schema {schema}" for schema in SCHEMAS),
        *(f"create table {schema}.{table} (id bigint)" for schema, tables in SCHEMAS.items() for table in tables),
    )
    try:
        yield
    finally:
        # (other modules' builds union every tenant's raw tables: these must not stay)
        execute(
            *(f"drop schema {schema} cascade" for schema in SCHEMAS),
            *(f"delete from control.tenants where slug = '{slug}'" for slug in TENANTS),
        )


def shown(*tables: tuple[str, str]) -> dict[tuple[str, str], list[list[str]]]:
    """tenant_schemas of each (source type, table), this module's schemas only, from one dbt
    invocation."""
    args = json.dumps({"tables": [list(table) for table in tables]})
    output = run_dbt(["run-operation", "show_tenant_schemas", "--args", args, "--quiet"])
    answers = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {
        (answer["source_type"], answer["table"]): [pair for pair in answer["schemas"] if pair[0] in SCHEMAS]
        for answer in answers
    }


def test_each_raw_table_is_listed_for_the_tenants_that_have_it(schemas: None) -> None:
    """raw_github__tscxa is no tenant's (no tscxa in the control plane), though 'tsc_a' read as a
    pattern matches it; scratch_github__tsc_b is not raw; azure_devops is not azure_devops_git."""
    assert shown(
        ("github", "pull_requests"),
        ("github", "reviews"),
        ("github", "commits"),
        ("azure_devops_git", "pull_requests"),
        ("azure_devops", "pull_requests"),
        ("github", "no_such_table"),
    ) == {
        ("github", "pull_requests"): [["raw_github__tsc_a", "tsc_a"]],
        ("github", "reviews"): [["raw_github__tsc_a", "tsc_a"]],
        ("github", "commits"): [["raw_github__tsc_b", "tsc_b"]],
        ("azure_devops_git", "pull_requests"): [["raw_azure_devops_git__tsc_b", "tsc_b"]],
        ("azure_devops", "pull_requests"): [],
        ("github", "no_such_table"): [],
    }
