{% macro clickup_membership_loads() -%}
    {#- A sprint membership row is loaded again by every load that walks its sprint list; it
        changes only when Pulse saw the task join or leave the list: that moment is its load
        (its load_id the moment's epoch seconds as text, which sorts as dlt's load ids do). -#}
    select tenant_id, task_id::text, moment, extract(epoch from moment)::text
    from (
        select tenant_id, task_id, greatest(first_seen_at::timestamptz, left_at::timestamptz) as moment
        from ({{ union_tenant_sources(source('clickup', 'sprint_memberships'), 'clickup', ['task_id', 'first_seen_at', 'left_at']) }}) as memberships
    ) as memberships
{%- endmacro %}

{#- What each tool's staged change history (stg_<tool>__work_item_changes, staged per item:
    macros/incremental.sql) reads: `loads`, its raw rows' items and loads; `lookups`, the
    version of what else its rows read. -#}

{% macro jira_change_loads() -%}
    {{ raw_item_loads(source('jira', 'issue_changes'), 'jira', 'issue_id') }}
{%- endmacro %}

{% macro jira_change_lookups() -%}
    {#- What the rows read besides the changelog: account emails and status categories. -#}
    {{ lookups_version(
        "select tenant_id, 'user' as kind, user_id as id, email as value from " ~ ref('stg_jira__users')
        ~ " union all select tenant_id, 'status', id::text, category_key::text from ("
        ~ union_tenant_sources(source('jira', 'statuses'), 'jira', ['id', 'category_key']) ~ ") as statuses"
    ) }}
{%- endmacro %}

{% macro clickup_change_loads() -%}
    {{ raw_item_loads(source('clickup', 'task_status_history'), 'clickup', 'task_id') }}
    union all
    -- a membership row is loaded again by every load that walks its sprint list; it changes
    -- only when Pulse saw the task join or leave the list (as stg_clickup__work_items' loaded_at)
    {{ clickup_membership_loads() }}
{%- endmacro %}

{% macro clickup_change_lookups() -%}
    {#- What the rows read besides the tasks' history: the sprint lists' start dates. -#}
    {{ lookups_version(
        "select tenant_id, id::text as id, start_date::text as start_date from ("
        ~ union_tenant_sources(source('clickup', 'lists'), 'clickup', ['id', 'start_date']) ~ ") as lists"
    ) }}
{%- endmacro %}

{% macro azure_boards_change_loads() -%}
    {{ raw_item_loads(source('azure_boards', 'work_item_revisions'), 'azure_boards', 'id', 'id::bigint') }}
{%- endmacro %}

{% macro azure_boards_change_lookups() -%}
    {#- What the rows read besides the revisions: the states' categories and the team's sprints. -#}
    {{ lookups_version(
        "select tenant_id, 'state' as kind, concat_ws('/', project, work_item_type, name) as id, category::text as value from ("
        ~ union_tenant_sources(source('azure_boards', 'states'), 'azure_boards', ['project', 'work_item_type', 'name', 'category'])
        ~ ") as states union all select tenant_id, 'iteration', path::text, null from ("
        ~ union_tenant_sources(source('azure_boards', 'iterations'), 'azure_boards', ['path']) ~ ") as iterations"
    ) }}
{%- endmacro %}

{#- The tools' staged work items (stg_<tool>__work_items), staged per item likewise. -#}

{% macro jira_item_loads() -%}
    {{ raw_item_loads(source('jira', 'issues'), 'jira', 'id') }}
{%- endmacro %}

{% macro jira_item_lookups() -%}
    {#- Emails Jira hid on the issue come from the users list. -#}
    {{ lookups_version("select tenant_id, user_id, email from " ~ ref('stg_jira__users')) }}
{%- endmacro %}

{% macro azure_boards_item_loads() -%}
    {{ raw_item_loads(source('azure_boards', 'work_items'), 'azure_boards', 'id', 'id::bigint') }}
{%- endmacro %}

{% macro azure_boards_item_lookups() -%}
    {#- The states' categories, the team's sprints and the projects' names. -#}
    {{ lookups_version(
        "select tenant_id, 'state' as kind, concat_ws('/', project, work_item_type, name) as id, category::text as value from ("
        ~ union_tenant_sources(source('azure_boards', 'states'), 'azure_boards', ['project', 'work_item_type', 'name', 'category'])
        ~ ") as states union all select tenant_id, 'iteration', path::text, null from ("
        ~ union_tenant_sources(source('azure_boards', 'iterations'), 'azure_boards', ['path']) ~ ") as iterations"
        ~ " union all select tenant_id, 'project', name::text, null from ("
        ~ union_tenant_sources(source('azure_boards', 'projects'), 'azure_boards', ['name']) ~ ") as projects"
    ) }}
{%- endmacro %}

{% macro no_item_lookups() -%}
    {#- For a model staged per item that reads no lookup: no tenant has a lookups version. -#}
    select null::text as tenant_id, null::text as lookups_version where false
{%- endmacro %}

{% macro clickup_item_loads() -%}
    {#- A task's own rows; when Pulse saw it join or leave a sprint list (its sprint); and, for a
        task linking to others, their rows (a bug's cause is read from the task it links to).

        An incremental build reads this one tenant at a time, mostly for the rows loaded since:
        there the links are read from the linked task, the tasks loaded since (by the load id
        index), then the tasks whose links name one of them (`?`, one probe of the inverted index
        on the links that stg_clickup__work_items creates: `raw_elements`). Read from the linking
        tasks, every task of the tenant was read at every build (0.25 s at 2 years, growing with
        the history). ClickUp's task ids are strings, which `?` finds as an array's elements.
        A build in full reads every tenant's tasks at once, where `?` can only filter a join on
        the tenant (every pair of a tenant's tasks: 115 s at 2 years); it expands the links and
        joins them to the tasks by hash. -#}
    {{ raw_item_loads(source('clickup', 'tasks'), 'clickup', 'id') }}
    union all
    {{ clickup_membership_loads() }}
    union all
    select linking.tenant_id, linking.id::text, to_timestamp(linked._dlt_load_id::double precision), linked._dlt_load_id::text
    {%- if is_incremental() %}
    from ({{ union_tenant_sources(source('clickup', 'tasks'), 'clickup', ['id', '_dlt_load_id']) }}) as linked
    inner join ({{ union_tenant_sources(source('clickup', 'tasks'), 'clickup', ['id', 'linked_task_ids']) }}) as linking
        on linking.tenant_id = linked.tenant_id and linking.linked_task_ids::jsonb ? linked.id::text
    {%- else %}
    from ({{ union_tenant_sources(source('clickup', 'tasks'), 'clickup', ['id', 'linked_task_ids']) }}) as linking
    cross join lateral jsonb_array_elements_text(linking.linked_task_ids::jsonb) as link(task_id)
    inner join ({{ union_tenant_sources(source('clickup', 'tasks'), 'clickup', ['id', '_dlt_load_id']) }}) as linked
        on linked.tenant_id = linking.tenant_id and linked.id::text = link.task_id
    where linking.linked_task_ids is not null
    {%- endif %}
{%- endmacro %}

{% macro no_lookups() -%}
    select null::text as tenant_id, null::text as lookups_version where false
{%- endmacro %}
