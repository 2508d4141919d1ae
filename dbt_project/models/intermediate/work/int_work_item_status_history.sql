{#- One row per stint of a work item in a status: from the moment it entered the status
    (its creation for the first stint) to the moment it left (null while current).

    Built from the status changes of int_work_item_changes__unioned: the first stint is the
    status the first change left (or, with no change at all, the current status), from the
    item's creation; every change opens a stint in its new status. days_in_status is a closed
    stint's length (null for the current one, which grows with time: measure it from
    entered_at). Built incrementally by changed work items (macros/incremental.sql). -#}
{{ per_work_item_table(key=['status_seq']) }}

with

watermarks as (
    {{ load_watermarks() }}
),

items as (
    select tenant_id, work_item_uid, source_system, status, status_category, created_at, loaded_at
    from {{ ref('int_work_items__unioned') }}
    where true {{ and_tenant() }} {{ and_in_batch() }}
),

changes as (
    select
        changes.tenant_id,
        changes.work_item_uid,
        changes.change_id,
        changes.changed_at,
        changes.from_value,
        changes.to_value,
        changes.from_status_category,
        changes.to_status_category,
        changes.author_email,
        row_number() over (
            partition by changes.tenant_id, changes.work_item_uid order by changes.changed_at, changes.change_id
        ) as status_seq
    from {{ ref('int_work_item_changes__unioned') }} as changes
    where changes.field = 'status' {{ and_tenant('changes') }} {{ and_in_batch('changes') }}
),

first_stints as (
    select
        items.tenant_id,
        items.work_item_uid,
        items.source_system,
        0::bigint as status_seq,
        coalesce(first_change.from_value, items.status) as status,
        coalesce(first_change.from_status_category, items.status_category) as status_category,
        items.created_at as entered_at,
        null::text as change_id,
        null::text as changed_by_email,
        items.loaded_at
    from items
    left join changes as first_change
        on first_change.tenant_id = items.tenant_id
        and first_change.work_item_uid = items.work_item_uid
        and first_change.status_seq = 1
),

later_stints as (
    select
        changes.tenant_id,
        changes.work_item_uid,
        items.source_system,
        changes.status_seq,
        changes.to_value as status,
        changes.to_status_category as status_category,
        changes.changed_at as entered_at,
        changes.change_id,
        changes.author_email as changed_by_email,
        items.loaded_at
    from changes
    inner join items
        on items.tenant_id = changes.tenant_id and items.work_item_uid = changes.work_item_uid
),

stints as (
    select * from first_stints
    union all
    select * from later_stints
),

bounded as (
    select
        stints.*,
        lead(stints.entered_at) over item_stints as left_at
    from stints
    window item_stints as (partition by stints.tenant_id, stints.work_item_uid order by stints.status_seq)
)

select
    bounded.tenant_id,
    work_item_uid,
    source_system,
    status_seq,
    status,
    status_category,
    {{ is_blocked_status('status') }} as is_blocked_status,
    entered_at,
    left_at,
    left_at is null as is_current,
    case
        when left_at is not null
            then round((extract(epoch from greatest(left_at - entered_at, interval '0')) / 86400.0)::numeric, 4)
    end as days_in_status,
    change_id,
    changed_by_email,
    least(bounded.loaded_at, watermarks.loaded_at) as source_loaded_at
from bounded
inner join watermarks
    on watermarks.tenant_id = bounded.tenant_id
