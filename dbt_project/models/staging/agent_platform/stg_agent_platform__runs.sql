{#- its raw copies are indexed on its unique key (macros/tested_loads.sql, unique_key_indexes) -#}
{{ config(pre_hook="{{ index_unique_keys() }}") }}
{{ stage_agent_runs(source('agent_platform', 'runs'), 'agent_platform') }}
