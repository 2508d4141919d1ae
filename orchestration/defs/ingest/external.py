"""Raw tables written outside Dagster (pushed to Pulse rather than pulled by it).

Declared so the lineage graph shows where the agent models' data comes from; their freshness
is watched by the agents sensor, which refreshes the models when new rows arrive.
"""

import dagster as dg

claude_code_events = dg.AssetSpec(
    ["raw", "claude_code", "otel_events"],
    group_name="ingest_agents",
    description="Claude Code OpenTelemetry events, written by `pulse ingest serve` (raw_claude_code__<tenant>).",
    kinds={"postgres"},
)
claude_code_metric_points = dg.AssetSpec(
    ["raw", "claude_code", "otel_metric_points"],
    group_name="ingest_agents",
    description="Claude Code OpenTelemetry metric points, written by `pulse ingest serve`.",
    kinds={"postgres"},
)
agent_import_runs = dg.AssetSpec(
    ["raw", "agent_import", "runs"],
    group_name="ingest_agents",
    description="Historical agent runs imported with `pulse agents import` (raw_agent_import__<tenant>).",
    kinds={"postgres"},
)
agent_mcp_runs = dg.AssetSpec(
    ["raw", "agent_mcp", "runs"],
    group_name="ingest_agents",
    description="Agent runs reported through `pulse mcp` (raw_agent_mcp__<tenant>).",
    kinds={"postgres"},
)
