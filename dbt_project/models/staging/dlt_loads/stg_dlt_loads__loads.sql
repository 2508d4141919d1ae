{#- Every dlt load of every tenant and pulled source, from each raw dataset's _dlt_loads. The
    source types are those with a dlt connector (connectors/<source>); a tenant without a
    dataset of a type simply has no rows for it. -#}
{%- set source_types = ['github', 'jira', 'clickup', 'azure_boards', 'azure_devops_git', 'agent_platform'] -%}

with

source as (
    {%- for source_type in source_types %}
    select
        loads.tenant_id,
        '{{ source_type }}'::text as source_type,
        loads.load_id::text as load_id,
        loads.status::integer as status,
        loads.inserted_at::timestamptz as inserted_at
    from (
        {{ union_tenant_sources(source('dlt_loads', source_type), source_type, ['load_id', 'status', 'inserted_at']) }}
    ) as loads
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

renamed as (
    select
        tenant_id,
        source_type,
        load_id,
        status as load_status,
        status = 0 as is_loaded,
        inserted_at as loaded_at
    from source
)

select * from renamed
