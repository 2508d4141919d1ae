{#- The three run sources (agent platform, history import, MCP reports) share one raw shape;
    their staging models differ only in the source they read and how it records when a row
    was loaded: dlt's load id (agent platform), imported_at (history import), reported_at (MCP). -#}
{% macro stage_agent_runs(source_relation, source_type) -%}
{%- set load_column, loaded_at = {
    'agent_platform': ('_dlt_load_id', 'to_timestamp(_dlt_load_id::double precision)'),
    'agent_import': ('imported_at', 'imported_at::timestamptz'),
    'agent_mcp': ('reported_at', 'reported_at::timestamptz'),
}[source_type] -%}
with

source as (
    {{ union_tenant_sources(source_relation, source_type, [
        'run_id', 'agent_type', 'user_email', 'team', 'status', 'model_name', 'model_version',
        'started_at', 'ended_at', 'updated_at', 'input_tokens', 'output_tokens',
        'cache_read_tokens', 'cache_write_tokens', 'cost_usd', 'error_category', 'error_message',
        load_column
    ]) }}
),

renamed as (
    select
        tenant_id,
        '{{ source_type }}:' || run_id::text as agent_run_id,
        '{{ source_type }}'::text as origin,
        agent_type::text as agent_type,
        lower(user_email::text) as user_email,
        team::text as team_name,
        lower(status::text) as status,
        model_name::text as model_name,
        model_version::text as model_version,
        started_at::timestamptz as started_at,
        ended_at::timestamptz as ended_at,
        updated_at::timestamptz as updated_at,
        coalesce(input_tokens::bigint, 0) as input_tokens,
        coalesce(output_tokens::bigint, 0) as output_tokens,
        coalesce(cache_read_tokens::bigint, 0) as cache_read_tokens,
        coalesce(cache_write_tokens::bigint, 0) as cache_write_tokens,
        cost_usd::numeric as reported_cost_usd,
        error_category::text as error_category,
        error_message::text as error_message,
        {{ loaded_at }} as loaded_at
        {%- if source_type == 'agent_platform' %},
        -- as stored: int_agent_runs reads a day's runs through the raw tables' index on it
        _dlt_load_id as load_id
        {%- endif %}
    from source
)

select * from renamed
{%- endmacro %}
