"""Data quality of the marts: Great Expectations suites declared as data (suites), a runner
that validates one tenant's partition (runner), and what it found in words (results).

Importing this package does not import Great Expectations; only running a validation does.
"""

from pulse.quality.results import ExpectationResult, SuiteResult, interpret
from pulse.quality.runner import QualityConfigError, validate_partition
from pulse.quality.suites import (
    ERROR,
    SUITES,
    WARN,
    Between,
    Expectation,
    Fresh,
    NotNull,
    Ordered,
    Severity,
    Suite,
    suites_by_model,
)

__all__ = [
    "ERROR",
    "SUITES",
    "WARN",
    "Between",
    "Expectation",
    "ExpectationResult",
    "Fresh",
    "NotNull",
    "Ordered",
    "QualityConfigError",
    "Severity",
    "Suite",
    "SuiteResult",
    "interpret",
    "suites_by_model",
    "validate_partition",
]
