{#- Every tracker's field changes (staging contract) in one relation, keyed by work_item_uid;
    sprint changes carry sprint uids ('<source_system>:<sprint_id>') in sprint_from_uid and
    sprint_to_uid. A view: it never filters by tenant. -#}
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
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    tenant_id,
    source_system || ':' || work_item_id as work_item_uid,
    {{ columns[1:] | join(',\n    ') }},
    case when field = 'sprint' and from_value is not null then source_system || ':' || from_value end
        as sprint_from_uid,
    case when field = 'sprint' and to_value is not null then source_system || ':' || to_value end
        as sprint_to_uid
from unioned
