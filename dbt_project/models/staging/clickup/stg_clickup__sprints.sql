{#- ClickUp sprints are lists in a sprint folder, with start_date and due_date. The API says
    nothing about a sprint being closed: the state follows from the dates, and a closed
    sprint's completed_at is its due date. -#}
with

source as (
    {{ union_tenant_sources(source('clickup', 'lists'), 'clickup', [
        'id', 'name', 'space_id', 'folder_id', 'is_sprint', 'start_date', 'due_date'
    ]) }}
),

sprints as (
    select
        tenant_id,
        id::text as list_id,
        name::text as sprint_name,
        space_id::text as space_id,
        folder_id::text as folder_id,
        start_date::timestamptz as start_at,
        due_date::timestamptz as end_at
    from source
    where is_sprint::boolean
)

select
    tenant_id,
    'clickup'::text as source_system,
    list_id as sprint_id,
    sprint_name,
    space_id as project_key,
    folder_id as board_id,
    case
        when end_at is not null and end_at <= current_timestamp then 'closed'
        when start_at is null or start_at <= current_timestamp then 'active'
        else 'future'
    end as state,
    start_at,
    end_at,
    case when end_at is not null and end_at <= current_timestamp then end_at end as completed_at
from sprints
