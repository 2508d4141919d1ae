-- One row per sprint of any tracker (Jira sprint, ClickUp sprint list, Azure Boards iteration),
-- as the tool has it now; fct_sprints holds its measures.

with

sprints as (
    select
        tenant_id,
        sprint_uid,
        source_system,
        sprint_id,
        sprint_name,
        project_key,
        board_id,
        state,
        start_at,
        end_at,
        completed_at
    from {{ ref('int_sprints_unified') }}
    {{ tenant_filter() }}
)

select
    tenant_id,
    sprint_uid,
    source_system,
    sprint_id,
    sprint_name,
    project_key,
    board_id,
    state,
    start_at,
    end_at,
    completed_at
from sprints
