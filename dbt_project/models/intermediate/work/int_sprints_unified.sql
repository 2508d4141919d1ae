{#- One row per sprint of any tracker, with its scope rebuilt from history (int_sprint_scope):
    what was committed at the start, what was added and removed during it, what was in it at
    the end, and what was completed. Velocity is completed_points; say/do compares it with
    committed_points. Items without an estimate count as items and as 0 points. -#}
{{ per_tenant_table(key=['tenant_id', 'sprint_uid']) }}

with

sprints as (
    select * from {{ ref('int_sprints__unioned') }}
    {{ tenant_filter() }}
),

scope as (
    select
        tenant_id,
        sprint_uid,
        count(*) filter (where in_scope_at_start) as committed_items,
        coalesce(sum(points_at_start) filter (where in_scope_at_start), 0) as committed_points,
        count(*) filter (where was_added) as added_items,
        coalesce(sum(points_when_added) filter (where was_added), 0) as added_points,
        count(*) filter (where was_removed) as removed_items,
        coalesce(sum(points_when_removed) filter (where was_removed), 0) as removed_points,
        count(*) filter (where in_scope_at_end) as end_items,
        coalesce(sum(points_at_end) filter (where in_scope_at_end), 0) as end_points,
        count(*) filter (where is_completed) as completed_items,
        coalesce(sum(points_at_end) filter (where is_completed), 0) as completed_points
    from {{ ref('int_sprint_scope') }}
    {{ tenant_filter() }}
    group by tenant_id, sprint_uid
)

select
    sprints.tenant_id,
    sprints.sprint_uid,
    sprints.source_system,
    sprints.sprint_id,
    sprints.sprint_name,
    sprints.project_key,
    sprints.board_id,
    sprints.state,
    sprints.start_at,
    sprints.end_at,
    sprints.completed_at,
    coalesce(scope.committed_items, 0)::integer as committed_items,
    coalesce(scope.committed_points, 0)::numeric as committed_points,
    coalesce(scope.added_items, 0)::integer as added_items,
    coalesce(scope.added_points, 0)::numeric as added_points,
    coalesce(scope.removed_items, 0)::integer as removed_items,
    coalesce(scope.removed_points, 0)::numeric as removed_points,
    coalesce(scope.end_items, 0)::integer as end_items,
    coalesce(scope.end_points, 0)::numeric as end_points,
    coalesce(scope.completed_items, 0)::integer as completed_items,
    coalesce(scope.completed_points, 0)::numeric as completed_points
from sprints
left join scope
    on scope.tenant_id = sprints.tenant_id and scope.sprint_uid = sprints.sprint_uid
