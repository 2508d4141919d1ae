{#- Sprints of the site's Scrum boards; a sprint belongs to the board it was created on. -#}
with

source as (
    {{ union_tenant_sources(source('jira', 'sprints'), 'jira', [
        'id', 'board_id', 'origin_board_id', 'project_key', 'name', 'state',
        'start_at', 'end_at', 'completed_at'
    ]) }}
)

select
    tenant_id,
    'jira'::text as source_system,
    id::text as sprint_id,
    name::text as sprint_name,
    project_key::text as project_key,
    coalesce(origin_board_id, board_id)::text as board_id,
    lower(state::text) as state,
    start_at::timestamptz as start_at,
    end_at::timestamptz as end_at,
    completed_at::timestamptz as completed_at
from source
