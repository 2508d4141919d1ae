{#- Every tracker's field changes (staging contract) in one relation, keyed by work_item_uid;
    sprint changes carry sprint uids ('<source_system>:<sprint_id>') in sprint_from_uid and
    sprint_to_uid. A table built incrementally by changed work items (macros/incremental.sql),
    indexed by item: the per-item models read a few items' changes of it. Only changes of work
    items staging knows are kept (staging's relationships tests hold that for every tool). -#}
{{ per_work_item_table() }}
{%- set trackers = ['jira', 'clickup', 'azure_boards'] -%}
{%- set columns = [
    'tenant_id', 'source_system', 'work_item_id', 'change_id', 'changed_at', 'field', 'from_value',
    'to_value', 'author_email', 'from_status_category', 'to_status_category'
] -%}
with

unioned as (
    {%- for tracker in trackers %}
    select {{ columns | join(', ') }}
    from {{ ref('stg_' ~ tracker ~ '__work_item_changes') }}
    {{ tenant_filter() }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

watermarks as (
    {{ load_watermarks() }}
),

items as (
    select tenant_id, work_item_uid, loaded_at
    from {{ ref('int_work_items__unioned') }}
    where true {{ and_tenant() }} {{ and_in_batch() }}
)

select
    unioned.tenant_id,
    items.work_item_uid,
    {{ columns[1:] | join(',\n    ') }},
    case when field = 'sprint' and from_value is not null then source_system || ':' || from_value end
        as sprint_from_uid,
    case when field = 'sprint' and to_value is not null then source_system || ':' || to_value end
        as sprint_to_uid,
    least(items.loaded_at, watermarks.loaded_at) as source_loaded_at
from unioned
inner join items
    on items.tenant_id = unioned.tenant_id
    and items.work_item_uid = unioned.source_system || ':' || unioned.work_item_id
inner join watermarks
    on watermarks.tenant_id = unioned.tenant_id
