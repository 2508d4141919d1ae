"""Which data tests a constraint stands for (pulse/enforced_tests.py), on a made-up manifest.

That the catalog answers them as dbt would is tested against the database in
tests/integration/test_enforced_tests.py."""

from __future__ import annotations

from typing import Any

from pulse.enforced_tests import EnforcedTest, Verdict, enforced_tests, exclusions


def _model(name: str, materialized: str, schema: str = "marts") -> dict[str, Any]:
    return {
        "unique_id": f"model.pulse.{name}",
        "name": name,
        "resource_type": "model",
        "schema": schema,
        "alias": name,
        "fqn": ["pulse", schema, name],
        "config": {"materialized": materialized},
    }


def _test(
    name: str, model: str, kind: str, column: str = "status", kwargs: dict[str, Any] | None = None, **config: Any
) -> dict[str, Any]:
    kwargs = {"column_name": column} if kwargs is None else kwargs
    if kind == "accepted_values":
        kwargs["values"] = ["todo", "in_progress", "done"]
        if "quote" in config:
            kwargs["quote"] = config.pop("quote")
    return {
        "unique_id": f"test.pulse.{name}",
        "name": name,
        "resource_type": "test",
        "fqn": ["pulse", "marts", name],
        "attached_node": f"model.pulse.{model}",
        "depends_on": {"nodes": [f"model.pulse.{model}"]},
        "test_metadata": {"name": kind, "kwargs": kwargs},
        "config": {"severity": "ERROR", "warn_if": "!= 0", "error_if": "!= 0", **config},
    }


NODES = [
    _model("fct_items", "incremental"),
    _model("dim_people", "table"),
    _model("stg_items", "view", "staging"),
    _model("eph_items", "ephemeral"),
    _test("not_null_fct_items_status", "fct_items", "not_null"),
    _test("accepted_values_fct_items_status", "fct_items", "accepted_values", column="status_category"),
    _test("unique_per_tenant_dim_people_person_id", "dim_people", "unique_per_tenant", column="person_id"),
    _test("unique_dim_people_email", "dim_people", "unique", column="email"),
    _test(
        "unique_combination_fct_items",
        "fct_items",
        "unique_combination",
        kwargs={"columns": ["tenant_id", "sprint_uid", "person_id"]},
    ),
    _test(
        "values_between_fct_items_rate",
        "fct_items",
        "values_between",
        kwargs={
            "column_name": "rate",
            "min_value": 0,
            "max_value": 100,
        },
    ),
    _test(
        "values_between_fct_items_points",
        "fct_items",
        "values_between",
        kwargs={
            "column_name": "points",
            "min_value": 0,
        },
    ),
    _test(
        "holds_for_every_row_fct_items",
        "fct_items",
        "holds_for_every_row",
        kwargs={
            "expression": "completed_stories + completed_bugs + completed_tasks <= throughput",
        },
    ),
    # none of these: a view or ephemeral model holds no constraint; a warning, a threshold or
    # unquoted values is not what a constraint says; relationships is no column property
    _test("not_null_stg_items_status", "stg_items", "not_null"),
    _test("not_null_eph_items_status", "eph_items", "not_null"),
    _test("not_null_fct_items_title", "fct_items", "not_null", column="title", severity="warn"),
    _test("not_null_fct_items_points", "fct_items", "not_null", column="points", error_if="> 10"),
    _test("accepted_values_fct_items_size", "fct_items", "accepted_values", column="size", quote=False),
    _test("relationships_fct_items_person", "fct_items", "relationships", column="person_id"),
    # nor a test of some rows only, one counting failures its own way, or one of an expression
    _test("not_null_fct_items_closed_at", "fct_items", "not_null", column="closed_at", where="status = 'done'"),
    _test("not_null_fct_items_owner", "fct_items", "not_null", column="owner", fail_calc="sum(n)"),
    _test("unique_dim_people_lower_email", "dim_people", "unique", column="lower(email)"),
]
MANIFEST = {"nodes": {node["unique_id"]: node for node in NODES}}


def test_a_tested_column_of_a_table_with_error_severity_and_no_threshold_is_enforced() -> None:
    found = enforced_tests(MANIFEST)

    assert [(test.name, test.kind, test.schema, test.table, test.column) for test in found] == [
        ("accepted_values_fct_items_status", "accepted_values", "marts", "fct_items", "status_category"),
        ("holds_for_every_row_fct_items", "holds_for_every_row", "marts", "fct_items", ""),
        ("not_null_fct_items_status", "not_null", "marts", "fct_items", "status"),
        ("unique_combination_fct_items", "unique_combination", "marts", "fct_items", ""),
        ("unique_dim_people_email", "unique", "marts", "dim_people", "email"),
        ("unique_per_tenant_dim_people_person_id", "unique_per_tenant", "marts", "dim_people", "person_id"),
        ("values_between_fct_items_points", "values_between", "marts", "fct_items", "points"),
        ("values_between_fct_items_rate", "values_between", "marts", "fct_items", "rate"),
    ]
    assert found[0].values == ("todo", "in_progress", "done")
    assert found[0].selector == "pulse.marts.accepted_values_fct_items_status"


def test_the_check_is_named_as_the_macro_names_it() -> None:
    [accepted] = [test for test in enforced_tests(MANIFEST) if test.kind == "accepted_values"]

    # the name enforce_column_tests() gave stg_jira__work_items' status_category check (the
    # integration test finds it in the catalog under this name)
    assert accepted.check_name == "accepted__status_category__33a33360d7"
    assert accepted.constraint == "CHECK accepted__status_category__33a33360d7 on marts.fct_items.status_category"


