"""The view materialization (dbt_project/macros/views.sql): a view is written only when what builds it changed.

``stg_claude_code__events`` has views built on it: three staging views of its event types,
``int_claude_code_runs`` and, through the API requests, ``int_agent_usage_lines``. With dbt's
own materialization, building the events view alone dropped all five (its old version was
dropped with CASCADE). Each test reads the catalog: a view's oid, its rewrite rule's
transaction id (``xmin``, new whenever the view's query is written) and its comment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pulse.db import admin_engine
from pulse.dbt import DBT_PROJECT_DIR, dbt_env
from tests.conftest import run_dbt

VIEW = "staging.stg_claude_code__events"
BUILT_ON_IT = (
    "staging.stg_claude_code__api_requests",
    "staging.stg_claude_code__api_errors",
    "staging.stg_claude_code__tool_results",
    "intermediate.int_claude_code_runs",
    "intermediate.int_agent_usage_lines",
)
#: The events view and every view built on it.
FAMILY = "stg_claude_code__events+,config.materialized:view"
#: The family and every view it reads (int_agent_usage_lines also reads the agent runs' staging
#: views, which a test dropping its raw schema with CASCADE drops too).
FAMILY_AND_PARENTS = "@stg_claude_code__events,config.materialized:view"


def rows(query: str, name: str) -> list[sa.Row]:
    """The rows of ``query`` about the relation ``name`` (bound as :name)."""
    with admin_engine().connect() as conn:
        return list(conn.execute(sa.text(query), {"name": name}))


def catalog(name: str) -> tuple[int, str, str | None, str] | None:
    """(oid, xmin of its rewrite rule, comment, relkind) of ``name``; None if nothing has the name."""
    found = rows(
        "select c.oid::bigint, coalesce(r.xmin::text, ''), obj_description(c.oid, 'pg_class'), c.relkind::text "
        "from pg_class as c left join pg_rewrite as r on r.ev_class = c.oid where c.oid = to_regclass(:name)",
        name,
    )
    return (int(found[0][0]), str(found[0][1]), found[0][2], str(found[0][3])) if found else None


def columns(name: str) -> list[str]:
    query = "select attname from pg_attribute where attrelid = to_regclass(:name) and attnum > 0 order by attnum"
    return [row[0] for row in rows(query, name)]


def definition(name: str) -> str:
    """The query of the view ``name`` as PostgreSQL stores it."""
    return str(rows("select pg_get_viewdef(to_regclass(:name))", name)[0][0]).rstrip(";")


def execute(statement: str) -> None:
    with admin_engine().begin() as conn:
        conn.execute(sa.text(statement))


def older_version(query: str, built_on: str) -> int:
    """Put an older version of the view in its place (``query``, marked as built from other SQL),
    with a view of someone else's built on it that reads its column ``built_on``; its oid."""
    execute(f"drop view {VIEW} cascade")
    execute(f"create view {VIEW} as {query}")
    execute(f"comment on view {VIEW} is 'pulse view v1, sql md5 of an older version'")
    execute(f"create view staging.test_views_dependent as select {built_on} from {VIEW}")
    return catalog(VIEW)[0]  # type: ignore[index]


@pytest.fixture
def views(marts_built: None) -> Iterator[dict[str, tuple[int, str, str | None, str]]]:
    """The family built and settled (each view carries its fingerprint); their catalog rows.

    Built again afterwards, whatever the test did to them: the other tests read these views."""
    run_dbt(["run", "--select", FAMILY_AND_PARENTS])
    found = {name: catalog(name) for name in (VIEW, *BUILT_ON_IT)}
    assert all(found.values()), found
    yield found  # type: ignore[misc]
    run_dbt(["run", "--select", FAMILY])


def test_a_view_built_again_from_the_same_sql_is_not_written(views: dict) -> None:
    # The comment is the md5 of the SQL the view was compiled from, its sql_header and grants
    # (none), without the database's name, which dbt writes before every relation (a copy of the
    # database keeps its views): int_claude_code_runs reads the events view by its full name.
    compiled = next((DBT_PROJECT_DIR / "target" / "compiled").rglob("int_claude_code_runs.sql")).read_text()
    database = admin_engine().url.database
    assert f'"{database}"."staging"."stg_claude_code__events"' in compiled
    built_from = compiled.replace(f'"{database}".', "") + "\n-- sql_header: \n-- grants: {}"
    fingerprint = f"pulse view v1, sql md5 {hashlib.md5(built_from.encode()).hexdigest()}"
    assert views["intermediate.int_claude_code_runs"][2] == fingerprint

    output = run_dbt(["run", "--select", "stg_claude_code__events"])

    assert "1 of 1 OK created sql view model staging.stg_claude_code__events" in output
    # neither the view nor the five built on it was written, or dropped
    assert {name: catalog(name) for name in views} == views


