-- Each person's rank within each team they ran agents for, per calendar month (tenant time
-- zone), by runs, tokens and cost: "you are the 3rd most active on your team this month".
-- Ties share a rank and the next rank is skipped (1, 2, 2, 4), so equal work ranks equally.
-- Runs without a team are in no team ranking (they count in the tenant's top users).
-- Built incrementally by month (macros/incremental_runs.sql): every (tenant, month) a run
-- rebuilt in fct_agent_runs left or entered, and the months naming a team renamed since.
{{ per_run_group_table('usage_month', renames_teams=true) }}

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

per_person as (
    select
        tenant_id,
        run_month as usage_month,
        team as team_name,
        max(team_id) as team_id,
        user_email,
        count(*)::integer as runs,
        sum(total_tokens)::bigint as total_tokens,
        coalesce(sum(cost_usd), 0)::numeric(18, 6) as cost_usd
    from runs
    where team is not null and user_email is not null and run_month is not null
    group by tenant_id, run_month, team, user_email
)

select
    tenant_id,
    usage_month,
    team_name,
    team_id,
    user_email,
    runs,
    total_tokens,
    cost_usd,
    (count(*) over team_month)::integer as team_people,
    (rank() over (partition by tenant_id, usage_month, team_name order by runs desc))::integer as runs_rank,
    (rank() over (partition by tenant_id, usage_month, team_name order by total_tokens desc))::integer
        as tokens_rank,
    (rank() over (partition by tenant_id, usage_month, team_name order by cost_usd desc))::integer as cost_rank
from per_person
window team_month as (partition by tenant_id, usage_month, team_name)
