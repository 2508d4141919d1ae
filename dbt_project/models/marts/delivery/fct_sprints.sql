{#- One row per sprint: scope, velocity, say/do, flow times, blocked time, quality, Done Means
    Tested and pull requests. What counts where:

    * the sprint window is [start_at, window_end_at): its completion (its planned end when it
      has none), or as_of() for a sprint still running;
    * scope and completion come from int_sprint_scope (rebuilt from the sprint history): an
      item moved between sprints counts as completed only in the sprint it was completed in,
      and an item re-opened after done still counts in the sprint that completed it;
    * say_do_ratio: of the points committed at the start, the share whose items were completed
      in the sprint, each at its committed estimate (so re-estimating mid-sprint neither
      inflates nor deflates it); null when nothing was committed (no committed points) and
      for a sprint that has not started (what is planned for it so far is its commitment);
    * cycle and lead times are int_work_items_unified's (measured to the item's last
      completion) over the items completed in the sprint; an item re-opened and still open has
      none and is left out of the means and medians;
    * blocked time: every blocked period of the sprint's scope items (any item in the sprint at
      any moment), overlapping periods counted once, clipped to the sprint window;
    * post-release defects: bugs whose caused_by_uid is a story completed in this sprint, in
      whichever sprint (or none) the bug itself is; a bug linked to no story counts nowhere;
    * DMT: the sprint's completed non-epic items that fct_work_item_compliance assesses (done
      or in review now; an item re-opened since is not assessed);
    * pull requests: merged within the sprint window and linked to an item of the sprint's
      scope (int_pull_request_work_items).

    Built incrementally by changed sprints (macros/incremental_sprints.sql): a build rebuilds
    the sprints whose row, window, scope, defects, DMT figures or git data changed since the
    mart last built them. -#}
-- depends_on: {{ ref('int_git_moments') }}
{{ per_sprint_table(changed='fct_sprints_changed') }}

with

sprints as (
    select
        tenant_id,
        sprint_uid,
        source_system,
        sprint_name,
        project_key,
        state,
        start_at,
        end_at,
        completed_at,
        least(coalesce(completed_at, end_at), {{ as_of() }}) as window_end_at,
        committed_items,
        committed_points,
        added_items,
        added_points,
        removed_items,
        removed_points,
        completed_items,
        completed_points
    from {{ ref('int_sprints_unified') }}
    where true {{ and_tenant() }} {{ and_sprint_in_batch() }}
),

-- In an incremental build the batch's scope, items and assessments are read by index, sprint
-- by sprint and item by item (macros/index_reads.sql): this select runs with nested loops
-- disabled, so joined by hash they were read whole.
scope as (
    {%- if is_incremental() %}
    select scope.*
    from {{ changed_sprints_relation() }} as changed
    {{ lateral_index_read(
        ref('int_sprint_scope'), 'scope',
        match='scope.tenant_id = changed.tenant_id and scope.sprint_uid = changed.sprint_uid',
        columns='scope.tenant_id, scope.sprint_uid, scope.work_item_uid, scope.in_scope_at_start,'
            ~ ' scope.is_completed, scope.points_at_start, scope.points_at_end, scope.source_loaded_at'
    ) }}
    {{ tenant_filter('changed') }}
    {%- else %}
    select tenant_id, sprint_uid, work_item_uid, in_scope_at_start, is_completed, points_at_start, points_at_end,
        source_loaded_at
    from {{ ref('int_sprint_scope') }}
    {{ tenant_filter() }}
    {%- endif %}
),

items as (
    {%- if is_incremental() %}
    select items.*
    from (select distinct tenant_id, work_item_uid from scope) as wanted
    {{ lateral_index_read(
        ref('int_work_items_unified'), 'items',
        match='items.tenant_id = wanted.tenant_id and items.work_item_uid = wanted.work_item_uid',
        columns='items.tenant_id, items.work_item_uid, items.item_type, items.caused_by_uid,'
            ~ ' items.cycle_time_days, items.lead_time_days'
    ) }}
    {%- else %}
    select tenant_id, work_item_uid, item_type, caused_by_uid, cycle_time_days, lead_time_days
    from {{ ref('int_work_items_unified') }}
    {{ tenant_filter() }}
    {%- endif %}
),

-- Bugs traced to a story (post-release defects): few, read whole, once (inlined, the planner
-- looped over the items index per story).
bugs as materialized (
    select tenant_id, work_item_uid, caused_by_uid
    from {{ ref('int_work_items_unified') }}
    where item_type = 'bug' and caused_by_uid is not null {{ and_tenant() }}
),

