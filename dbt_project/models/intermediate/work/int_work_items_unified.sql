{#- One row per work item of any tracker (Jira, ClickUp, Azure Boards): current state from
    staging, milestones and blocked time from the status history.

    * first_in_progress_at: when it first entered an in-progress status (null if it never did);
    * done_at: for an item that is done now, when its current run of done statuses began (a
      re-opened item counts from its last completion); the tool's resolution date where the
      history does not reach it;
    * times_reopened: how often it left done for a status that is not;
    * blocked_days: the blocked periods merged (a blocked status and Azure's Blocked flag at
      the same time count once) and added up, open periods up to as_of();
    * epic_uid: the parent if it is an epic, else the parent's parent if that is one.
    Built incrementally by changed work items (macros/incremental.sql); items still blocked and
    the children of changed items are rebuilt too. Its post-hook logs, for the sprint marts,
    the items whose type, story link, flow times or assignee changed, and a bug's story before
    and after (macros/incremental_sprints.sql). -#}
{{ per_work_item_table(also='unified_items_also', key=[]) }}
{#- the items blocked when it last ran, which every build rebuilds (unified_items_also) -#}
{{ config(post_hook="{{ ensure_indexes() }}", ensured_indexes=[{'columns': ['tenant_id'], 'where_true': 'is_blocked_now'}]) }}
{#- what each sprint mart reads of an item: of its completed items the type, story link and flow
    times; the assignee of every item (fct_developer_sprints' members); a bug's story has its
    defects -#}
{{ logs_sprint_inputs({
    'fct_sprints': {
        'completed': 'row(input_row.item_type, input_row.caused_by_uid, input_row.cycle_time_days, input_row.lead_time_days)'
    },
    'fct_developer_sprints': {
        'completed': 'row(input_row.item_type, input_row.caused_by_uid)',
        'held': 'row(input_row.assignee_person_id)'
    }
}, linked=['caused_by_uid']) }}

with

watermarks as (
    {{ load_watermarks() }}
),

items as (
    select * from {{ ref('int_work_items__unioned') }}
    where true {{ and_tenant() }} {{ and_in_batch() }}
),

history as (
    select
        history.*,
        lag(history.status_category) over (
            partition by history.tenant_id, history.work_item_uid order by history.status_seq
        ) as previous_category
    from {{ ref('int_work_item_status_history') }} as history
    where true {{ and_tenant('history') }} {{ and_in_batch('history') }}
),

milestones as (
    select
        tenant_id,
        work_item_uid,
        min(entered_at) filter (where status_category = 'in_progress') as first_in_progress_at,
        max(left_at) filter (where status_category <> 'done') as last_left_open_at,
        bool_or(status_category = 'done') filter (where is_current) as history_ends_done,
        count(*) filter (where previous_category = 'done' and status_category <> 'done') as times_reopened
    from history
    group by tenant_id, work_item_uid
),

periods as (
    select
        periods.tenant_id,
        periods.work_item_uid,
        periods.blocked_from,
        least(coalesce(periods.blocked_until, {{ as_of() }}), {{ as_of() }}) as blocked_until,
        periods.blocked_until is null as is_open
    from {{ ref('int_work_item_blocked_periods') }} as periods
    where periods.blocked_from < {{ as_of() }} {{ and_tenant('periods') }} {{ and_in_batch('periods') }}
),

islands as (
    -- Overlapping periods form one island: a period starts a new island when it begins after
    -- every earlier period of the item has ended.
    select
        periods.*,
        sum(case when blocked_from > coalesce(earlier_end, blocked_from - interval '1 second') then 1 else 0 end)
            over (partition by tenant_id, work_item_uid order by blocked_from, blocked_until
                  rows between unbounded preceding and current row) as island
    from (
        select
            periods.*,
            max(blocked_until) over (
                partition by tenant_id, work_item_uid order by blocked_from, blocked_until
                rows between unbounded preceding and 1 preceding
            ) as earlier_end
        from periods
    ) as periods
),

blocked as (
    select
        tenant_id,
        work_item_uid,
        sum(extract(epoch from island_end - island_start)) / 86400.0 as blocked_days,
        bool_or(is_open) as is_blocked_now
    from (
        select tenant_id, work_item_uid, island, min(blocked_from) as island_start,
               max(blocked_until) as island_end, bool_or(is_open) as is_open
        from islands
        group by tenant_id, work_item_uid, island
    ) as merged
    group by tenant_id, work_item_uid
),

parents as not materialized (
    -- read by index for the items built (a parent and a grandparent each)
    select tenant_id, work_item_uid, item_type, parent_uid from {{ ref('int_work_items__unioned') }}
    {{ tenant_filter() }}
),

done as (
    select
        items.tenant_id,
        items.work_item_uid,
        case
            when items.status_category = 'done' then
                coalesce(
                    case when milestones.history_ends_done then milestones.last_left_open_at end,
                    items.resolved_at,
                    case when milestones.history_ends_done then items.created_at end
                )
        end as done_at
    from items
    left join milestones
        on milestones.tenant_id = items.tenant_id and milestones.work_item_uid = items.work_item_uid
)

select
    items.tenant_id,
    items.work_item_uid,
    items.source_system,
    items.work_item_id,
    items.work_item_key,
    items.project_key,
    items.project_name,
    items.item_type,
    items.native_type,
    items.title,
    items.status,
    items.status_category,
    items.story_points,
    items.sprint_uid,
    items.sprint_id,
    items.assignee_email as assignee_person_id,
    items.reporter_email as reporter_person_id,
    items.parent_uid,
    case
        when parent.item_type = 'epic' then parent.work_item_uid
        when grandparent.item_type = 'epic' then grandparent.work_item_uid
    end as epic_uid,
    items.caused_by_uid,
    items.item_type = 'bug' and items.caused_by_uid is not null as is_post_release_defect,
    items.created_at,
    items.updated_at,
    milestones.first_in_progress_at,
    done.done_at,
    coalesce(milestones.times_reopened, 0)::integer as times_reopened,
    round((extract(epoch from done.done_at - milestones.first_in_progress_at) / 86400.0)::numeric, 4)
        as cycle_time_days,
    round((extract(epoch from done.done_at - items.created_at) / 86400.0)::numeric, 4) as lead_time_days,
    coalesce(blocked.is_blocked_now, false) as is_blocked_now,
    round(coalesce(blocked.blocked_days, 0)::numeric, 4) as blocked_days,
    items.url,
    items.dmt_ac_quality,
    items.dmt_unit_test_task,
    items.dmt_unit_test_status,
    items.dmt_coverage_pct,
    items.dmt_pr_links,
    items.dmt_ci_evidence,
    items.dmt_reviewer_signoff,
    items.dmt_exception,
    items.dmt_exception_reason,
    items.dmt_exception_approver,
    items.dmt_exception_expires,
    least(items.loaded_at, watermarks.loaded_at) as source_loaded_at
from items
inner join watermarks
    on watermarks.tenant_id = items.tenant_id
left join milestones
    on milestones.tenant_id = items.tenant_id and milestones.work_item_uid = items.work_item_uid
left join done
    on done.tenant_id = items.tenant_id and done.work_item_uid = items.work_item_uid
left join blocked
    on blocked.tenant_id = items.tenant_id and blocked.work_item_uid = items.work_item_uid
left join parents as parent
    on parent.tenant_id = items.tenant_id and parent.work_item_uid = items.parent_uid
left join parents as grandparent
    on grandparent.tenant_id = parent.tenant_id and grandparent.work_item_uid = parent.parent_uid
