"""The job that refreshes one tenant's agent usage and budget marts (dbt group marts_agents)."""

import dagster as dg

#: fct_agent_runs, the daily usage, ranks and top users, fct_budget_utilization.
USAGE_MARTS = dg.AssetSelection.groups("marts_agents")

#: The mart the budget sensor watches: built last, from the runs and control.budgets.
BUDGET_UTILIZATION = dg.AssetKey(["marts", "fct_budget_utilization"])

agent_usage_marts_job = dg.define_asset_job(
    "agent_usage_marts",
    selection=USAGE_MARTS,
    description="Rebuild one tenant's agent usage marts and budget utilization from int_agent_runs.",
    # In the run's own process, as the agent model jobs do (freshness). Two dbt steps:
    # fct_agent_runs, then (once its quality check passed) the marts built from it.
    executor_def=dg.in_process_executor,
)
