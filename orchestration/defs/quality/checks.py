"""Great Expectations suites on the marts (pulse.quality) as Dagster asset checks.

Each suite becomes one blocking-or-not asset check on its mart's dbt asset (factory.py).
Suites are attached only to marts the dbt manifest has: a suite declared for a mart still
being built is skipped until its model exists.
"""

import dagster as dg

from orchestration.defs.quality.factory import quality_checks_for
from orchestration.defs.transform.assets import dbt_models


@dg.definitions
def quality_checks() -> dg.Definitions:
    return dg.Definitions(asset_checks=quality_checks_for(key for step in dbt_models for key in step.keys))
