{#- One row per period a work item was blocked: a stint in a blocked status (Jira, ClickUp) or
    a stretch of Azure Boards' Blocked flag set to Yes. blocked_until is null while it still
    is. Periods of the two kinds may overlap; int_work_items_unified merges them before it
    adds them up. Built incrementally by changed work items (macros/incremental.sql). Its
    post-hook logs, for fct_sprints, the items whose periods changed: the blocked time of every
    sprint holding them (macros/incremental_sprints.sql). -#}
{{ per_work_item_table() }}
{{ logs_sprint_inputs({
    'fct_sprints': {'held': 'row(input_row.blocked_from, input_row.blocked_until)'}
}, per_item=true) }}

with

watermarks as (
    {{ load_watermarks() }}
),

status_periods as (
    select
        tenant_id,
        work_item_uid,
        'status'::text as blocked_by,
        entered_at as blocked_from,
        left_at as blocked_until
    from {{ ref('int_work_item_status_history') }}
    where is_blocked_status {{ and_tenant() }} {{ and_in_batch() }}
),

flag_changes as (
    select
        tenant_id,
        work_item_uid,
        changed_at,
        change_id,
        from_value,
        to_value,
        lead(changed_at) over item_flags as next_changed_at,
        row_number() over item_flags as flag_seq
    from {{ ref('int_work_item_changes__unioned') }}
    where field = 'blocked' {{ and_tenant() }} {{ and_in_batch() }}
    window item_flags as (partition by tenant_id, work_item_uid order by changed_at, change_id)
),

items as (
    select tenant_id, work_item_uid, created_at, loaded_at from {{ ref('int_work_items__unioned') }}
    where true {{ and_tenant() }} {{ and_in_batch() }}
),

flag_periods as (
    -- Set by a change: blocked until the next change of the flag.
    select
        tenant_id,
        work_item_uid,
        'flag'::text as blocked_by,
        changed_at as blocked_from,
        next_changed_at as blocked_until
    from flag_changes
    where to_value = 'true'

    union all

    -- Already set before the first change the history shows: blocked since creation.
    select
        flag_changes.tenant_id,
        flag_changes.work_item_uid,
        'flag'::text as blocked_by,
        items.created_at as blocked_from,
        flag_changes.changed_at as blocked_until
    from flag_changes
    inner join items
        on items.tenant_id = flag_changes.tenant_id and items.work_item_uid = flag_changes.work_item_uid
    where flag_changes.flag_seq = 1 and flag_changes.from_value = 'true'
),

periods as (
    select * from status_periods
    union all
    select * from flag_periods
)

select
    periods.*,
    least(items.loaded_at, watermarks.loaded_at) as source_loaded_at
from periods
inner join items
    on items.tenant_id = periods.tenant_id and items.work_item_uid = periods.work_item_uid
inner join watermarks
    on watermarks.tenant_id = periods.tenant_id
