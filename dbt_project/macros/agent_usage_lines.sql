{% macro agent_usage_lines(batch=false) -%}
{#- int_agent_usage_lines' rows (see its model); `batch`: only the runs of a per-run model's
    batch (and_run_in_batch, macros/incremental_runs.sql). -#}
with

reported_runs as (
    {% for source_type in ['agent_platform', 'agent_import', 'agent_mcp'] %}
    select
        tenant_id, agent_run_id, model_name, coalesce(started_at, updated_at) as used_at,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reported_cost_usd
    from {% if batch %}{{ runs_of_batch(source_type) }}{% else %}{{ ref('stg_' ~ source_type ~ '__runs') }}{% endif %} as {{ source_type }}_runs
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

claude_code_requests as (
    select
        tenant_id,
        'claude_code:' || coalesce('prompt:' || prompt_id, 'session:' || session_id) as agent_run_id,
        model_name,
        event_at as used_at,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
        cost_usd as reported_cost_usd
    from {{ ref('stg_claude_code__api_requests') }}
    where (prompt_id is not null or session_id is not null)
    {%- if partition_tenant() is not none %}
        and tenant_id = '{{ partition_tenant() }}'
    {%- endif %}
),

lines as (
    select * from (
        select * from reported_runs
        union all
        select * from claude_code_requests
    ) as every_line
    {%- if batch %}
    -- only the batch's runs (before pricing: each line is priced by a lookup of its own)
    where true {{ and_run_in_batch('every_line') }}
    {%- endif %}
),

priced as (
    select
        lines.*,
        prices.model_name as priced_as,
        prices.effective_from as price_effective_from,
        round(lines.input_tokens * prices.input_usd_per_mtok / 1000000.0, 6) as input_cost_usd,
        round(lines.output_tokens * prices.output_usd_per_mtok / 1000000.0, 6) as output_cost_usd,
        round(lines.cache_read_tokens * prices.cache_read_usd_per_mtok / 1000000.0, 6) as cache_read_cost_usd,
        round(lines.cache_write_tokens * prices.cache_write_usd_per_mtok / 1000000.0, 6) as cache_write_cost_usd
    from lines
    left join lateral (
        select *
        from {{ ref('model_prices') }} as candidate
        where starts_with(lines.model_name, candidate.model_name)
            and candidate.effective_from <= (lines.used_at at time zone 'UTC')::date
        order by length(candidate.model_name) desc, candidate.effective_from desc
        limit 1
    ) as prices on true
)

select
    *,
    input_cost_usd + output_cost_usd + cache_read_cost_usd + cache_write_cost_usd as computed_cost_usd,
    coalesce(
        reported_cost_usd,
        input_cost_usd + output_cost_usd + cache_read_cost_usd + cache_write_cost_usd
    ) as cost_usd
from priced
{%- endmacro %}
