"""Jobs that refresh the agent models of one tenant partition (partitioned like the assets they select)."""

import dagster as dg

#: The dbt models agent data flows through, up to int_agent_runs (and the price seed).
AGENT_MODELS = dg.AssetSelection.groups(
    "staging_claude_code",
    "staging_agent_platform",
    "staging_agent_import",
    "staging_agent_mcp",
    "intermediate_agents",
    "reference",
)

agent_models_job = dg.define_asset_job(
    "agent_models",
    selection=AGENT_MODELS,
    description="Rebuild one tenant's agent models (staging → int_agent_runs) from the raw agent tables.",
    # One dbt step: running it in the run's own process saves a process start per run,
    # which is most of the freshness budget on a small machine.
    executor_def=dg.in_process_executor,
)

agent_platform_job = dg.define_asset_job(
    "agent_platform_sync",
    selection=dg.AssetSelection.assets(dg.AssetKey(["raw", "agent_platform", "runs"])) | AGENT_MODELS,
    description="Pull one tenant's agent-platform runs, then rebuild its agent models.",
    executor_def=dg.in_process_executor,
)
