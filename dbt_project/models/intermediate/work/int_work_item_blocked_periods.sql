{#- One row per period a work item was blocked: a stint in a blocked status (Jira, ClickUp) or
    a stretch of Azure Boards' Blocked flag set to Yes. blocked_until is null while it still
    is. Periods of the two kinds may overlap; int_work_items_unified merges them before it
    adds them up. A view over tables: it never filters by tenant. -#}
with

status_periods as (
    select
        tenant_id,
        work_item_uid,
        'status'::text as blocked_by,
        entered_at as blocked_from,
        left_at as blocked_until
    from {{ ref('int_work_item_status_history') }}
    where is_blocked_status
),

flag_changes as not materialized (
    -- not materialized: a reader's filter on an item reaches the table's item index
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
    where field = 'blocked'
    window item_flags as (partition by tenant_id, work_item_uid order by changed_at, change_id)
),

items as (
    select tenant_id, work_item_uid, created_at from {{ ref('int_work_items__unioned') }}
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
)

select * from status_periods
union all
select * from flag_periods
