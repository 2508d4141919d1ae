"""What a validation found, in words a data engineer understands.

:func:`interpret` reads one Great Expectations result (its ``success``, ``result`` and
``exception_info`` dictionaries, as GE 1.x returns them) into an :class:`ExpectationResult`;
:class:`SuiteResult` sums a suite up: passed, or failed with error or warn severity, and
which rows offended. Plain Python values only, so Dagster metadata and tests can use them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pulse.quality.suites import Expectation, Fresh, NotNull, Ordered, Severity, Suite, age_words

#: Offending rows kept per failed expectation (GE's partial_unexpected_count).
EXAMPLE_ROWS = 20


@dataclass(frozen=True)
class ExpectationResult:
    expectation: Expectation
    success: bool
    observed_value: Any = None
    """Aggregates (freshness): the value found. Row expectations: the offending values seen."""
    unexpected_count: int | None = None
    """Rows that broke the expectation (row expectations; None for aggregates)."""
    element_count: int | None = None
    """Rows looked at (the partition's rows)."""
    offending_rows: tuple[Mapping[str, Any], ...] = ()
    """Up to EXAMPLE_ROWS offending rows: the suite's key columns and the values checked."""
    error: str | None = None
    """Why the expectation could not be evaluated (it then counts as failed)."""

    @property
    def severity(self) -> Severity:
        return self.expectation.severity

    def examples(self) -> list[Any]:
        """The offending values seen (pairs as [lower, upper] for an Ordered expectation)."""
        return list(self.observed_value) if isinstance(self.observed_value, list) else []

    def sentence(self) -> str:
        """The expectation and what was found, in one sentence."""
        if self.error:
            return f"could not check {self.expectation.describe()}: {self.error}"
        return f"{self.expectation.describe()}: {self.finding()}"

    def finding(self) -> str:
        """What was found (without restating the expectation)."""
        expectation = self.expectation
        if self.error:
            return f"could not be checked: {self.error}"
        if isinstance(expectation, Fresh):
            if self.observed_value is None:
                return "no rows, so nothing is stale"
            verdict = "within" if self.success else "older than"
            return f"newest is {self.observed_value}, {verdict} {age_words(expectation.max_age)}"
        rows = self.element_count or 0
        if self.success:
            return f"holds in all {rows} row{'s' if rows != 1 else ''}"
        count = self.unexpected_count or 0
        sample = "" if isinstance(expectation, NotNull) else ", ".join(_show(value) for value in self.examples()[:5])
        found = f" (e.g. {sample})" if sample else ""
        return f"broken in {count} of {rows} rows{found}"


@dataclass(frozen=True)
class SuiteResult:
    suite: Suite
    tenant_id: str | None
    """The partition validated; None for every tenant's rows."""
    results: tuple[ExpectationResult, ...]
    row_count: int | None = None
    problem: str | None = None
    """Why the suite could not run at all (then every expectation failed with it)."""

    @property
    def failures(self) -> tuple[ExpectationResult, ...]:
        return tuple(result for result in self.results if not result.success)

    @property
    def error_failures(self) -> tuple[ExpectationResult, ...]:
        return tuple(result for result in self.failures if result.severity is Severity.ERROR)

    @property
    def warn_failures(self) -> tuple[ExpectationResult, ...]:
        return tuple(result for result in self.failures if result.severity is Severity.WARN)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def severity(self) -> Severity:
        """ERROR when an error-severity expectation failed, otherwise WARN (also when all passed)."""
        return Severity.ERROR if self.error_failures else Severity.WARN

    def summary(self) -> str:
        scope = f"tenant {self.tenant_id}" if self.tenant_id else "every tenant"
        rows = f"{self.row_count} rows" if self.row_count is not None else "its rows"
        if self.problem:
            return f"{self.suite.table} ({scope}): could not run: {self.problem}"
        if self.passed:
            return f"{self.suite.table} ({scope}, {rows}): all {len(self.results)} expectations hold"
        return (
            f"{self.suite.table} ({scope}, {rows}): {len(self.error_failures)} error(s) and "
            f"{len(self.warn_failures)} warning(s) of {len(self.results)} expectations"
        )

    def failures_markdown(self) -> str:
        """The failed expectations as a table, errors first."""
        if self.passed:
            return "Every expectation holds."
        if self.problem:
            return f"The suite could not run: {self.problem}"
        lines = ["| severity | expectation | found |", "|---|---|---|"]
        for result in (*self.error_failures, *self.warn_failures):
            lines.append(f"| {result.severity.value} | `{result.expectation.describe()}` | {_cell(result.finding())} |")
        return "\n".join(lines)

    def offending_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Per failed expectation (by its key), the offending rows GE listed."""
        return {
            result.expectation.key: [dict(row) for row in result.offending_rows]
            for result in self.failures
            if result.offending_rows
        }

    def unexpected_counts(self) -> dict[str, int]:
        """Per failed row expectation (by its key), how many rows broke it."""
        return {
            result.expectation.key: result.unexpected_count
            for result in self.failures
            if result.unexpected_count is not None
        }


def interpret(
    expectation: Expectation,
    success: bool | None,
    result: Mapping[str, Any] | None,
    exception_info: Mapping[str, Any] | None = None,
) -> ExpectationResult:
    """One GE expectation result, as Pulse reports it.

    A raised exception counts as a failure with its message. A freshness expectation on a
    partition without rows passes (nothing to be stale).
    """
    result = result or {}
    error = exception_message(exception_info)
    if error:
        return ExpectationResult(expectation, success=False, error=error)
    if isinstance(expectation, Fresh):
        observed = plain(result.get("observed_value"))
        return ExpectationResult(expectation, success=bool(success) or observed is None, observed_value=observed)
    unexpected = result.get("unexpected_count")
    elements = result.get("element_count")
    observed = list(result.get("partial_unexpected_list") or []) if not success else []
    if isinstance(expectation, Ordered):
        # GE lists (column_A, column_B) = (upper, lower); report them as the declaration reads.
        observed = [list(reversed(pair)) if isinstance(pair, list | tuple) else pair for pair in observed]
    rows = tuple(
        {str(name): plain(value) for name, value in row.items()}
        for row in (result.get("partial_unexpected_index_list") or [])[:EXAMPLE_ROWS]
        if isinstance(row, Mapping)
    )
    return ExpectationResult(
        expectation,
        success=bool(success),
        observed_value=plain(observed) if not success else None,
        unexpected_count=int(unexpected) if unexpected is not None else (0 if success else None),
        element_count=int(elements) if elements is not None else None,
        offending_rows=rows,
    )


def exception_message(exception_info: Mapping[str, Any] | None) -> str | None:
    """The message of an exception GE caught, whether given flat or keyed by metric."""
    if not exception_info:
        return None
    if "raised_exception" in exception_info:
        if exception_info.get("raised_exception"):
            return str(exception_info.get("exception_message") or "the expectation raised an exception")
        return None
    for value in exception_info.values():
        if isinstance(value, Mapping):
            message = exception_message(value)
            if message:
                return message
    return None


def failed_to_run(suite: Suite, message: str, tenant_id: str | None) -> SuiteResult:
    """Every expectation of the suite failed with the same reason (e.g. the table is missing)."""
    return SuiteResult(
        suite,
        tenant_id,
        tuple(ExpectationResult(expectation, success=False, error=message) for expectation in suite.expectations),
        problem=message,
    )


def plain(value: Any) -> Any:
    """A JSON-friendly copy: numbers as int/float, times as ISO 8601 (UTC), tuples as lists."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(item) for item in value]
    return value


def _show(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, list) and len(value) == 2:  # an Ordered pair: [lower, upper]
        return f"{_show(value[0])} > {_show(value[1])}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
