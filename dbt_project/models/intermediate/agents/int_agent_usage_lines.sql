-- What each run consumed, one line per priced unit: a whole run for sources that report
-- runs, one API request for Claude Code. Each line is priced with the model_prices row in
-- force when it happened; a line's cost is the reported one when the source gave it,
-- otherwise tokens × price. Token kinds are disjoint (input excludes cache reads and
-- writes), so each cache token is counted exactly once. Costs are kept to the micro-dollar.

{{ agent_usage_lines() }}