completed as (
    select
        scope.tenant_id,
        scope.sprint_uid,
        scope.work_item_uid,
        scope.in_scope_at_start,
        scope.points_at_start,
        items.item_type,
        items.cycle_time_days,
        items.lead_time_days
    from scope
    inner join items
        on items.tenant_id = scope.tenant_id and items.work_item_uid = scope.work_item_uid
    where scope.is_completed
),

completion as (
    select
        tenant_id,
        sprint_uid,
        count(*) filter (where item_type = 'story') as completed_stories,
        count(*) filter (where item_type = 'bug') as completed_bugs,
        count(*) filter (where item_type = 'task') as completed_tasks,
        coalesce(sum(points_at_start) filter (where in_scope_at_start), 0) as committed_points_completed,
        avg(cycle_time_days) as mean_cycle_time_days,
        percentile_cont(0.5) within group (order by cycle_time_days) as median_cycle_time_days,
        avg(lead_time_days) as mean_lead_time_days,
        percentile_cont(0.5) within group (order by lead_time_days) as median_lead_time_days
    from completed
    group by tenant_id, sprint_uid
),

defects as (
    select
        completed.tenant_id,
        completed.sprint_uid,
        count(distinct bugs.work_item_uid) as post_release_defects
    from completed
    inner join bugs
        on bugs.tenant_id = completed.tenant_id and bugs.caused_by_uid = completed.work_item_uid
    where completed.item_type = 'story'
    group by completed.tenant_id, completed.sprint_uid
),

compliance as (
    select
        completed.tenant_id,
        completed.sprint_uid,
        count(*) as dmt_assessed_items,
        count(*) filter (where assessed.is_dmt_compliant) as dmt_compliant_items
    from completed
    {{ join_batch_by_index(
        ref('fct_work_item_compliance'), 'assessed',
        match='assessed.tenant_id = completed.tenant_id and assessed.work_item_uid = completed.work_item_uid',
        columns='assessed.tenant_id, assessed.is_dmt_compliant'
    ) }}
    where completed.item_type <> 'epic' {{ and_tenant('assessed') }}
    group by completed.tenant_id, completed.sprint_uid
),

-- Each item's blocked periods as one set of time ranges: overlaps merge, open periods run to
-- as_of(), and nothing after as_of() counts.
blocked_ranges as (
    select
        tenant_id,
        work_item_uid,
        range_agg(tstzrange(blocked_from, greatest(blocked_from, least(coalesce(blocked_until, now_at), now_at))))
            as ranges
    from {{ ref('int_work_item_blocked_periods') }}
    cross join (select {{ as_of() }} as now_at) as moment
    where blocked_from < moment.now_at {{ and_tenant() }}
        {%- if is_incremental() %}
        and (tenant_id, work_item_uid) in (select tenant_id, work_item_uid from scope)
        {%- endif %}
    group by tenant_id, work_item_uid
),

blocked as (
    select
        scope.tenant_id,
        scope.sprint_uid,
        count(*) as scope_items,
        max(scope.source_loaded_at) as source_loaded_at,
        coalesce(sum(clipped.seconds), 0) / 86400.0 as blocked_days_total
    from scope
    inner join sprints
        on sprints.tenant_id = scope.tenant_id and sprints.sprint_uid = scope.sprint_uid
    left join blocked_ranges
        on blocked_ranges.tenant_id = scope.tenant_id and blocked_ranges.work_item_uid = scope.work_item_uid
    left join lateral (
        select sum(extract(epoch from upper(part) - lower(part))) as seconds
        from unnest(
            blocked_ranges.ranges
            * tstzmultirange(tstzrange(sprints.start_at, greatest(sprints.start_at, sprints.window_end_at)))
        ) as part
    ) as clipped on true
    group by scope.tenant_id, scope.sprint_uid
),

pull_requests as (
    select tenant_id, pull_request_id, opened_at, merged_at, first_review_at, is_reviewed, is_merged_without_review
    from {{ ref('int_pull_requests_unified') }}
    where merged_at is not null {{ and_tenant() }}
),

links as (
    select tenant_id, pull_request_id, work_item_uid
    from {{ ref('int_pull_request_work_items') }}
    {{ tenant_filter() }}
),

