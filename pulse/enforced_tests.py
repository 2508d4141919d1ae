"""The data tests the database enforces, answered from its catalog in one query.

A table's tests that a constraint can say (error severity, no custom thresholds, no ``where``
of their own, of plain columns) are constraints of the table: after every build of the model
the post-hook ``enforce_column_tests()`` (dbt_project/macros/enforced_tests.sql) adds

- ``not_null``: NOT NULL;
- ``accepted_values`` (quoted): a CHECK on the values;
- ``values_between``: a CHECK on the bounds;
- ``holds_for_every_row``: a CHECK of the expression;
- ``unique_per_tenant`` and ``unique``: a unique index on ``(tenant_id, column)`` or ``(column)``;
- ``unique_combination``: a unique index on its columns that holds nulls equal (NULLS NOT
  DISTINCT, or every column NOT NULL, as a primary key's),

and the database then refuses a row that breaks one. Once the model is built, such a test's
property holds by construction. Run as a dbt test it reads no row (it asks the catalog; in a
one-tenant run it reads the tenant's rows), yet each is still a dbt node: about 40 ms of dbt's
own work, 159 of them in a build of every mart, on every run, whatever the data
(docs/scaling.md measures it).

So the builds that Pulse runs (the Dagster steps, the warehouse benchmark) leave them out of
``dbt build`` (:func:`exclusions`, a few selectors) and ask the catalog once for every one of them
(:func:`verify`): a test passes when its constraint is there, and fails, naming the missing
constraint, when it is not. ``dbt build`` and ``dbt test`` run by hand still run them as tests.

Which tests are enforced is decided here and in the macro ``column_tests_of_model()`` alike;
tests/integration/test_enforced_tests.py checks that every test this module names has its
constraint after a build of every model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The generic tests a constraint can stand for.
ENFORCEABLE = frozenset(
    {
        "not_null",
        "accepted_values",
        "values_between",
        "holds_for_every_row",
        "unique_per_tenant",
        "unique",
        "unique_combination",
    }
)

#: The materializations whose relation can hold a constraint (a view cannot).
CONSTRAINED_MATERIALIZATIONS = frozenset({"table", "incremental"})

#: A column a constraint can name (the macro's rule too).
PLAIN_COLUMN = re.compile(r"[a-z_][a-z0-9_]*")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class EnforcedTest:
    """One data test a constraint of its model's table stands for."""

    unique_id: str
    name: str
    """The test's name: Dagster's name of its asset check too."""
    selector: str
    """Its fully qualified name, a dbt selector."""
    model_id: str
    schema: str
    table: str
    kind: str
    """One of :data:`ENFORCEABLE`."""
    column: str = ""
    """The tested column (none for unique_combination and holds_for_every_row)."""
    values: tuple[str, ...] = ()
    """accepted_values' values."""
    columns: tuple[str, ...] = ()
    """unique_combination's columns."""
    bounds: tuple[str, str] = ("None", "None")
    """values_between's min_value and max_value, as the macro writes them (``None``: open)."""
    expression: str = ""
    """holds_for_every_row's expression."""

    @property
    def key(self) -> tuple[str, ...]:
        """The columns a unique index must cover."""
        if self.kind == "unique_combination":
            return self.columns
        if self.kind == "unique_per_tenant":
            return ("tenant_id", self.column)
        return (self.column,)

    @property
    def constraint(self) -> str:
        """The constraint, as a person reads it."""
        where = f"{self.schema}.{self.table}"
        if self.kind == "not_null":
            return f"NOT NULL on {where}.{self.column}"
        if self.kind == "accepted_values":
            return f"CHECK {self.check_name} on {where}.{self.column}"
        if self.kind == "values_between":
            low, high = self.bounds
            return f"CHECK {self.check_name} on {where}.{self.column} (between {low} and {high})"
        if self.kind == "holds_for_every_row":
            return f"CHECK {self.check_name} on {where} ({self.expression})"
        nulls = ", nulls not distinct" if self.kind == "unique_combination" else ""
        return f"a unique index on {where} ({', '.join(self.key)}){nulls}"

    @property
    def check_name(self) -> str:
        """The CHECK constraint's name: the macros accepted_values_constraint()',
        values_between_constraint()' and holds_for_every_row_constraint()'s."""
        if self.kind == "values_between":
            return f"between__{self.column[:30]}__{_md5('|'.join(self.bounds))}"
        if self.kind == "holds_for_every_row":
            words = re.sub(r"[^a-z0-9]+", "_", self.expression.lower()).strip("_")[:36]
            return f"holds__{words}__{_md5(self.expression)}"
        return f"accepted__{self.column[:30]}__{_md5('|'.join(self.values))}"


