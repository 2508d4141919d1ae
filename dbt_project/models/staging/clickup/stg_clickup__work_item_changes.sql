{#- Field changes of ClickUp tasks. ClickUp has no changelog:

    * status rows are rebuilt from time_in_status, which keeps one entry per status (when it
      was first entered): ordered by that time, each entry is a change from the one before.
      When the current status was re-entered after the last first-entry (e.g. blocked, then
      in progress again) one more row goes to it at the current stint's start. Cycles in
      between (done → re-opened → done) are lost, as they are in ClickUp.
    * sprint rows come from Pulse's own loads (sprint_memberships): a membership first seen by
      the first load that read a sprint that had already started is taken to have entered at
      the sprint's start (Pulse cannot know better); one first seen later entered at the load
      that first saw it; one no longer seen left at the load that no longer saw it.
    * story points and assignees have no history in ClickUp and are left out.

    A table staged per task (macros/incremental.sql): a run restages the tasks with status
    history or sprint memberships loaded since it last ran, and a tenant whose sprint lists
    changed. -#}
{%- set loaded, lookups = 'clickup_change_loads', 'clickup_change_lookups' -%}
{{ per_source_item_table(loaded, lookups, [
    ('clickup', 'task_status_history', 'task_id'), ('clickup', 'sprint_memberships', 'task_id')
]) }}
with

history as (
    select * from (
        {{ union_tenant_sources(source('clickup', 'task_status_history'), 'clickup', [
            'task_id', 'status', 'status_type', 'since', 'is_current', 'current_since'
        ]) }}
    ) as raw_history
    where true {{ and_source_item_in_batch('task_id') }}
),

memberships as (
    select * from (
        {{ union_tenant_sources(source('clickup', 'sprint_memberships'), 'clickup', [
            'list_id', 'task_id', 'first_seen_at', 'left_at', 'seen_on_first_walk'
        ]) }}
    ) as raw_memberships
    where true {{ and_source_item_in_batch('task_id') }}
),

lists as (
    {{ union_tenant_sources(source('clickup', 'lists'), 'clickup', ['id', 'start_date']) }}
),

entries as (
    select
        tenant_id,
        task_id::text as task_id,
        status::text as status,
        status_type::text as status_type,
        since::timestamptz as entered_at,
        is_current::boolean as is_current,
        current_since::timestamptz as current_since
    from history
),

ranked as (
    select
        *,
        first_value(status) over (partition by tenant_id, task_id order by entered_at desc, status) as last_status,
        max(entered_at) over (partition by tenant_id, task_id) as last_entered_at
    from entries
),

stints as (
    select tenant_id, task_id, status, status_type, entered_at
    from entries
    union all
    select tenant_id, task_id, status, status_type, current_since as entered_at
    from ranked
    where is_current and current_since > last_entered_at and status <> last_status
),

status_changes as (
    select
        tenant_id,
        task_id,
        entered_at,
        lag(status) over stint_order as from_status,
        lag(status_type) over stint_order as from_status_type,
        status as to_status,
        status_type as to_status_type
    from stints
    window stint_order as (partition by tenant_id, task_id order by entered_at, status)
),

sprint_moves as (
    select
        memberships.tenant_id,
        memberships.task_id::text as task_id,
        memberships.list_id::text as list_id,
        case
            when memberships.seen_on_first_walk::boolean
                and lists.start_date::timestamptz < memberships.first_seen_at::timestamptz
                then lists.start_date::timestamptz
            else memberships.first_seen_at::timestamptz
        end as entered_at,
        memberships.left_at::timestamptz as left_at
    from memberships
    left join lists
        on lists.tenant_id = memberships.tenant_id and lists.id::text = memberships.list_id::text
),

category as (
    select 'open' as status_type, 'todo' as status_category
    union all select 'custom', 'in_progress'
    union all select 'closed', 'done'
    union all select 'done', 'done'
),

staged as (
    select
        status_changes.tenant_id,
        'clickup'::text as source_system,
        status_changes.task_id as work_item_id,
        status_changes.task_id || ':status:' || status_changes.to_status || '@'
            || (extract(epoch from status_changes.entered_at) * 1000)::bigint::text as change_id,
        status_changes.entered_at as changed_at,
        'status'::text as field,
        status_changes.from_status as from_value,
        status_changes.to_status as to_value,
        null::text as author_email,
        coalesce(from_category.status_category, 'in_progress') as from_status_category,
        coalesce(to_category.status_category, 'in_progress') as to_status_category
    from status_changes
    left join category as from_category on from_category.status_type = status_changes.from_status_type
    left join category as to_category on to_category.status_type = status_changes.to_status_type
    where status_changes.from_status is not null

    union all

    select
        tenant_id,
        'clickup'::text as source_system,
        task_id as work_item_id,
        task_id || ':sprint:' || list_id || ':entered' as change_id,
        entered_at as changed_at,
        'sprint'::text as field,
        null::text as from_value,
        list_id as to_value,
        null::text as author_email,
        null::text as from_status_category,
        null::text as to_status_category
    from sprint_moves

    union all

    select
        tenant_id,
        'clickup'::text as source_system,
        task_id as work_item_id,
        task_id || ':sprint:' || list_id || ':left' as change_id,
        left_at as changed_at,
        'sprint'::text as field,
        list_id as from_value,
        null::text as to_value,
        null::text as author_email,
        null::text as from_status_category,
        null::text as to_status_category
    from sprint_moves
    where left_at is not null
)

select
    staged.*,
    loads.loaded_at,
    lookups.lookups_version
from staged
{{ join_staged_stamps('staged', 'staged.work_item_id', loaded, lookups) }}
