{% macro points_as_of(moment) -%}
    {#- A work item's story points at `moment`, as an aggregate over its story-points changes
        (used inside int_sprint_scope, grouped by scope row: `facts` holds the item's changes,
        kind 'points', left-joined; `scoped.story_points` its current points): the value the
        last change at or before it set; else, if it changed later, the value the first later
        change replaced; else its current points. -#}
    case
        when count(*) filter (where facts.kind = 'points' and facts.at <= {{ moment }}) > 0 then
            (array_agg(facts.to_points order by facts.at desc, facts.change_id desc)
                filter (where facts.kind = 'points' and facts.at <= {{ moment }}))[1]
        when count(*) filter (where facts.kind = 'points') > 0 then
            (array_agg(facts.from_points order by facts.at, facts.change_id)
                filter (where facts.kind = 'points'))[1]
        else scoped.story_points
    end
{%- endmacro %}

{% macro is_blocked_status(column) -%}
    {#- A status that means "blocked" (Jira's and ClickUp's Blocked, On Hold, Impeded); Azure
        Boards flags blocking outside the state (the blocked field changes). -#}
    (lower({{ column }}) ~ '(^|\W)(blocked|on hold|impeded)(\W|$)')
{%- endmacro %}

{% macro sprint_windows() -%}
    {#- Each started sprint's window as int_sprint_scope measures it: from its start to its
        completion (its planned end if it has none), both at most as_of(). -#}
    select
        tenant_id,
        sprint_uid,
        least(start_at, {{ as_of() }}) as scope_start_at,
        least(coalesce(completed_at, end_at), {{ as_of() }}) as scope_end_at
    from {{ ref('int_sprints__unioned') }}
    where start_at is not null {{ and_tenant() }}
{%- endmacro %}