def enforced_tests(manifest: Mapping[str, Any]) -> list[EnforcedTest]:
    """The tests of the manifest that a constraint stands for (the criteria of the macro
    column_tests_of_model(), applied to the models it runs for)."""
    nodes = manifest["nodes"]
    found = []
    for node in nodes.values():
        metadata = node.get("test_metadata") or {}
        config = node.get("config", {})
        model = nodes.get(node.get("attached_node") or "")
        if (
            node["resource_type"] != "test"
            or metadata.get("name") not in ENFORCEABLE
            or model is None
            or model.get("config", {}).get("materialized") not in CONSTRAINED_MATERIALIZATIONS
            or str(config.get("severity", "")).lower() != "error"
            or config.get("warn_if") != "!= 0"
            or config.get("error_if") != "!= 0"
            or (config.get("fail_calc") or "count(*)") != "count(*)"
            or str(config.get("where") or "true").strip().lower() != "true"
        ):
            continue
        kwargs = metadata.get("kwargs", {})
        if metadata["name"] == "accepted_values" and not kwargs.get("quote", True):
            continue
        named = [*(kwargs.get("columns") or ()), *([kwargs["column_name"]] if kwargs.get("column_name") else [])]
        if not all(PLAIN_COLUMN.fullmatch(str(name)) for name in named):
            continue  # a test of an expression (lower(email)) stays a test
        found.append(
            EnforcedTest(
                unique_id=node["unique_id"],
                name=node["name"],
                selector=".".join(node["fqn"]),
                model_id=model["unique_id"],
                schema=model["schema"],
                table=model.get("alias") or model["name"],
                kind=metadata["name"],
                column=kwargs.get("column_name") or "",
                values=tuple(str(value) for value in kwargs.get("values") or ()),
                columns=tuple(kwargs.get("columns") or ()),
                # as the macro writes them with ~ (none as None)
                bounds=(str(kwargs.get("min_value")), str(kwargs.get("max_value"))),
                expression=kwargs.get("expression") or "",
            )
        )
    return sorted(found, key=lambda test: test.unique_id)


def exclusions(manifest: Mapping[str, Any], tests: Iterable[EnforcedTest] | None = None) -> list[str]:
    """Selectors that leave ``tests`` (default: every test a constraint stands for) out of a
    ``dbt build``, and no test that a constraint does not stand for.

    dbt searches every node of the project once per selector, twice per build (``dbt build``
    selects with and without unit tests): 159 fully qualified names took it 0.40 s per selection
    on one core before the first node ran (docs/scaling.md, "Fewer selectors"). So each test is
    left out by the widest of these selectors that leaves out only tests a constraint stands for:

    - ``test_name:<kind>``: every test of its kind;
    - ``test_name:<kind>,config.materialized:<m>+1``: those of models of one materialization (a
      test is a child of the model it reads);
    - the same, of its severity (``config.severity:<s>``);
    - its fully qualified name.

    The selectors may leave out other enforced tests than ``tests`` too (a Dagster step's
    selection holds no model of theirs, so it would not have run them). The sets are computed as
    dbt selects (``tests/unit/test_dbt_steps.py`` checks them with dbt's own selector)."""
    nodes = manifest["nodes"]
    enforced = {test.unique_id for test in enforced_tests(manifest)}
    wanted = sorted(enforced if tests is None else {test.unique_id for test in tests})
    generic = {
        uid: node for uid, node in nodes.items() if node["resource_type"] == "test" and node.get("test_metadata")
    }
    # test_name: also selects a unit test of that name (never one a constraint stands for)
    unit_tests = {node["name"] for node in (manifest.get("unit_tests") or {}).values()}

    def materialized(node: Mapping[str, Any]) -> set[str]:
        parents = node.get("depends_on", {}).get("nodes", [])
        return {str(nodes[p].get("config", {}).get("materialized")) for p in parents if p in nodes}

    def severity(node: Mapping[str, Any]) -> str:
        return str(node.get("config", {}).get("severity", "")).lower()

    def members(kind: str, of: str | None = None, at: str | None = None) -> set[str]:
        found = {
            uid
            for uid, node in generic.items()
            if node["test_metadata"]["name"] == kind
            and (of is None or of in materialized(node))
            and (at is None or severity(node) == at)
        }
        return found | ({f"unit_test:{kind}"} if kind in unit_tests else set())

    selectors: set[str] = set()
    covered: set[str] = set()
    for uid in wanted:
        if uid in covered:
            continue
        node = nodes[uid]
        kind = node["test_metadata"]["name"]
        options = [(f"test_name:{kind}", members(kind))]
        for of in sorted(materialized(node) & CONSTRAINED_MATERIALIZATIONS):
            scope = f"test_name:{kind},config.materialized:{of}+1"
            options.append((scope, members(kind, of)))
            options.append((f"{scope},config.severity:{severity(node)}", members(kind, of, severity(node))))
        options.append((".".join(node["fqn"]), {uid}))
        selector, found = next((selector, found) for selector, found in options if found <= enforced)
        selectors.add(selector)
        covered |= found
    return sorted(selectors)


