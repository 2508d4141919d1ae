{#- Every tracker's sprints (staging contract) in one relation, keyed by
    sprint_uid = '<source_system>:<sprint_id>'. A view: it never filters by tenant. -#}
{%- set trackers = ['jira', 'clickup', 'azure_boards'] -%}
{%- set columns = [
    'tenant_id', 'source_system', 'sprint_id', 'sprint_name', 'project_key', 'board_id', 'state',
    'start_at', 'end_at', 'completed_at'
] -%}
with

unioned as (
    {%- for tracker in trackers %}
    select {{ columns | join(', ') }}
    from {{ ref('stg_' ~ tracker ~ '__sprints') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    tenant_id,
    source_system || ':' || sprint_id as sprint_uid,
    {{ columns[1:] | join(',\n    ') }}
from unioned
