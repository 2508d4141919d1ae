{#- Every tracker's field changes (staging contract) in one relation, keyed by work_item_uid;
    sprint changes carry sprint uids ('<source_system>:<sprint_id>') in sprint_from_uid and
    sprint_to_uid. A table built incrementally by changed work items (macros/incremental.sql),
    indexed by item: the per-item models read a few items' changes of it, as it reads a few
    items' changes of the staging tables (staged per item, indexed alike). Only changes of work
    items staging knows are kept (staging's relationships tests hold that for every tool). The
    sprint changes are indexed by sprint too: int_sprint_scope looks up the items that were in
    a running sprint. -#}
{{ per_work_item_table() }}
{{ config(post_hook="{{ ensure_indexes() }}", ensured_indexes=[
    {'columns': ['tenant_id', 'sprint_to_uid'], 'where_set': 'sprint_to_uid'},
    {'columns': ['tenant_id', 'sprint_from_uid'], 'where_set': 'sprint_from_uid'}
]) }}
{%- set trackers = ['jira', 'clickup', 'azure_boards'] -%}
{%- set columns = [
    'tenant_id', 'source_system', 'work_item_id', 'change_id', 'changed_at', 'field', 'from_value',
    'to_value', 'author_email', 'from_status_category', 'to_status_category'
] -%}
with

items as (
    select tenant_id, work_item_uid, source_system, work_item_id, loaded_at
    from {{ ref('int_work_items__unioned') }}
    where true {{ and_tenant() }} {{ and_in_batch() }}
),

unioned as (
    {%- for tracker in trackers %}
    -- each tool's staged changes of the items built (by the staging table's item index)
    select {{ columns | join(', ') }}
    from {{ ref('stg_' ~ tracker ~ '__work_item_changes') }}
    where (tenant_id, work_item_id) in (select tenant_id, work_item_id from items where source_system = '{{ tracker }}')
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

watermarks as (
    {{ load_watermarks() }}
)

select
    unioned.tenant_id,
    items.work_item_uid,
    {%- for column in columns[1:] %}
    unioned.{{ column }},
    {%- endfor %}
    case
        when unioned.field = 'sprint' and unioned.from_value is not null
            then unioned.source_system || ':' || unioned.from_value
    end as sprint_from_uid,
    case
        when unioned.field = 'sprint' and unioned.to_value is not null
            then unioned.source_system || ':' || unioned.to_value
    end as sprint_to_uid,
    least(items.loaded_at, watermarks.loaded_at) as source_loaded_at
from unioned
inner join items
    on items.tenant_id = unioned.tenant_id
    and items.source_system = unioned.source_system
    and items.work_item_id = unioned.work_item_id
inner join watermarks
    on watermarks.tenant_id = unioned.tenant_id
