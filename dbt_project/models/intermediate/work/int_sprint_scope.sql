{#- One row per sprint and work item that belonged to it at any moment of the sprint: whether it
    was in the sprint at its start and at its end, added or removed during it, its points at
    each of those moments, and whether it was completed in the sprint.

    Current state cannot give this (an item moved on to the next sprint, or re-estimated,
    forgets where it was), so membership is rebuilt from the sprint changes in the history:
    at a moment M an item is in a sprint if the last change of that membership at or before M
    entered it; with no change before M, if the first change after M is leaving it (it was in
    before the history begins); with no change at all, if it is in the sprint now and existed
    at M (tools without sprint history).

    * the start is the sprint's start; the end its completion (its planned end if it has none),
      for a sprint still running as_of(). The scope at the end is taken just before that moment,
      so the carry-over of unfinished items at the close does not read as a removal;
    * was_added: entered after the start and before the end; was_removed: left in that window
      and not in the sprint at the end;
    * is_completed: in the sprint at the end, in a done status then, and not already done at
      the sprint's start. Points are the item's points at each moment (points_as_of).
    Built incrementally by changed work items (macros/incremental.sql); every item of a sprint
    whose window moved (a running sprint's end is as_of) is rebuilt too. Its post-hook logs, for
    the sprint marts, the sprints of the rows that changed (macros/incremental_sprints.sql).

    Its relations are joined in the order written (membership: each item-sprint pair, then its
    sprint, then its item). The planner cannot estimate the CTEs' rows: at 50 tenants × 4 years
    it took the 761,953 sprint entries and exits for 7,708, and joined every sprint to every item
    of its tenant first (32M rows, by its estimate). The model took 410 s of the full build, and
    its select 20 s in this order (docs/scaling.md). -#}
{{ per_work_item_table(also='sprint_scope_also', key=['sprint_uid'], joins_as_written=true) }}
{#- by sprint: the sprint marts read their batch of sprints' rows by it (fct_sprints,
    fct_developer_sprints), and a build finds the sprints whose window moved (sprint_scope_also);
    by end: the latest moment measured per tenant (sprint_scope_also) -#}
{{ config(post_hook="{{ ensure_indexes() }}", ensured_indexes=[
    {'columns': ['tenant_id', 'sprint_uid', 'scope_start_at', 'scope_end_at']},
    {'columns': ['tenant_id', 'scope_end_at']}
]) }}
{#- what each sprint mart reads of a scope row: fct_sprints every column (its scope's count and
    newest load too), fct_developer_sprints the completion and points -#}
{{ logs_sprint_inputs({
    'fct_sprints': {'sprint': 'input_row'},
    'fct_developer_sprints': {'sprint': 'row(input_row.is_completed, input_row.points_at_end)'}
}) }}

with

watermarks as (
    {{ load_watermarks() }}
),

sprints as (
    {{ sprint_windows() }}
),

items as (
    select tenant_id, work_item_uid, story_points, sprint_uid, created_at, loaded_at
    from {{ ref('int_work_items__unioned') }}
    where true {{ and_tenant() }} {{ and_in_batch() }}
),

changes as (
    select * from {{ ref('int_work_item_changes__unioned') }}
    where field in ('sprint', 'story_points') {{ and_tenant() }} {{ and_in_batch() }}
),

events as (
    select tenant_id, work_item_uid, sprint_to_uid as sprint_uid, changed_at, change_id, true as entered
    from changes
    where field = 'sprint' and sprint_to_uid is not null
    union all
    select tenant_id, work_item_uid, sprint_from_uid as sprint_uid, changed_at, change_id, false as entered
    from changes
    where field = 'sprint' and sprint_from_uid is not null
),

pairs as (
    select tenant_id, work_item_uid, sprint_uid from events
    union
    select tenant_id, work_item_uid, sprint_uid from items where sprint_uid is not null
),

points_history as (
    select
        tenant_id,
        work_item_uid,
        changed_at,
        change_id,
        case when from_value ~ '^-?\d+(\.\d+)?$' then from_value::numeric end as from_points,
        case when to_value ~ '^-?\d+(\.\d+)?$' then to_value::numeric end as to_points
    from changes
    where field = 'story_points'
),

history as (
    select tenant_id, work_item_uid, status_seq, status_category, entered_at
    from {{ ref('int_work_item_status_history') }}
    where true {{ and_tenant() }} {{ and_in_batch() }}
),

pair_marks as (
    -- Each item's membership changes of a sprint, read against that sprint's window: whether
    -- the last change at or before a moment entered it, whether the first one after did, and
    -- when it first entered and last left during the sprint. Aggregates, not look-ups per row:
    -- an item has a handful of changes.
    select
        events.tenant_id,
        events.sprint_uid,
        events.work_item_uid,
        (array_agg(events.entered order by events.changed_at desc, events.change_id desc)
            filter (where events.changed_at <= sprints.scope_start_at))[1] as entered_by_start,
        (array_agg(events.entered order by events.changed_at, events.change_id)
            filter (where events.changed_at > sprints.scope_start_at))[1] as entered_after_start,
        (array_agg(events.entered order by events.changed_at desc, events.change_id desc)
            filter (where events.changed_at < sprints.scope_end_at))[1] as entered_before_end,
        (array_agg(events.entered order by events.changed_at, events.change_id)
            filter (where events.changed_at >= sprints.scope_end_at))[1] as entered_from_end,
        min(events.changed_at) filter (
            where events.entered
              and events.changed_at > sprints.scope_start_at and events.changed_at < sprints.scope_end_at
        ) as first_entered_at,
        max(events.changed_at) filter (
            where not events.entered
              and events.changed_at > sprints.scope_start_at and events.changed_at < sprints.scope_end_at
        ) as last_left_at
    from events
    inner join sprints
        on sprints.tenant_id = events.tenant_id and sprints.sprint_uid = events.sprint_uid
    group by events.tenant_id, events.sprint_uid, events.work_item_uid
),

membership as (
    select
        pairs.tenant_id,
        pairs.sprint_uid,
        pairs.work_item_uid,
        sprints.scope_start_at,
        sprints.scope_end_at,
        coalesce(
            pair_marks.entered_by_start,
            not pair_marks.entered_after_start,
            items.sprint_uid = pairs.sprint_uid and items.created_at <= sprints.scope_start_at
        ) as in_scope_at_start,
        coalesce(
            pair_marks.entered_before_end,
            not pair_marks.entered_from_end,
            items.sprint_uid = pairs.sprint_uid and items.created_at < sprints.scope_end_at
        ) as in_scope_at_end,
        pair_marks.first_entered_at,
        pair_marks.last_left_at,
        items.story_points,
        items.loaded_at
    from pairs
    inner join sprints
        on sprints.tenant_id = pairs.tenant_id and sprints.sprint_uid = pairs.sprint_uid
    inner join items
        on items.tenant_id = pairs.tenant_id and items.work_item_uid = pairs.work_item_uid
    left join pair_marks
        on pair_marks.tenant_id = pairs.tenant_id
        and pair_marks.sprint_uid = pairs.sprint_uid
        and pair_marks.work_item_uid = pairs.work_item_uid
),

scoped as (
    select
        membership.*,
        membership.first_entered_at is not null and not membership.in_scope_at_start as was_added,
        membership.last_left_at is not null and not membership.in_scope_at_end as was_removed
    from membership
    where membership.in_scope_at_start
       or membership.in_scope_at_end
       or membership.first_entered_at is not null
       or membership.last_left_at is not null
),

facts as (
    -- An item's status stints and story-points changes, in one relation: each scope row reads
    -- both in one grouped pass (joining two separate aggregates back to it misled the planner
    -- into a nested loop, quadratic in the rows of a tenant).
    select
        tenant_id, work_item_uid, 'status' as kind, status_seq, entered_at as at, null::text as change_id,
        status_category, null::numeric as from_points, null::numeric as to_points
    from history
    union all
    select
        tenant_id, work_item_uid, 'points', null::bigint, changed_at, change_id,
        null::text, from_points, to_points
    from points_history
),

measured as (
    -- The status category of the stint the item was in at the start and just before the end
    -- (its first stint for a moment before its history begins), and its points then.
    select
        scoped.tenant_id,
        scoped.sprint_uid,
        scoped.work_item_uid,
        scoped.in_scope_at_start,
        scoped.in_scope_at_end,
        scoped.was_added,
        scoped.was_removed,
        scoped.scope_start_at,
        scoped.scope_end_at,
        scoped.loaded_at,
        scoped.first_entered_at as added_at,
        scoped.last_left_at as removed_at,
        (array_agg(facts.status_category order by facts.status_seq desc)
            filter (where facts.kind = 'status' and (facts.at <= scoped.scope_start_at or facts.status_seq = 0)))[1]
            as status_category_at_start,
        (array_agg(facts.status_category order by facts.status_seq desc)
            filter (where facts.kind = 'status' and (facts.at < scoped.scope_end_at or facts.status_seq = 0)))[1]
            as status_category_at_end,
        case when scoped.in_scope_at_start then {{ points_as_of('scoped.scope_start_at') }} end as points_at_start,
        case when scoped.in_scope_at_end then {{ points_as_of("scoped.scope_end_at - interval '1 millisecond'") }} end
            as points_at_end,
        case when scoped.was_added then {{ points_as_of('scoped.first_entered_at') }} end as points_when_added,
        case when scoped.was_removed then {{ points_as_of('scoped.last_left_at') }} end as points_when_removed
    from scoped
    left join facts
        on facts.tenant_id = scoped.tenant_id and facts.work_item_uid = scoped.work_item_uid
    group by
        scoped.tenant_id, scoped.sprint_uid, scoped.work_item_uid, scoped.in_scope_at_start, scoped.in_scope_at_end,
        scoped.was_added, scoped.was_removed, scoped.scope_start_at, scoped.scope_end_at, scoped.loaded_at,
        scoped.first_entered_at, scoped.last_left_at, scoped.story_points
)

select
    measured.tenant_id,
    sprint_uid,
    work_item_uid,
    in_scope_at_start,
    in_scope_at_end,
    was_added,
    was_removed,
    added_at,
    removed_at,
    status_category_at_start,
    status_category_at_end,
    in_scope_at_end and status_category_at_end = 'done'
        and status_category_at_start is distinct from 'done' as is_completed,
    points_at_start,
    points_at_end,
    points_when_added,
    points_when_removed,
    scope_start_at,
    scope_end_at,
    least(measured.loaded_at, watermarks.loaded_at) as source_loaded_at
from measured
inner join watermarks
    on watermarks.tenant_id = measured.tenant_id
