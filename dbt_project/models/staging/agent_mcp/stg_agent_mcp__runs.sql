{{ stage_agent_runs(source('agent_mcp', 'runs'), 'agent_mcp') }}
