"""Build the asset check of a quality suite (pulse.quality.suites).

One check, ``great_expectations``, per suite, on the mart's asset; it validates the run's
tenant partition (every tenant's rows when the run has no partition). A suite with an
error-severity expectation makes a blocking check: when an error-severity expectation fails,
the check fails with ERROR severity and the assets downstream of the mart are not run (the
dbt models built from a checked mart run in later steps for that: orchestration/lib/dbt_steps.py).
Warn-severity failures are reported with WARN severity and block nothing.

Kept apart from checks.py (which reads the dbt manifest) so tests build checks cheaply.
Great Expectations is imported by a check when it runs, never when this module is imported.
"""

from collections.abc import Iterable

import dagster as dg

from orchestration.lib.resources import PulseWarehouse
from pulse.db import database_url
from pulse.quality.results import SuiteResult
from pulse.quality.runner import validate_partition
from pulse.quality.suites import SUITES, Severity, Suite

CHECK_NAME = "great_expectations"


def check_result(outcome: SuiteResult) -> dg.AssetCheckResult:
    """The check's result: passed, or failed with ERROR/WARN severity; the findings as metadata."""
    metadata: dict[str, dg.RawMetadataValue] = {
        "tenant": outcome.tenant_id or "every tenant",
        "summary": outcome.summary(),
        "rows_checked": outcome.row_count if outcome.row_count is not None else 0,
        "failed_errors": len(outcome.error_failures),
        "failed_warnings": len(outcome.warn_failures),
        "failed_expectations": dg.MetadataValue.md(outcome.failures_markdown()),
    }
    if outcome.unexpected_counts():
        metadata["unexpected_counts"] = dg.MetadataValue.json(outcome.unexpected_counts())
    if outcome.offending_rows():
        metadata["offending_rows"] = dg.MetadataValue.json(outcome.offending_rows())
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity is Severity.ERROR else dg.AssetCheckSeverity.WARN,
        description=outcome.summary(),
        metadata=metadata,
    )


def build_quality_check(suite: Suite) -> dg.AssetChecksDefinition:
    """The asset check of one suite, on the asset ``[suite.schema, suite.model]``."""
    expectations = "\n".join(
        f"- **{expectation.severity.value}**: {expectation.describe()}" for expectation in suite.expectations
    )

    @dg.asset_check(
        asset=dg.AssetKey(suite.asset_key_path),
        name=CHECK_NAME,
        blocking=suite.blocking,
        description=f"{suite.description} Great Expectations on the run's tenant partition.",
        metadata={"expectations": dg.MetadataValue.md(expectations), "suite": f"pulse.quality.suites: {suite.model}"},
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: PulseWarehouse) -> dg.AssetCheckResult:
        tenant = context.partition_key if context.has_partition_key else None
        outcome = validate_partition(suite, database_url(warehouse.settings()), tenant)
        context.log.info(outcome.summary())
        return check_result(outcome)

    return _check


def blocking_marts(suites: Iterable[Suite] = SUITES) -> set[dg.AssetKey]:
    """The marts whose check blocks: the dbt steps are cut after them (orchestration/lib/dbt_steps.py)."""
    return {dg.AssetKey(suite.asset_key_path) for suite in suites if suite.blocking}


def quality_checks_for(
    asset_keys: Iterable[dg.AssetKey], suites: Iterable[Suite] = SUITES
) -> list[dg.AssetChecksDefinition]:
    """The checks of the suites whose mart is among ``asset_keys``; the others are skipped."""
    present = set(asset_keys)
    return [build_quality_check(suite) for suite in suites if dg.AssetKey(suite.asset_key_path) in present]