CATALOG_SQL = """
with wanted (schema_name, table_name) as (select * from unnest(%(schemas)s::text[], %(tables)s::text[])),
relations as (
    select wanted.schema_name, wanted.table_name,
        to_regclass(quote_ident(wanted.schema_name) || '.' || quote_ident(wanted.table_name)) as oid
    from wanted
)
select
    relations.schema_name,
    relations.table_name,
    array(
        select attname::text from pg_attribute
        where attrelid = relations.oid and attnotnull and attnum > 0 and not attisdropped
    ) as not_null,
    array(
        select conname::text from pg_constraint
        where conrelid = relations.oid and contype = 'c' and convalidated
    ) as checks,
    array(
        select array_to_string(array(
            select attribute.attname::text
            from unnest(index.indkey::int2[]) as key (attnum)
            inner join pg_attribute as attribute
                on attribute.attrelid = index.indrelid and attribute.attnum = key.attnum
            order by attribute.attname::text collate "C"
        ), ',') || case when index.indnullsnotdistinct then ' nulls not distinct' else '' end
        from pg_index as index
        where index.indrelid = relations.oid and index.indisunique and index.indpred is null
            and index.indexprs is null and index.indisvalid
    ) as unique_indexes
from relations
"""


@dataclass(frozen=True)
class Verdict:
    test: EnforcedTest
    passed: bool

    @property
    def message(self) -> str:
        if self.passed:
            return f"{self.test.name}: enforced by {self.test.constraint}, which is in place."
        return (
            f"{self.test.name}: {self.test.constraint} is missing, so the table may hold rows that break "
            f"this test. The post-hook enforce_column_tests() adds it on every build of the model: "
            f"rebuild it (dbt build --select {self.test.table}); if the database refuses, its message "
            f"names the rows' column."
        )


def verify(connection: Any, tests: Iterable[EnforcedTest]) -> list[Verdict]:
    """Each test's verdict from the catalog: one query for all of them. ``connection``: a
    psycopg (3) connection to the warehouse."""
    tests = list(tests)
    relations = sorted({(test.schema, test.table) for test in tests})
    if not relations:
        return []
    rows = connection.execute(
        CATALOG_SQL, {"schemas": [schema for schema, _ in relations], "tables": [table for _, table in relations]}
    ).fetchall()
    catalog = {(row[0], row[1]): (set(row[2]), set(row[3]), set(row[4])) for row in rows}
    verdicts = []
    for test in tests:
        not_null, checks, unique_indexes = catalog.get((test.schema, test.table), (set(), set(), set()))
        if test.kind == "not_null":
            passed = test.column in not_null
        elif test.kind in ("accepted_values", "values_between", "holds_for_every_row"):
            passed = test.check_name in checks
        else:
            key = ",".join(sorted(test.key))
            # unique_combination groups nulls together: an index must hold them equal too, unless
            # no column can be null
            nulls_equal = test.kind == "unique_combination" and not set(test.key) <= not_null
            passed = f"{key} nulls not distinct" in unique_indexes or (not nulls_equal and key in unique_indexes)
        verdicts.append(Verdict(test, passed))
    return verdicts
