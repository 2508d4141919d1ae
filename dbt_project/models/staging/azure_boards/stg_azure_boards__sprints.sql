{#- Azure iterations as sprints. The sprint id is the iteration path, which work items and
    revisions reference (System.IterationPath). Azure keeps whole days: the sprint starts at
    00:00 UTC of its start date and ends at the end of its (inclusive) finish date. The time
    frame gives the state (past → closed, current → active, future → future); Azure has no
    completion moment, so a past sprint counts as completed at its end. -#}
with

iterations as (
    {{ union_tenant_sources(source('azure_boards', 'iterations'), 'azure_boards', [
        'id', 'name', 'path', 'project', 'team', 'start_date', 'finish_date', 'time_frame'
    ]) }}
),

renamed as (
    select
        tenant_id,
        'azure_boards'::text as source_system,
        path::text as sprint_id,
        id::text as iteration_guid,
        name::text as sprint_name,
        project::text as project_key,
        team::text as board_id,
        case time_frame::text
            when 'past' then 'closed'
            when 'current' then 'active'
            else 'future'
        end as state,
        start_date::timestamptz as start_at,
        finish_date::timestamptz + interval '1 day' as end_at,
        case when time_frame::text = 'past' then finish_date::timestamptz + interval '1 day' end as completed_at
    from iterations
)

select * from renamed
