{#- One row per ClickUp task: the staging contract of docs/sources.md. Ids are ClickUp's own
    (task, list, user ids as text); the work_item_key is how people name a task in pull
    requests (CU-<id>), or the task's custom id where the Workspace has them.

    A table staged per task (macros/incremental.sql): a run restages the tasks loaded since it
    last ran, that Pulse saw join or leave a sprint list since (their sprint changes come from
    those rows, so they count as a change of the task), and that link to a task loaded since (a
    bug's cause is read from the task it links to); loaded_at is the newest of those moments. -#}
{%- set loaded, lookups = 'clickup_item_loads', 'no_lookups' -%}
{{ per_source_item_table(
    loaded, lookups, [('clickup', 'tasks', 'id')], one_row_per_item=true,
    raw_elements=[('clickup', 'tasks', 'linked_task_ids')]
) }}
with

source as (
    select * from (
    {{ union_tenant_sources(source('clickup', 'tasks'), 'clickup', [
        'id', 'custom_id', 'name', 'status', 'status_type', 'task_type', 'date_created',
        'date_updated', 'date_closed', 'date_done', 'creator_email', 'assignee_email', 'parent_id',
        'space_id', 'space_name', 'linked_task_ids', 'url', 'story_points', 'sprint',
        'dmt_ac_quality', 'dmt_unit_test_task', 'dmt_unit_test_status', 'dmt_coverage_pct',
        'dmt_pr_links', 'dmt_ci_evidence', 'dmt_reviewer_signoff', 'dmt_exception',
        'dmt_exception_reason', 'dmt_exception_approver', 'dmt_exception_expires', '_dlt_load_id'
    ]) }}
    ) as raw_tasks
    where true {{ and_source_item_in_batch('id') }}
),

all_tasks as (
    {#- Every task of the tenant, for the bugs' links (a linked task need not be restaged). -#}
    select tenant_id, id::text as task_id, lower(task_type::text) in ('bug', 'defect') as is_bug
    from ({{ union_tenant_sources(source('clickup', 'tasks'), 'clickup', ['id', 'task_type']) }}) as tasks
    {{ tenant_filter() }}
),

typed as (
    select
        tenant_id,
        id::text as task_id,
        custom_id::text as custom_id,
        name::text as title,
        status::text as status,
        case status_type::text
            when 'open' then 'todo'
            when 'closed' then 'done'
            when 'done' then 'done'
            else 'in_progress'
        end as status_category,
        task_type::text as native_type,
        case lower(task_type::text)
            when 'story' then 'story'
            when 'user story' then 'story'
            when 'bug' then 'bug'
            when 'defect' then 'bug'
            when 'task' then 'task'
            when 'epic' then 'epic'
            else 'other'
        end as item_type,
        space_id::text as space_id,
        space_name::text as space_name,
        story_points::numeric as story_points,
        sprint::text as sprint,
        lower(assignee_email::text) as assignee_email,
        lower(creator_email::text) as reporter_email,
        parent_id::text as parent_task_id,
        coalesce(linked_task_ids::jsonb, '[]'::jsonb) as linked_task_ids,
        date_created::timestamptz as created_at,
        date_updated::timestamptz as updated_at,
        coalesce(date_done::timestamptz, date_closed::timestamptz) as done_at,
        url::text as url,
        nullif(lower(regexp_replace(trim(dmt_ac_quality::text), '[^A-Za-z0-9]+', '_', 'g')), '') as dmt_ac_quality,
        dmt_unit_test_task::boolean as dmt_unit_test_task,
        nullif(
            lower(regexp_replace(trim(dmt_unit_test_status::text), '[^A-Za-z0-9]+', '_', 'g')), ''
        ) as dmt_unit_test_status,
        dmt_coverage_pct::numeric as dmt_coverage_pct,
        dmt_pr_links::text as dmt_pr_links,
        dmt_ci_evidence::text as dmt_ci_evidence,
        dmt_reviewer_signoff::boolean as dmt_reviewer_signoff,
        dmt_exception::boolean as dmt_exception,
        dmt_exception_reason::text as dmt_exception_reason,
        lower(dmt_exception_approver::text) as dmt_exception_approver,
        dmt_exception_expires::date as dmt_exception_expires
    from source
),

caused_by as (
    {#- ClickUp links are undirected: a bug's cause is the task it links to that is no bug. -#}
    select
        bugs.tenant_id,
        bugs.task_id,
        min(linked.task_id) as caused_by_task_id
    from typed as bugs
    cross join lateral jsonb_array_elements_text(bugs.linked_task_ids) as link(task_id)
    inner join all_tasks as linked
        on linked.tenant_id = bugs.tenant_id and linked.task_id = link.task_id
    where bugs.item_type = 'bug' and not linked.is_bug
    group by bugs.tenant_id, bugs.task_id
)

select
    typed.tenant_id,
    'clickup'::text as source_system,
    typed.task_id as work_item_id,
    coalesce(typed.custom_id, 'CU-' || typed.task_id) as work_item_key,
    typed.space_id as project_key,
    typed.space_name as project_name,
    typed.item_type,
    typed.native_type,
    typed.title,
    typed.status,
    typed.status_category,
    typed.story_points,
    typed.sprint as sprint_id,
    typed.assignee_email,
    typed.reporter_email,
    typed.parent_task_id as parent_id,
    caused_by.caused_by_task_id as caused_by_id,
    typed.created_at,
    typed.updated_at,
    case when typed.status_category = 'done' then typed.done_at end as resolved_at,
    typed.url,
    typed.dmt_ac_quality,
    typed.dmt_unit_test_task,
    typed.dmt_unit_test_status,
    typed.dmt_coverage_pct,
    typed.dmt_pr_links,
    typed.dmt_ci_evidence,
    typed.dmt_reviewer_signoff,
    typed.dmt_exception,
    typed.dmt_exception_reason,
    typed.dmt_exception_approver,
    typed.dmt_exception_expires,
    loads.loaded_at,
    lookups.lookups_version
from typed
{{ join_staged_stamps('typed', 'typed.task_id', loaded, lookups) }}
left join caused_by
    on caused_by.tenant_id = typed.tenant_id and caused_by.task_id = typed.task_id
