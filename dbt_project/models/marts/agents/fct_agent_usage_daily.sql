{#- Agent usage per day (tenant time zone), team, person, agent type, model and status.
    Counts let any roll-up recompute the success rate (succeeded / finished); durations are
    those of finished runs, with continuous (interpolated) percentiles.
    Built incrementally by day (macros/incremental_runs.sql): every (tenant, day) a run
    rebuilt in fct_agent_runs left or entered, and the days naming a team renamed since. -#}
{{ per_run_group_table('usage_date', renames_teams=true) }}

with

teams as (
    select team_id, name from {{ source('control', 'teams') }}
),

-- A matched team is named as control.teams names it, so 'Platform' and 'platform' are one team.
runs as (
    select runs.*, coalesce(teams.name, runs.team_name) as team
    from {{ ref('fct_agent_runs') }} as runs
    left join teams
        on runs.team_id = teams.team_id
    where true {{ and_tenant('runs') }} {{ and_run_group_in_batch('runs') }}
),

daily as (
    select
        tenant_id,
        run_date as usage_date,
        team as team_name,
        max(team_id) as team_id,
        user_email,
        agent_type,
        model_name,
        status,
        count(*)::integer as runs,
        count(*) filter (where is_finished)::integer as finished_runs,
        count(*) filter (where is_succeeded)::integer as succeeded_runs,
        count(*) filter (where is_running)::integer as running_runs,
        count(*) filter (where cost_usd is null)::integer as unpriced_runs,
        sum(input_tokens)::bigint as input_tokens,
        sum(output_tokens)::bigint as output_tokens,
        sum(cache_read_tokens)::bigint as cache_read_tokens,
        sum(cache_write_tokens)::bigint as cache_write_tokens,
        sum(total_tokens)::bigint as total_tokens,
        coalesce(sum(input_cost_usd), 0)::numeric(18, 6) as input_cost_usd,
        coalesce(sum(output_cost_usd), 0)::numeric(18, 6) as output_cost_usd,
        coalesce(sum(cache_cost_usd), 0)::numeric(18, 6) as cache_cost_usd,
        coalesce(sum(cost_usd), 0)::numeric(18, 6) as cost_usd,
        avg(duration_seconds) filter (where is_finished) as mean_duration,
        percentile_cont(0.5) within group (order by duration_seconds)
            filter (where is_finished and duration_seconds is not null) as p50_duration,
        percentile_cont(0.9) within group (order by duration_seconds)
            filter (where is_finished and duration_seconds is not null) as p90_duration
    from runs
    where run_date is not null
    group by tenant_id, run_date, team, user_email, agent_type, model_name, status
)

select
    tenant_id,
    usage_date,
    team_name,
    team_id,
    user_email,
    agent_type,
    model_name,
    status,
    runs,
    finished_runs,
    succeeded_runs,
    running_runs,
    unpriced_runs,
    input_tokens,
    output_tokens,
    cache_read_tokens,
    cache_write_tokens,
    total_tokens,
    input_cost_usd,
    output_cost_usd,
    cache_cost_usd,
    cost_usd,
    round(succeeded_runs::numeric / nullif(finished_runs, 0), 4)::numeric(6, 4) as success_rate,
    round(mean_duration, 3)::numeric(14, 3) as mean_duration_seconds,
    round(p50_duration::numeric, 3)::numeric(14, 3) as p50_duration_seconds,
    round(p90_duration::numeric, 3)::numeric(14, 3) as p90_duration_seconds
from daily