sprint_pull_requests as (
    select distinct
        sprints.tenant_id,
        sprints.sprint_uid,
        pull_requests.pull_request_id,
        pull_requests.is_reviewed,
        pull_requests.is_merged_without_review,
        extract(epoch from pull_requests.first_review_at - pull_requests.opened_at) / 3600.0 as hours_to_first_review
    from sprints
    inner join scope
        on scope.tenant_id = sprints.tenant_id and scope.sprint_uid = sprints.sprint_uid
    inner join links
        on links.tenant_id = scope.tenant_id and links.work_item_uid = scope.work_item_uid
    inner join pull_requests
        on pull_requests.tenant_id = links.tenant_id and pull_requests.pull_request_id = links.pull_request_id
    where pull_requests.merged_at >= sprints.start_at and pull_requests.merged_at < sprints.window_end_at
),

reviews as (
    select
        tenant_id,
        sprint_uid,
        count(*) as prs_merged,
        count(*) filter (where is_reviewed) as prs_reviewed,
        count(*) filter (where is_merged_without_review) as prs_merged_without_review,
        avg(hours_to_first_review) as mean_hours_to_first_review
    from sprint_pull_requests
    group by tenant_id, sprint_uid
)

select
    sprints.tenant_id,
    sprints.sprint_uid,
    sprints.source_system,
    sprints.sprint_name,
    sprints.project_key,
    sprints.state,
    sprints.start_at,
    sprints.window_end_at,
    sprints.committed_items,
    sprints.committed_points::numeric(12, 2) as committed_points,
    sprints.added_items,
    sprints.added_points::numeric(12, 2) as added_points,
    sprints.removed_items,
    sprints.removed_points::numeric(12, 2) as removed_points,
    sprints.completed_points::numeric(12, 2) as completed_points,
    coalesce(completion.committed_points_completed, 0)::numeric(12, 2) as committed_points_completed,
    case when sprints.start_at <= {{ as_of() }} then
        round(coalesce(completion.committed_points_completed, 0) / nullif(sprints.committed_points, 0), 4)
    end::numeric(8, 4) as say_do_ratio,
    sprints.completed_items as throughput,
    coalesce(completion.completed_stories, 0)::integer as completed_stories,
    coalesce(completion.completed_bugs, 0)::integer as completed_bugs,
    coalesce(completion.completed_tasks, 0)::integer as completed_tasks,
    round(completion.mean_cycle_time_days, 4)::numeric(10, 4) as mean_cycle_time_days,
    round(completion.median_cycle_time_days::numeric, 4)::numeric(10, 4) as median_cycle_time_days,
    round(completion.mean_lead_time_days, 4)::numeric(10, 4) as mean_lead_time_days,
    round(completion.median_lead_time_days::numeric, 4)::numeric(10, 4) as median_lead_time_days,
    coalesce(blocked.scope_items, 0)::integer as scope_items,
    round(coalesce(blocked.blocked_days_total, 0), 4)::numeric(12, 4) as blocked_days_total,
    round(blocked.blocked_days_total / nullif(blocked.scope_items, 0), 4)::numeric(12, 4) as blocked_days_per_item,
    coalesce(defects.post_release_defects, 0)::integer as post_release_defects,
    round(100.0 * coalesce(defects.post_release_defects, 0) / nullif(sprints.completed_points, 0), 4)::numeric(12, 4)
        as defect_density,
    coalesce(compliance.dmt_assessed_items, 0)::integer as dmt_assessed_items,
    coalesce(compliance.dmt_compliant_items, 0)::integer as dmt_compliant_items,
    round(100.0 * compliance.dmt_compliant_items / nullif(compliance.dmt_assessed_items, 0), 2)::numeric(5, 2)
        as dmt_compliance_rate,
    coalesce(reviews.prs_merged, 0)::integer as prs_merged,
    coalesce(reviews.prs_merged_without_review, 0)::integer as prs_merged_without_review,
    round(reviews.mean_hours_to_first_review, 2)::numeric(12, 2) as mean_hours_to_first_review,
    round(100.0 * reviews.prs_reviewed / nullif(reviews.prs_merged, 0), 2)::numeric(5, 2) as share_reviewed,
    blocked.source_loaded_at
from sprints
left join completion
    on completion.tenant_id = sprints.tenant_id and completion.sprint_uid = sprints.sprint_uid
left join defects
    on defects.tenant_id = sprints.tenant_id and defects.sprint_uid = sprints.sprint_uid
left join compliance
    on compliance.tenant_id = sprints.tenant_id and compliance.sprint_uid = sprints.sprint_uid
left join blocked
    on blocked.tenant_id = sprints.tenant_id and blocked.sprint_uid = sprints.sprint_uid
left join reviews
    on reviews.tenant_id = sprints.tenant_id and reviews.sprint_uid = sprints.sprint_uid
