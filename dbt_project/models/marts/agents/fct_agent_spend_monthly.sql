{#- Agent spend per calendar month (tenant time zone) and team: the runs of each team_id, and of
    no team (team_id null), with their cost. A month's sum of these rows is the tenant's spend;
    numeric sums are exact, so it equals the sum of the runs. The budgets' past months read it
    (fct_budget_utilization) instead of every run.
    Built incrementally by month (macros/incremental_runs.sql): every (tenant, month) a run
    rebuilt in fct_agent_runs left or entered. -#}
{{ per_run_group_table('spend_month') }}

with

runs as (
    select tenant_id, run_month, team_id, cost_usd
    from {{ ref('fct_agent_runs') }}
    where run_month is not null {{ and_tenant() }} {{ and_run_group_in_batch() }}
)

select
    tenant_id,
    run_month as spend_month,
    team_id,
    count(*)::integer as runs,
    coalesce(sum(cost_usd), 0)::numeric(18, 6) as cost_usd
from runs
group by tenant_id, run_month, team_id