def test_a_changed_view_is_replaced_in_place_and_the_views_built_on_it_stay(views: dict) -> None:
    # As if an older version of the model had built it (same columns, other SQL).
    execute(f"comment on view {VIEW} is 'pulse view v1, sql md5 of an older version'")

    run_dbt(["run", "--select", "stg_claude_code__events"])

    oid, rule, comment, kind = catalog(VIEW)  # type: ignore[misc]
    assert (oid, kind, comment) == (views[VIEW][0], "v", views[VIEW][2])  # same view, fingerprint back
    assert rule != views[VIEW][1]  # its query was written
    assert {name: catalog(name) for name in BUILT_ON_IT} == {name: views[name] for name in BUILT_ON_IT}


def test_a_view_gaining_columns_at_the_end_is_replaced_in_place(views: dict) -> None:
    # An older version without the model's last column, with a view of someone else's built on it.
    wanted, query = columns(VIEW), definition(VIEW)
    oid = older_version(f"select {', '.join(wanted[:-1])} from ({query}) as model", built_on=wanted[0])

    run_dbt(["run", "--select", "stg_claude_code__events"])

    assert columns(VIEW) == wanted
    oid_after, _, comment, _ = catalog(VIEW)  # type: ignore[misc]
    assert (oid_after, comment) == (oid, views[VIEW][2])  # the same view, marked as the model's
    assert catalog("staging.test_views_dependent") is not None  # still there
    execute("drop view staging.test_views_dependent")


def test_a_view_whose_columns_changed_is_created_again(views: dict) -> None:
    # A version with other columns (PostgreSQL cannot turn it into the model's in place), with a
    # view of someone else's built on it.
    wanted = columns(VIEW)
    oid = older_version("select 1 as event_id, 'x'::text as something_else", built_on="something_else")

    run_dbt(["run", "--select", "stg_claude_code__events"])

    assert columns(VIEW) == wanted
    assert catalog(VIEW)[2] == views[VIEW][2]  # type: ignore[index]
    assert catalog(VIEW)[0] != oid  # type: ignore[index]  # a new view
    # dropped with the old version (CASCADE), as the docs of views.sql say
    assert catalog("staging.test_views_dependent") is None
    # the family's own views come back when their models build
    run_dbt(["run", "--select", FAMILY])
    assert all(catalog(name) is not None for name in BUILT_ON_IT)


@pytest.mark.parametrize("kind", ["table", "materialized view"])
def test_a_table_of_the_name_is_replaced_by_the_view(views: dict, kind: str) -> None:
    wanted = columns(VIEW)
    execute(f"drop view {VIEW} cascade")
    execute(f"create {kind} {VIEW} as select 'x'::text as event_id")

    run_dbt(["run", "--select", "stg_claude_code__events"])

    assert catalog(VIEW)[3] == "v"  # type: ignore[index]
    assert columns(VIEW) == wanted


def test_a_full_refresh_writes_the_view_again(views: dict) -> None:
    run_dbt(["run", "--select", "stg_claude_code__events", "--full-refresh"])

    oid, rule, comment, _ = catalog(VIEW)  # type: ignore[misc]
    assert (oid, comment) == (views[VIEW][0], views[VIEW][2])
    assert rule != views[VIEW][1]
    assert {name: catalog(name) for name in BUILT_ON_IT} == {name: views[name] for name in BUILT_ON_IT}


def test_persisting_docs_to_a_view_is_refused_with_what_to_do(views: dict, tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    config = project / "dbt_project.yml"
    config.write_text(
        config.read_text().replace(
            "    staging:\n      +schema: staging\n",
            "    staging:\n      +schema: staging\n      +persist_docs: {relation: true}\n",
        )
    )
    assert "+persist_docs" in config.read_text()

    done = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "run", "--select", "stg_claude_code__events",
         "--project-dir", str(project), "--profiles-dir", str(project)],
        env={**os.environ, **dbt_env()}, capture_output=True, text=True,
    )  # fmt: skip

    assert done.returncode == 1
    assert "persist_docs is not supported on the view" in done.stdout
    assert "Set persist_docs: {relation: false, columns: false} for views." in done.stdout
    assert catalog(VIEW) == views[VIEW]  # nothing written
