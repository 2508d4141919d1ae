{{ stage_agent_runs(source('agent_platform', 'runs'), 'agent_platform') }}
