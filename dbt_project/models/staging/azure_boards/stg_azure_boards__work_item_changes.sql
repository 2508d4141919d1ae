{#- Field changes of Azure Boards work items, from consecutive revisions of the reporting feed:
    a field whose value differs from the revision before is a change at the later revision's
    ChangedDate, by its ChangedBy.

    * status: System.State, with both states' categories (as in stg_azure_boards__work_items);
    * sprint: System.IterationPath, exploded into a row for the sprint left and one for the
      sprint entered; paths that are not iterations of the team (the project root) are no
      sprint, so a move from the backlog into a sprint is one "entered" row. A first revision
      already in a sprint entered it at creation;
    * story_points (numeric text), assignee (emails);
    * blocked: Microsoft.VSTS.CMMI.Blocked as true/false (Azure flags blocking outside the state). -#}
{%- set loaded, lookups = 'azure_boards_change_loads', 'azure_boards_change_lookups' -%}
{{ per_source_item_table(loaded, lookups, [('azure_boards', 'work_item_revisions', 'id')]) }}
with

revisions as (
    select * from (
        {{ union_tenant_sources(source('azure_boards', 'work_item_revisions'), 'azure_boards', [
            'id', 'rev', 'changed_at', 'changed_by_email', 'work_item_type', 'project', 'state',
            'iteration_path', 'story_points', 'assigned_to_email', 'blocked'
        ]) }}
    ) as raw_revisions
    where true {{ and_source_item_in_batch('id', 'bigint') }}
),

states as (
    {{ union_tenant_sources(source('azure_boards', 'states'), 'azure_boards', [
        'project', 'work_item_type', 'name', 'category'
    ]) }}
),

iterations as (
    {{ union_tenant_sources(source('azure_boards', 'iterations'), 'azure_boards', ['path']) }}
),

sprint_paths as (
    select distinct tenant_id, path::text as path from iterations
),

categories as (
    select
        tenant_id,
        project::text as project,
        work_item_type::text as work_item_type,
        name::text as state,
        case
            when category::text = 'Proposed' then 'todo'
            when category::text in ('InProgress', 'Resolved') then 'in_progress'
            when category::text in ('Completed', 'Removed') then 'done'
        end as status_category
    from states
),

ordered as (
    select
        tenant_id,
        id::bigint::text as work_item_id,
        rev::bigint as rev,
        changed_at::timestamptz as changed_at,
        lower(changed_by_email::text) as author_email,
        project::text as project,
        work_item_type::text as work_item_type,
        state::text as state,
        iteration_path::text as iteration_path,
        story_points::numeric as story_points,
        lower(assigned_to_email::text) as assignee_email,
        blocked::text as blocked,
        lag(rev::bigint) over item_revisions as previous_rev,
        lag(state::text) over item_revisions as previous_state,
        lag(iteration_path::text) over item_revisions as previous_path,
        lag(story_points::numeric) over item_revisions as previous_points,
        lag(lower(assigned_to_email::text)) over item_revisions as previous_assignee,
        lag(blocked::text) over item_revisions as previous_blocked
    from revisions
    window item_revisions as (partition by tenant_id, id order by rev)
),

status_changes as (
    select
        ordered.tenant_id,
        ordered.work_item_id,
        ordered.rev,
        'status' as field,
        '' as direction,
        ordered.changed_at,
        ordered.author_email,
        ordered.previous_state as from_value,
        ordered.state as to_value,
        coalesce(
            from_category.status_category,
            case when ordered.previous_state in ('New', 'To Do') then 'todo'
                 when ordered.previous_state in ('Closed', 'Done', 'Removed') then 'done' else 'in_progress' end
        ) as from_status_category,
        coalesce(
            to_category.status_category,
            case when ordered.state in ('New', 'To Do') then 'todo'
                 when ordered.state in ('Closed', 'Done', 'Removed') then 'done' else 'in_progress' end
        ) as to_status_category
    from ordered
    left join categories as from_category
        on from_category.tenant_id = ordered.tenant_id
        and from_category.project = ordered.project
        and from_category.work_item_type = ordered.work_item_type
        and from_category.state = ordered.previous_state
    left join categories as to_category
        on to_category.tenant_id = ordered.tenant_id
        and to_category.project = ordered.project
        and to_category.work_item_type = ordered.work_item_type
        and to_category.state = ordered.state
    where ordered.previous_rev is not null
      and ordered.state is distinct from ordered.previous_state
),

sprint_left as (
    select
        ordered.tenant_id,
        ordered.work_item_id,
        ordered.rev,
        'sprint' as field,
        'left' as direction,
        ordered.changed_at,
        ordered.author_email,
        ordered.previous_path as from_value,
        null::text as to_value
    from ordered
    inner join sprint_paths
        on sprint_paths.tenant_id = ordered.tenant_id
        and sprint_paths.path = ordered.previous_path
    where ordered.previous_rev is not null
      and ordered.iteration_path is distinct from ordered.previous_path
),

sprint_entered as (
    select
        ordered.tenant_id,
        ordered.work_item_id,
        ordered.rev,
        'sprint' as field,
        'entered' as direction,
        ordered.changed_at,
        ordered.author_email,
        null::text as from_value,
        ordered.iteration_path as to_value
    from ordered
    inner join sprint_paths
        on sprint_paths.tenant_id = ordered.tenant_id
        and sprint_paths.path = ordered.iteration_path
    where ordered.previous_rev is null
       or ordered.iteration_path is distinct from ordered.previous_path
),

points_changes as (
    select
        tenant_id,
        work_item_id,
        rev,
        'story_points' as field,
        '' as direction,
        changed_at,
        author_email,
        previous_points::text as from_value,
        story_points::text as to_value
    from ordered
    where previous_rev is not null
      and story_points is distinct from previous_points
),

assignee_changes as (
    select
        tenant_id,
        work_item_id,
        rev,
        'assignee' as field,
        '' as direction,
        changed_at,
        author_email,
        previous_assignee as from_value,
        assignee_email as to_value
    from ordered
    where previous_rev is not null
      and assignee_email is distinct from previous_assignee
),

blocked_changes as (
    select
        tenant_id,
        work_item_id,
        rev,
        'blocked' as field,
        '' as direction,
        changed_at,
        author_email,
        case when previous_blocked = 'Yes' then 'true' else 'false' end as from_value,
        case when blocked = 'Yes' then 'true' else 'false' end as to_value
    from ordered
    where previous_rev is not null
      and coalesce(blocked, 'No') is distinct from coalesce(previous_blocked, 'No')
),

other_changes as (
    select * from sprint_left
    union all
    select * from sprint_entered
    union all
    select * from points_changes
    union all
    select * from assignee_changes
    union all
    select * from blocked_changes
),

unioned as (
    select
        tenant_id, work_item_id, rev, field, direction, changed_at, author_email, from_value, to_value,
        from_status_category, to_status_category
    from status_changes
    union all
    select
        tenant_id, work_item_id, rev, field, direction, changed_at, author_email, from_value, to_value,
        null::text as from_status_category, null::text as to_status_category
    from other_changes
)

select
    unioned.tenant_id,
    'azure_boards'::text as source_system,
    unioned.work_item_id,
    unioned.work_item_id || ':' || unioned.rev::text || ':' || unioned.field
        || case when unioned.direction <> '' then ':' || unioned.direction else '' end as change_id,
    unioned.changed_at,
    unioned.field,
    unioned.from_value,
    unioned.to_value,
    unioned.from_status_category,
    unioned.to_status_category,
    unioned.author_email,
    loads.loaded_at,
    lookups.lookups_version
from unioned
{{ join_staged_stamps('unioned', 'unioned.work_item_id', loaded, lookups) }}
