-- Each budget's use per calendar month (tenant time zone): month-to-date spend, the share of
-- the budget used and the projected month-end spend, measured at as_of() (the start of the
-- dbt run, or var as_of). The budget sensor reads the current month's row after each refresh.
--
-- Projection: month-to-date spend + the daily rate of the last 7 days (spend in the 7 × 24 h
-- before as_of, over 7) × the days left in the month. A trailing rate, not the month's average,
-- so that the first hours of a month project from a week of history instead of a handful of
-- runs. A month that is over projects to what it spent. Past months use today's amount (the
-- audit log keeps every change of it).
--
-- Rebuilt whole per tenant partition on every build, not incrementally: every row carries
-- measured_at (= as_of) and past months today's budget amount, so an exact incremental build
-- would rewrite every row anyway; the table is small (budgets × months). What it reads is
-- small too: the past months' spend from fct_agent_spend_monthly (built by month), and the
-- runs of the current month and the last 7 days from fct_agent_runs, by its (tenant_id,
-- run_date) index. A past month (before the current one in the tenant's time zone) ended
-- before as_of, so all its runs count; the current month's are read one by one, up to as_of.

with

tenants as (
    select slug as tenant_id, timezone
    from {{ source('control', 'tenants') }}
    {% if partition_tenant() is not none %}where slug = '{{ partition_tenant() }}'{% endif %}
),

budgets as (
    select budgets.budget_id, budgets.tenant_id, budgets.team_id, budgets.amount_usd, teams.name as team_name
    from {{ source('control', 'budgets') }} as budgets
    left join {{ source('control', 'teams') }} as teams
        on budgets.team_id = teams.team_id
    {{ tenant_filter('budgets') }}
),

now_local as (
    select
        tenants.tenant_id,
        tenants.timezone,
        date_trunc('month', {{ as_of() }} at time zone tenants.timezone)::date as current_month,
        -- the first local day a run of the current month or the last 7 × 24 h can be on
        least(
            date_trunc('month', {{ as_of() }} at time zone tenants.timezone)::date,
            (({{ as_of() }} - interval '7 days') at time zone tenants.timezone)::date
        ) as recent_from
    from tenants
),

-- the runs of the current month and the last 7 days, up to as_of: each tenant's read from its
-- recent_from on by the (tenant_id, run_date) index
recent_runs as (
    select
        runs.tenant_id, runs.team_id, runs.run_month, runs.active_at, runs.cost_usd,
        runs.run_month = now_local.current_month as is_current_month
    from now_local
    {{ lateral_index_read(
        ref('fct_agent_runs'), 'runs',
        match='runs.tenant_id = now_local.tenant_id and runs.run_date >= now_local.recent_from',
        columns='runs.tenant_id, runs.team_id, runs.run_month,'
            ~ ' coalesce(runs.started_at, runs.updated_at) as active_at, runs.cost_usd'
    ) }}
    where runs.active_at <= {{ as_of() }}
),

past_spend as (
    select spend.tenant_id, spend.team_id, spend.spend_month as run_month, spend.cost_usd
    from {{ ref('fct_agent_spend_monthly') }} as spend
    inner join now_local
        on now_local.tenant_id = spend.tenant_id
    where spend.spend_month < now_local.current_month {{ and_tenant('spend') }}
),

months as (
    select tenant_id, current_month as period_start from now_local
    union
    select distinct tenant_id, run_month from past_spend
),

periods as (
    select
        budgets.budget_id,
        budgets.tenant_id,
        budgets.team_id,
        budgets.team_name,
        budgets.amount_usd,
        months.period_start,
        now_local.timezone,
        months.period_start = now_local.current_month as is_current_period,
        months.period_start::timestamp at time zone now_local.timezone as period_starts_at,
        (months.period_start + interval '1 month')::timestamp at time zone now_local.timezone as period_ends_at
    from budgets
    inner join now_local
        on budgets.tenant_id = now_local.tenant_id
    inner join months
        on budgets.tenant_id = months.tenant_id
        and months.period_start <= now_local.current_month
),

-- Spend summed per team first (numeric sums are exact, so a sum of team sums is the sum of
-- the runs): each budget period then adds up a handful of rows instead of every run.
monthly_spend as (
    select tenant_id, team_id, run_month, cost_usd from past_spend
    union all
    select tenant_id, team_id, run_month, sum(cost_usd)
    from recent_runs
    where is_current_month
    group by tenant_id, team_id, run_month
),

trailing_spend as (
    select tenant_id, team_id, sum(cost_usd) as cost_usd
    from recent_runs
    where active_at > {{ as_of() }} - interval '7 days'
    group by tenant_id, team_id
),

spend as (
    select
        periods.budget_id,
        periods.period_start,
        coalesce(sum(monthly_spend.cost_usd), 0) as month_to_date
    from periods
    left join monthly_spend
        on periods.tenant_id = monthly_spend.tenant_id
        and periods.period_start = monthly_spend.run_month
        and (periods.team_id is null or periods.team_id = monthly_spend.team_id)
    group by periods.budget_id, periods.period_start
),

trailing_by_budget as (
    select
        budgets.budget_id,
        coalesce(sum(trailing_spend.cost_usd), 0) as trailing_7d
    from budgets
    left join trailing_spend
        on budgets.tenant_id = trailing_spend.tenant_id
        and (budgets.team_id is null or budgets.team_id = trailing_spend.team_id)
    group by budgets.budget_id
),

projected as (
    select
        periods.*,
        spend.month_to_date,
        trailing_by_budget.trailing_7d,
        case
            when periods.is_current_period then
                spend.month_to_date + trailing_by_budget.trailing_7d / 7.0
                    * greatest(extract(epoch from periods.period_ends_at - {{ as_of() }}), 0) / 86400.0
            else spend.month_to_date
        end as projected
    from periods
    inner join spend
        on periods.budget_id = spend.budget_id
        and periods.period_start = spend.period_start
    inner join trailing_by_budget
        on periods.budget_id = trailing_by_budget.budget_id
)

select
    budget_id,
    tenant_id,
    case when team_id is null then 'organization' else 'team' end as scope,
    team_id,
    team_name,
    period_start,
    (period_ends_at at time zone timezone)::date - 1 as period_end,
    is_current_period,
    amount_usd::numeric(14, 2) as budget_amount_usd,
    round(month_to_date, 6)::numeric(18, 6) as month_to_date_spend_usd,
    round(100 * month_to_date / amount_usd, 2)::numeric(10, 2) as share_used_pct,
    case when is_current_period then round(trailing_7d, 6) end::numeric(18, 6) as trailing_7d_spend_usd,
    round(projected, 6)::numeric(18, 6) as projected_spend_usd,
    round(100 * projected / amount_usd, 2)::numeric(10, 2) as projected_share_pct,
    {{ as_of() }} as measured_at
from projected
