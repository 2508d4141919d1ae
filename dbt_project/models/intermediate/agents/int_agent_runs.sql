{#- One row per agent run from every path (agent platform API, history import, MCP reports,
    Claude Code telemetry), with tokens and cost.
    Built incrementally by changed runs (macros/incremental_runs.sql): the runs loaded since
    the last build (a Claude Code prompt when any of its events arrived), and every run of a
    tenant when model_prices changed. -#}
{{ per_agent_run_table(
    loaded='agent_runs_loaded', also='agent_runs_also', versions='int_agent_runs_versions',
    watermarks='agent_runs_watermarks', loaded_since='agent_runs_loaded_since',
    raw_load_ids=[('agent_platform', 'runs')]
) }}
-- depends_on: {{ ref('stg_claude_code__events') }}
-- depends_on: {{ ref('stg_claude_code__api_requests') }}

with

watermarks as (
    {{ run_load_watermarks('agent_runs_loaded') }}
),

runs as (
    {% for source_type in ['agent_platform', 'agent_import', 'agent_mcp'] %}
    select
        tenant_id, agent_run_id, origin, agent_type, user_email, team_name, status, model_name,
        model_version, started_at, ended_at, updated_at, error_category, error_message, loaded_at
    from {{ runs_of_batch(source_type) }} as {{ source_type }}_runs
    where true {{ and_tenant() }} {{ and_run_in_batch() }}
    union all
    {% endfor %}
    select
        tenant_id, agent_run_id, origin, agent_type, user_email, team_name, status, model_name,
        model_version, started_at, ended_at, updated_at, error_category, error_message, loaded_at
    from {{ ref('int_claude_code_runs') }}
    where true {{ and_tenant() }} {{ and_run_in_batch() }}
),

usage as (
    select
        tenant_id,
        agent_run_id,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(cache_read_tokens) as cache_read_tokens,
        sum(cache_write_tokens) as cache_write_tokens,
        sum(input_cost_usd) as input_cost_usd,
        sum(output_cost_usd) as output_cost_usd,
        sum(cache_read_cost_usd) as cache_read_cost_usd,
        sum(cache_write_cost_usd) as cache_write_cost_usd,
        sum(cost_usd) as cost_usd,
        count(*) as lines,
        count(reported_cost_usd) as reported_lines,
        count(cost_usd) as costed_lines
    {%- if is_incremental() %}
    -- int_agent_usage_lines' rows of the batch's runs, filtered before they are priced (the
    -- view prices every line before a filter on it applies)
    from ({{ agent_usage_lines(batch=true) }}) as lines
    {%- else %}
    from {{ ref('int_agent_usage_lines') }} as lines
    {%- endif %}
    where true {{ and_tenant() }}
    group by tenant_id, agent_run_id
)

select
    runs.tenant_id,
    runs.agent_run_id,
    runs.origin,
    runs.agent_type,
    runs.user_email,
    runs.team_name,
    runs.status,
    runs.status in ('succeeded', 'failed', 'cancelled') as is_finished,
    runs.status in ('queued', 'running') as is_running,
    runs.model_name,
    runs.model_version,
    runs.started_at,
    runs.ended_at,
    round(extract(epoch from runs.ended_at - runs.started_at)::numeric, 3) as duration_seconds,
    coalesce(usage.input_tokens, 0)::bigint as input_tokens,
    coalesce(usage.output_tokens, 0)::bigint as output_tokens,
    coalesce(usage.cache_read_tokens, 0)::bigint as cache_read_tokens,
    coalesce(usage.cache_write_tokens, 0)::bigint as cache_write_tokens,
    round(usage.input_cost_usd, 6) as input_cost_usd,
    round(usage.output_cost_usd, 6) as output_cost_usd,
    round(usage.cache_read_cost_usd, 6) as cache_read_cost_usd,
    round(usage.cache_write_cost_usd, 6) as cache_write_cost_usd,
    -- null when some part of the run has neither a reported cost nor a known price
    case when usage.costed_lines = usage.lines then round(usage.cost_usd, 6) end as cost_usd,
    case
        when usage.lines is null then 'none'
        when usage.costed_lines < usage.lines then 'unpriced'
        when usage.reported_lines = usage.lines then 'reported'
        when usage.reported_lines = 0 then 'computed'
        else 'mixed'
    end as cost_source,
    runs.error_category,
    runs.error_message,
    runs.updated_at,
    least(runs.loaded_at, watermarks.loaded_at) as source_loaded_at,
    {{ prices_version() }} as prices_version
from runs
left join watermarks
    on runs.tenant_id = watermarks.tenant_id
left join usage
    on runs.tenant_id = usage.tenant_id
    and runs.agent_run_id = usage.agent_run_id
