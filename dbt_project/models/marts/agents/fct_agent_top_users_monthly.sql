-- The top 10 people of each tenant per calendar month (tenant time zone), by runs, by tokens
-- and by cost: one row per measure and person. Ties share a rank (1, 2, 2, 4), and everyone
-- tied at 10th place is listed, so a measure can list more than 10 people.
-- Built incrementally by month (macros/incremental_runs.sql): every (tenant, month) a run
-- rebuilt in fct_agent_runs left or entered.
{{ per_run_group_table('usage_month') }}

with

runs as (
    select * from {{ ref('fct_agent_runs') }}
    where true {{ and_tenant() }} {{ and_run_group_in_batch() }}
),

per_person as (
    select
        tenant_id,
        run_month as usage_month,
        user_email,
        count(*)::integer as runs,
        sum(total_tokens)::bigint as total_tokens,
        coalesce(sum(cost_usd), 0)::numeric(18, 6) as cost_usd
    from runs
    where user_email is not null and run_month is not null
    group by tenant_id, run_month, user_email
),

ranked as (
    select
        per_person.*,
        measures.measure,
        rank() over (
            partition by tenant_id, usage_month, measures.measure
            order by case measures.measure
                when 'runs' then runs::numeric
                when 'tokens' then total_tokens::numeric
                else cost_usd
            end desc
        ) as measure_rank
    from per_person
    cross join (values ('runs'), ('tokens'), ('cost')) as measures (measure)
)

select
    tenant_id,
    usage_month,
    measure,
    measure_rank::integer as measure_rank,
    user_email,
    runs,
    total_tokens,
    cost_usd
from ranked
where measure_rank <= 10
