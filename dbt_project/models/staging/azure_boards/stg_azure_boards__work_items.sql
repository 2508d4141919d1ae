{#- Azure Boards work items in the staging contract of docs/sources.md. The status category
    comes from the states of the item's type (Proposed → todo; InProgress and Resolved →
    in_progress; Completed and Removed → done), by state name when those are missing. The
    sprint is the mapped iteration path, but only when it is one of the team's iterations: an
    item in the project's root iteration is in no sprint. Picklist DMT values are normalized
    to the contract's words ("Exception Approved" → exception_approved).

    A table staged per item (macros/incremental.sql): a run restages the items loaded since it
    last ran, and a tenant whose states, iterations or projects changed. -#}
{%- set loaded, lookups = 'azure_boards_item_loads', 'azure_boards_item_lookups' -%}
{{ per_source_item_table(loaded, lookups, [('azure_boards', 'work_items', 'id')], one_row_per_item=true) }}
with

items as (
    select * from (
    {{ union_tenant_sources(source('azure_boards', 'work_items'), 'azure_boards', [
        'id', 'project', 'work_item_type', 'state', 'title', 'assigned_to_email', 'created_by_email',
        'created_at', 'changed_at', 'closed_at', 'iteration_path', 'parent_id', 'caused_by_id', 'url',
        'payload', 'story_points', 'sprint', 'dmt_ac_quality', 'dmt_unit_test_task', 'dmt_unit_test_status',
        'dmt_coverage_pct', 'dmt_pr_links', 'dmt_ci_evidence', 'dmt_reviewer_signoff', 'dmt_exception',
        'dmt_exception_reason', 'dmt_exception_approver', 'dmt_exception_expires', '_dlt_load_id'
    ]) }}
    ) as raw_items
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

projects as (
    {{ union_tenant_sources(source('azure_boards', 'projects'), 'azure_boards', ['name', 'description']) }}
),

sprint_paths as (
    select distinct tenant_id, path::text as path from iterations
),

renamed as (
    select
        items.tenant_id,
        'azure_boards'::text as source_system,
        items.id::bigint::text as work_item_id,
        items.id::bigint::text as work_item_key,
        items.project::text as project_key,
        coalesce(projects.name::text, items.project::text) as project_name,
        case items.work_item_type::text
            when 'User Story' then 'story'
            when 'Product Backlog Item' then 'story'
            when 'Requirement' then 'story'
            when 'Issue' then 'story'
            when 'Bug' then 'bug'
            when 'Task' then 'task'
            when 'Epic' then 'epic'
            else 'other'
        end as item_type,
        items.work_item_type::text as native_type,
        items.title::text as title,
        items.state::text as status,
        case
            when states.category::text = 'Proposed' then 'todo'
            when states.category::text in ('InProgress', 'Resolved') then 'in_progress'
            when states.category::text in ('Completed', 'Removed') then 'done'
            when items.state::text in ('New', 'To Do', 'Proposed') then 'todo'
            when items.state::text in ('Closed', 'Done', 'Removed') then 'done'
            else 'in_progress'
        end as status_category,
        items.story_points::numeric as story_points,
        sprint_paths.path as sprint_id,
        lower(items.assigned_to_email::text) as assignee_email,
        lower(items.created_by_email::text) as reporter_email,
        items.parent_id::bigint::text as parent_id,
        items.caused_by_id::bigint::text as caused_by_id,
        items.created_at::timestamptz as created_at,
        items.changed_at::timestamptz as updated_at,
        items.closed_at::timestamptz as resolved_at,
        coalesce(items.payload::jsonb -> '_links' -> 'html' ->> 'href', items.url::text) as url,
        lower(replace(trim(items.dmt_ac_quality::text), ' ', '_')) as dmt_ac_quality,
        items.dmt_unit_test_task::boolean as dmt_unit_test_task,
        lower(regexp_replace(trim(items.dmt_unit_test_status::text), '[\s-]+', '_', 'g')) as dmt_unit_test_status,
        items.dmt_coverage_pct::numeric as dmt_coverage_pct,
        items.dmt_pr_links::text as dmt_pr_links,
        items.dmt_ci_evidence::text as dmt_ci_evidence,
        items.dmt_reviewer_signoff::boolean as dmt_reviewer_signoff,
        items.dmt_exception::boolean as dmt_exception,
        items.dmt_exception_reason::text as dmt_exception_reason,
        lower(items.dmt_exception_approver::text) as dmt_exception_approver,
        items.dmt_exception_expires::date as dmt_exception_expires,
        loads.loaded_at,
        lookups.lookups_version
    from items
    {{ join_staged_stamps('items', 'items.id::bigint::text', loaded, lookups) }}
    left join states
        on states.tenant_id = items.tenant_id
        and states.project::text = items.project::text
        and states.work_item_type::text = items.work_item_type::text
        and states.name::text = items.state::text
    left join sprint_paths
        on sprint_paths.tenant_id = items.tenant_id
        and sprint_paths.path = coalesce(items.sprint::text, items.iteration_path::text)
    left join projects
        on projects.tenant_id = items.tenant_id
        and projects.name::text = items.project::text
)

select * from renamed
