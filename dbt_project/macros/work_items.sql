{% macro points_as_of(moment) -%}
    {#- A work item's story points at `moment` (used inside int_sprint_scope, where the aliases
        scoped, items and points_history exist): the value the last story_points change at or
        before it set; else, if it changed later, the value the first later change replaced;
        else its current points. -#}
    case
        when exists (
            select 1 from points_history as ph
            where ph.tenant_id = scoped.tenant_id and ph.work_item_uid = scoped.work_item_uid
              and ph.changed_at <= {{ moment }}
        ) then (
            select ph.to_points from points_history as ph
            where ph.tenant_id = scoped.tenant_id and ph.work_item_uid = scoped.work_item_uid
              and ph.changed_at <= {{ moment }}
            order by ph.changed_at desc, ph.change_id desc limit 1
        )
        when exists (
            select 1 from points_history as ph
            where ph.tenant_id = scoped.tenant_id and ph.work_item_uid = scoped.work_item_uid
        ) then (
            select ph.from_points from points_history as ph
            where ph.tenant_id = scoped.tenant_id and ph.work_item_uid = scoped.work_item_uid
            order by ph.changed_at, ph.change_id limit 1
        )
        else items.story_points
    end
{%- endmacro %}

{% macro is_blocked_status(column) -%}
    {#- A status that means "blocked" (Jira's and ClickUp's Blocked, On Hold, Impeded); Azure
        Boards flags blocking outside the state (the blocked field changes). -#}
    (lower({{ column }}) ~ '(^|\W)(blocked|on hold|impeded)(\W|$)')
{%- endmacro %}
