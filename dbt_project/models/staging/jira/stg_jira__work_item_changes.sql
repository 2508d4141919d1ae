{#- One row per change of status, sprint, story points or assignee, from Jira's changelog.

    The connector marked each changelog item with the canonical field it changed (status,
    assignee, or a mapped custom field). Jira's Sprint field is a list of sprint ids, and
    Jira keeps a closed sprint in it when an unfinished issue is carried over: each change is
    exploded into the sprints that entered the list (from_value null) and those that left it
    (to_value null), so a move A → B is two rows and a carry-over only the entry into B.
    Account ids become emails through the users list.

    A table staged per issue (macros/incremental.sql): a run restages the issues with
    changelog rows loaded since it last ran, and a tenant whose users or statuses changed. -#}
{%- set loaded, lookups = 'jira_change_loads', 'jira_change_lookups' -%}
{{ per_source_item_table(loaded, lookups, [('jira', 'issue_changes', 'issue_id')]) }}
with

changes as (
    select * from (
        {{ union_tenant_sources(source('jira', 'issue_changes'), 'jira', [
            'history_id', 'item_index', 'issue_id', 'changed_at', 'author_account_id', 'author_email',
            'canonical_field', 'from_value', 'from_string', 'to_value', 'to_string'
        ]) }}
    ) as raw_changes
    where true {{ and_source_item_in_batch('issue_id') }}
),

statuses as (
    {{ union_tenant_sources(source('jira', 'statuses'), 'jira', ['id', 'category_key']) }}
),

users as (
    select tenant_id, user_id, email from {{ ref('stg_jira__users') }}
),

base as (
    select
        changes.tenant_id,
        changes.issue_id::text as work_item_id,
        changes.history_id::text || ':' || changes.item_index::text as change_id,
        changes.changed_at::timestamptz as changed_at,
        changes.canonical_field::text as field,
        changes.from_value::text as from_id,
        changes.from_string::text as from_string,
        changes.to_value::text as to_id,
        changes.to_string::text as to_string,
        coalesce(lower(nullif(changes.author_email::text, '')), author.email) as author_email
    from changes
    left join users as author
        on author.tenant_id = changes.tenant_id and author.user_id = changes.author_account_id::text
    where changes.canonical_field in ('status', 'sprint', 'story_points', 'assignee')
),

status_changes as (
    select
        base.tenant_id,
        base.work_item_id,
        base.change_id,
        base.changed_at,
        'status'::text as field,
        base.from_string as from_value,
        base.to_string as to_value,
        base.author_email,
        case from_status.category_key::text
            when 'done' then 'done' when 'indeterminate' then 'in_progress' when 'new' then 'todo'
        end as from_status_category,
        case to_status.category_key::text
            when 'done' then 'done' when 'indeterminate' then 'in_progress' when 'new' then 'todo'
        end as to_status_category
    from base
    left join statuses as from_status
        on from_status.tenant_id = base.tenant_id and from_status.id::text = base.from_id
    left join statuses as to_status
        on to_status.tenant_id = base.tenant_id and to_status.id::text = base.to_id
    where base.field = 'status'
),

sprint_lists as (
    select
        base.*,
        string_to_array(regexp_replace(coalesce(base.from_id, ''), '\s', '', 'g'), ',') as before_ids,
        string_to_array(regexp_replace(coalesce(base.to_id, ''), '\s', '', 'g'), ',') as after_ids
    from base
    where base.field = 'sprint'
),

sprint_changes as (
    select
        lists.tenant_id,
        lists.work_item_id,
        lists.change_id || ':+' || entered.sprint_id as change_id,
        lists.changed_at,
        'sprint'::text as field,
        null::text as from_value,
        entered.sprint_id as to_value,
        lists.author_email,
        null::text as from_status_category,
        null::text as to_status_category
    from sprint_lists as lists
    cross join lateral (
        select id from unnest(lists.after_ids) as after_list(id)
        except
        select id from unnest(lists.before_ids) as before_list(id)
    ) as entered (sprint_id)
    where entered.sprint_id <> ''

    union all

    select
        lists.tenant_id,
        lists.work_item_id,
        lists.change_id || ':-' || departed.sprint_id as change_id,
        lists.changed_at,
        'sprint'::text as field,
        departed.sprint_id as from_value,
        null::text as to_value,
        lists.author_email,
        null::text as from_status_category,
        null::text as to_status_category
    from sprint_lists as lists
    cross join lateral (
        select id from unnest(lists.before_ids) as before_list(id)
        except
        select id from unnest(lists.after_ids) as after_list(id)
    ) as departed (sprint_id)
    where departed.sprint_id <> ''
),

point_changes as (
    select
        base.tenant_id,
        base.work_item_id,
        base.change_id,
        base.changed_at,
        'story_points'::text as field,
        case
            when trim(base.from_string) ~ '^-?\d+(\.\d+)?$' then trim_scale(trim(base.from_string)::numeric)::text
        end as from_value,
        case
            when trim(base.to_string) ~ '^-?\d+(\.\d+)?$' then trim_scale(trim(base.to_string)::numeric)::text
        end as to_value,
        base.author_email,
        null::text as from_status_category,
        null::text as to_status_category
    from base
    where base.field = 'story_points'
),

assignee_changes as (
    select
        base.tenant_id,
        base.work_item_id,
        base.change_id,
        base.changed_at,
        'assignee'::text as field,
        from_user.email as from_value,
        to_user.email as to_value,
        base.author_email,
        null::text as from_status_category,
        null::text as to_status_category
    from base
    left join users as from_user
        on from_user.tenant_id = base.tenant_id and from_user.user_id = base.from_id
    left join users as to_user
        on to_user.tenant_id = base.tenant_id and to_user.user_id = base.to_id
    where base.field = 'assignee'
),

unioned as (
    select * from status_changes
    union all
    select * from sprint_changes
    union all
    select * from point_changes
    union all
    select * from assignee_changes
)

select
    unioned.tenant_id,
    'jira'::text as source_system,
    unioned.work_item_id,
    unioned.change_id,
    unioned.changed_at,
    unioned.field,
    unioned.from_value,
    unioned.to_value,
    unioned.author_email,
    unioned.from_status_category,
    unioned.to_status_category,
    loads.loaded_at,
    lookups.lookups_version
from unioned
{{ join_staged_stamps('unioned', 'unioned.work_item_id', loaded, lookups) }}
