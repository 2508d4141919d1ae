"""The job that refreshes one tenant's account-health mart (dbt groups marts_accounts, staging_dlt_loads)."""

import dagster as dg
from sqlalchemy import Connection, text

#: The mart the health sensor watches.
ACCOUNT_HEALTH = dg.AssetKey(["marts", "fct_account_health_daily"])

#: fct_account_health_daily, and the view of the tenants' dlt loads it reads (rebuilt so that a
#: tenant's new raw dataset is in it).
HEALTH_MODELS = dg.AssetSelection.groups("marts_accounts", "staging_dlt_loads")

account_health_job = dg.define_asset_job(
    "account_health",
    selection=HEALTH_MODELS,
    description="Rebuild one tenant's daily account-health scores from the agent, compliance and load marts.",
    # In the run's own process, as the usage-mart jobs do (alert latency). Two dbt steps: the
    # loads view, then the health mart (built from checked marts, so in a later step).
    executor_def=dg.in_process_executor,
)

#: The marts fct_account_health_daily reads. Both are built by every tenant sync, the agent runs
#: also by the usage-marts job; until a first sync has built them the health job cannot run.
HEALTH_INPUTS = ("marts.fct_agent_runs", "marts.fct_work_item_compliance")


def missing_inputs(conn: Connection) -> list[str]:
    """The input marts of the health mart that do not exist (yet)."""
    return [
        relation
        for relation in HEALTH_INPUTS
        if conn.execute(text("select to_regclass(:r)"), {"r": relation}).scalar() is None
    ]


def not_ready(missing: list[str]) -> str:
    return (
        f"{', '.join(missing)} not built yet: sync a tenant once (`pulse sync --tenant T`, or a sync request) "
        "so that every mart exists, then account health is scored"
    )
