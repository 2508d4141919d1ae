{{ stage_agent_runs(source('agent_import', 'runs'), 'agent_import') }}