def test_each_kind_names_its_constraint_and_the_columns_a_unique_index_must_cover() -> None:
    found = {test.name: test for test in enforced_tests(MANIFEST)}

    # the names enforce_column_tests() gives (the integration test finds fct_sprints' in the catalog)
    assert found["values_between_fct_items_rate"].check_name == "between__rate__80a67e886b"  # md5('0|100')
    assert found["values_between_fct_items_points"].bounds == ("0", "None")  # open above
    holds = found["holds_for_every_row_fct_items"]
    assert holds.check_name == "holds__completed_stories_completed_bugs_com__fedc15e296"
    assert holds.constraint == (
        "CHECK holds__completed_stories_completed_bugs_com__fedc15e296 on marts.fct_items "
        "(completed_stories + completed_bugs + completed_tasks <= throughput)"
    )
    assert found["unique_combination_fct_items"].key == ("tenant_id", "sprint_uid", "person_id")
    assert found["unique_combination_fct_items"].constraint == (
        "a unique index on marts.fct_items (tenant_id, sprint_uid, person_id), nulls not distinct"
    )
    assert found["unique_per_tenant_dim_people_person_id"].key == ("tenant_id", "person_id")
    assert found["unique_dim_people_email"].key == ("email",)
    assert found["unique_dim_people_email"].constraint == "a unique index on marts.dim_people (email)"


def test_exclusions_name_each_test_unless_a_wider_selector_leaves_out_only_enforced_tests() -> None:
    # a kind of which one test is not enforced is named test by test; the others by kind
    assert exclusions(MANIFEST) == [
        "pulse.marts.accepted_values_fct_items_status",
        "pulse.marts.not_null_fct_items_status",
        "pulse.marts.unique_dim_people_email",
        "test_name:holds_for_every_row",
        "test_name:unique_combination",
        "test_name:unique_per_tenant",
        "test_name:values_between",
    ]
    # a step's tests: the selectors of those only
    [people] = [test for test in enforced_tests(MANIFEST) if test.name == "unique_per_tenant_dim_people_person_id"]
    assert exclusions(MANIFEST, [people]) == ["test_name:unique_per_tenant"]


def test_exclusions_narrow_a_kind_to_a_materialization_then_a_severity() -> None:
    nodes = [
        _model("fct_items", "incremental"),
        _model("dim_people", "table"),
        _model("stg_items", "view", "staging"),
        _test("not_null_fct_items_a", "fct_items", "not_null", column="a"),
        _test("not_null_fct_items_b", "fct_items", "not_null", column="b"),
        _test("not_null_dim_people_c", "dim_people", "not_null", column="c"),
        _test("not_null_stg_items_d", "stg_items", "not_null", column="d"),  # a view's: not enforced
        _test("accepted_values_fct_items_e", "fct_items", "accepted_values", column="e"),
        _test("accepted_values_fct_items_f", "fct_items", "accepted_values", column="f", severity="warn"),
        _test("unique_fct_items_g", "fct_items", "unique", column="g"),
    ]
    manifest: dict[str, Any] = {"nodes": {node["unique_id"]: node for node in nodes}}
    assert exclusions(manifest) == [
        "test_name:accepted_values,config.materialized:incremental+1,config.severity:error",
        "test_name:not_null,config.materialized:incremental+1",
        "test_name:not_null,config.materialized:table+1",
        "test_name:unique",
    ]
    # `test_name:unique` would also select a unit test named so: the test is then named itself
    manifest["unit_tests"] = {"unit_test.pulse.fct_items.unique": {"name": "unique"}}
    assert exclusions(manifest) == [
        "pulse.marts.unique_fct_items_g",
        "test_name:accepted_values,config.materialized:incremental+1,config.severity:error",
        "test_name:not_null,config.materialized:incremental+1",
        "test_name:not_null,config.materialized:table+1",
    ]


def test_a_verdict_says_what_is_missing_and_what_to_do() -> None:
    test = EnforcedTest(
        "test.pulse.u", "unique_per_tenant_dim_people_person_id", "pulse.marts.u", "model.pulse.dim_people",
        "marts", "dim_people", "unique_per_tenant", "person_id",
    )  # fmt: skip

    assert Verdict(test, True).message == (
        "unique_per_tenant_dim_people_person_id: enforced by a unique index on marts.dim_people "
        "(tenant_id, person_id), which is in place."
    )
    failed = Verdict(test, False).message
    assert "a unique index on marts.dim_people (tenant_id, person_id) is missing" in failed
    assert "dbt build --select dim_people" in failed


def test_a_step_fails_when_an_enforced_check_fails_as_a_failed_dbt_test_fails_it() -> None:
    import dagster as dg
    import pytest

    from orchestration.defs.transform.assets import raise_on_failed_checks

    test = EnforcedTest(
        "test.pulse.n", "not_null_fct_items_status", "pulse.marts.n", "model.pulse.fct_items",
        "marts", "fct_items", "not_null", "status",
    )  # fmt: skip
    key = dg.AssetKey(["marts", "fct_items"])

    def result(passed: bool) -> dg.AssetCheckResult:
        verdict = Verdict(test, passed)
        return dg.AssetCheckResult(asset_key=key, check_name=test.name, passed=passed, description=verdict.message)

    raise_on_failed_checks([result(True), result(True)])  # passing checks: the step goes on
    with pytest.raises(dg.Failure) as failure:
        raise_on_failed_checks([result(True), result(False)])
    assert failure.value.description == ("1 data test(s) whose constraint is missing:\n" + Verdict(test, False).message)
    assert "NOT NULL on marts.fct_items.status is missing" in (failure.value.description or "")
