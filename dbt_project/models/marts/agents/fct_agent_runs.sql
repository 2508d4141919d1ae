{#- One row per agent run of the tenant partition, with what it consumed and cost, the team it
    is attributed to and its day and month in the tenant's time zone (control.tenants.timezone),
    the calendar every usage mart and budget of the tenant follows.
    Built incrementally by changed runs (macros/incremental_runs.sql): the runs int_agent_runs
    rebuilt since, and those whose team or local day control now gives otherwise; it records
    the days and months those runs left and entered for the usage aggregates. Indexed by day
    too: the budgets read their current month and last week of runs by it, and the health mart
    its days since a tenant's reads_from. -#}
{{ per_agent_run_table(
    loaded='fct_agent_runs_loaded', also='fct_agent_runs_also', logs_changes=true,
    versions='fct_agent_runs_versions', primary_key=true, watermarks='fct_agent_runs_watermarks'
) }}
{{ config(post_hook="{{ ensure_indexes() }}", ensured_indexes=[{'columns': ['tenant_id', 'run_date']}]) }}

with

runs as (
    select * from {{ ref('int_agent_runs') }}
    where true {{ and_tenant() }} {{ and_run_in_batch() }}
),

tenants as (
    select slug as tenant_id, timezone
    from {{ source('control', 'tenants') }}
),

teams as (
    select tenant_id, team_id, slug, name
    from {{ source('control', 'teams') }}
),

final as (
    select
        runs.agent_run_id,
        runs.tenant_id,
        runs.origin,
        runs.agent_type,
        runs.user_email,
        runs.team_name,
        matched_team.team_id,
        runs.status,
        runs.is_running,
        runs.is_finished,
        runs.status = 'succeeded' as is_succeeded,
        runs.model_name,
        runs.model_version,
        runs.started_at,
        runs.ended_at,
        (coalesce(runs.started_at, runs.updated_at) at time zone tenants.timezone)::date as run_date,
        date_trunc('month', coalesce(runs.started_at, runs.updated_at) at time zone tenants.timezone)::date
            as run_month,
        runs.duration_seconds::numeric(14, 3) as duration_seconds,
        runs.input_tokens,
        runs.output_tokens,
        runs.cache_read_tokens,
        runs.cache_write_tokens,
        -- token kinds are disjoint (input excludes cache reads and writes): each token once
        (runs.input_tokens + runs.output_tokens + runs.cache_read_tokens + runs.cache_write_tokens)::bigint
            as total_tokens,
        runs.input_cost_usd::numeric(18, 6) as input_cost_usd,
        runs.output_cost_usd::numeric(18, 6) as output_cost_usd,
        runs.cache_read_cost_usd::numeric(18, 6) as cache_read_cost_usd,
        runs.cache_write_cost_usd::numeric(18, 6) as cache_write_cost_usd,
        (runs.cache_read_cost_usd + runs.cache_write_cost_usd)::numeric(18, 6) as cache_cost_usd,
        runs.cost_usd::numeric(18, 6) as cost_usd,
        runs.cost_source,
        runs.error_category,
        runs.error_message,
        runs.updated_at,
        runs.source_loaded_at
    from runs
    inner join tenants
        on runs.tenant_id = tenants.tenant_id
    left join lateral (
        {{ matched_team('teams', 'runs') }}
    ) as matched_team on true
)

select * from final
