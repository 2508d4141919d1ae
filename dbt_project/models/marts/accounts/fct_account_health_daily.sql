{#- Account health: one score from 0 to 100 per tenant and day, from six weighted factors, each
    scored 0-100 over the period that ends that day (var health_period_days, 14: the day and the
    13 before it) against the period just before it. docs/health.md explains every rule.

    * agent_runs_trend, active_users_trend: 100 × this period ÷ the previous one, at most 100
      (growing or stable = 100, halved = 50); none before and some now = 100; none in either
      period = 0 once the tenant has had runs (went quiet), no data before its first run;
    * agent_success_rate: succeeded ÷ finished runs started in the period × 100;
    * budget_adherence: the organisation budget's projected month-end spend at the end of the
      day (month-to-date + the last 7 days' daily rate × the days left in the month, the rule of
      fct_budget_utilization on whole days): at or under budget = 100, else 100 minus the
      overshoot in percentage points, at least 0; no organisation budget, no data;
    * dmt_compliance_trend: the DMT compliance rate of the items done in the period, minus the
      points it dropped since the previous period (a rise is not a bonus); nothing done, no data;
    * data_freshness: hours from the tenant's newest completed dlt load to the end of the day
      (to as_of() for the current day): 100 up to `fresh` hours, 0 from `stale`, linear between.

    The health score is the weighted mean (var health_weights) of the factors that have data, the
    weights renormalized over them, rounded to a whole number (halves up); bands red 0-50,
    amber 51-75, green 76-100. Days run from the tenant's first data to as_of()'s day in the
    tenant's time zone; data after as_of() is left out, so a past as_of rebuilds a past state.
    Past days are measured at their end (measured_at), the current day at as_of().

    Incremental (macros/incremental_health.sql): per tenant, only the days from the earliest
    one whose data changed since the last build (at the latest the day that was current then)
    are deleted and rebuilt; a tenant is rebuilt whole when it is new, its settings_version or
    budget changed, as_of moved back, or var rebuild=true. -#}

{{ config(
    incremental_strategy='append',
    pre_hook="{{ replace_changed_health_days() }}",
    post_hook=[
        "drop policy if exists account_health_scope on {{ this }};
         create policy account_health_scope on {{ this }} as restrictive for select to pulse_reader
             using (current_setting('pulse.scope', true) = 'account_health')"
    ]
) }}

{%- set factors = [
    'agent_runs_trend', 'active_users_trend', 'agent_success_rate',
    'budget_adherence', 'dmt_compliance_trend', 'data_freshness'
] -%}
{%- set weights = var('health_weights') -%}
{%- for name in weights if name not in factors -%}
    {{ exceptions.raise_compiler_error("var health_weights has an unknown factor '" ~ name ~ "'; the factors are " ~ factors | join(', ')) }}
{%- endfor -%}
{%- for factor in factors -%}
    {%- if weights[factor] is not number or weights[factor] < 0 -%}
        {{ exceptions.raise_compiler_error("var health_weights." ~ factor ~ " must be a number of at least 0, not '" ~ weights[factor] ~ "'; give all six weights (" ~ factors | join(', ') ~ ")") }}
    {%- endif -%}
{%- endfor -%}
{%- set period = var('health_period_days') -%}
{%- if period is not number or period < 1 or period != period | int -%}
    {{ exceptions.raise_compiler_error("var health_period_days must be a whole number of days (at least 1), not '" ~ period ~ "'") }}
{%- endif -%}
{%- set fresh = var('health_freshness_hours')['fresh'] -%}
{%- set stale = var('health_freshness_hours')['stale'] -%}
{%- if fresh is not number or stale is not number or fresh < 0 or stale <= fresh -%}
    {{ exceptions.raise_compiler_error("var health_freshness_hours needs 0 <= fresh < stale (hours), not " ~ var('health_freshness_hours')) }}
{%- endif %}

with

-- rebuild_from: the first day built (null: every day); reads_from: the first day of data those
-- days read (their two periods, their month and the 7 days before them).
tenants as (
    select
        tenants.tenant_id,
        tenants.timezone,
        tenants.as_of_date,
        tenants.settings_version,
        tenants.rebuild_from,
        least(
            date_trunc('month', tenants.rebuild_from)::date,
            tenants.rebuild_from - {{ 2 * period - 1 }},
            tenants.rebuild_from - 6
        ) as reads_from
    from (
        select
            control_tenants.slug as tenant_id,
            control_tenants.timezone,
            ({{ as_of() }} at time zone control_tenants.timezone)::date as as_of_date,
            {{ health_settings_version('control_tenants.timezone') }} as settings_version,
            {% if is_incremental() %}rebuild.rebuild_from{% else %}null::date as rebuild_from{% endif %}
        from {{ source('control', 'tenants') }} as control_tenants
        {%- if is_incremental() %}
        inner join {{ health_rebuild_relation() }} as rebuild
            on rebuild.tenant_id = control_tenants.slug
        {%- endif %}
        {% if partition_tenant() is not none %}where control_tenants.slug = '{{ partition_tenant() }}'{% endif %}
    ) as tenants
),

-- Each tenant's agent runs started up to as_of(): the first day with a run, with a person.
-- Found by fct_agent_runs' (tenant_id, run_date) index, from each tenant's first day on, not
-- by a pass over every run.
first_runs as (
    select
        tenants.tenant_id,
        first_run.run_date as first_run_date,
        first_user.run_date as first_user_date
    from tenants
    left join lateral (
        select runs.run_date
        from {{ ref('fct_agent_runs') }} as runs
        where runs.tenant_id = tenants.tenant_id
            and runs.run_date is not null
            and coalesce(runs.started_at, runs.updated_at) <= {{ as_of() }}
        order by runs.run_date
        limit 1
    ) as first_run on true
    left join lateral (
        select runs.run_date
        from {{ ref('fct_agent_runs') }} as runs
        where runs.tenant_id = tenants.tenant_id
            and runs.run_date is not null
            and runs.user_email is not null
            and coalesce(runs.started_at, runs.updated_at) <= {{ as_of() }}
        order by runs.run_date
        limit 1
    ) as first_user on true
),

-- Each person's agent runs per day (tenant time zone), started up to as_of(), from reads_from:
-- in an incremental build, each tenant's days from reads_from, by the (tenant_id, run_date)
-- index (the tenants are few and their estimate is no guide, so the lateral join says so).
person_days as (
    select
        runs.tenant_id,
        runs.run_date as usage_date,
        runs.user_email,
        count(*) as runs,
        count(*) filter (where runs.is_finished) as finished_runs,
        count(*) filter (where runs.is_succeeded) as succeeded_runs,
        coalesce(sum(runs.cost_usd), 0) as cost_usd
    {%- if is_incremental() %}
    from tenants
    {{ lateral_index_read(
        ref('fct_agent_runs'), 'runs',
        match="runs.tenant_id = tenants.tenant_id and runs.run_date >= coalesce(tenants.reads_from, '-infinity'::date)",
        columns='runs.tenant_id, runs.run_date, runs.user_email, runs.is_finished, runs.is_succeeded,'
            ~ ' runs.cost_usd, runs.started_at, runs.updated_at'
    ) }}
    where coalesce(runs.started_at, runs.updated_at) <= {{ as_of() }}
    {%- else %}
    from {{ ref('fct_agent_runs') }} as runs
    inner join tenants
        on runs.tenant_id = tenants.tenant_id
    where runs.run_date is not null
        and coalesce(runs.started_at, runs.updated_at) <= {{ as_of() }}
        and (tenants.reads_from is null or runs.run_date >= tenants.reads_from)
        {{ and_tenant('runs') }}
    {%- endif %}
    group by runs.tenant_id, runs.run_date, runs.user_email
),

daily_spend as (
    select tenant_id, usage_date, sum(cost_usd) as cost_usd
    from person_days
    group by tenant_id, usage_date
),

org_budgets as (
    select tenant_id, amount_usd
    from {{ source('control', 'budgets') }}
    where team_id is null
        {{ and_tenant() }}
),

-- The items done up to as_of() (tenant time zone): in an incremental build, each tenant's from
-- reads_from on, by the (tenant_id, done_at) index.
done_items as (
    select
        items.tenant_id,
        (items.done_at at time zone tenants.timezone)::date as done_date,
        items.is_dmt_compliant
    {%- if is_incremental() %}
    from tenants
    {{ lateral_index_read(
        ref('fct_work_item_compliance'), 'items',
        match="items.tenant_id = tenants.tenant_id"
            ~ " and items.done_at >= coalesce(tenants.reads_from::timestamp at time zone tenants.timezone, '-infinity')",
        columns='items.tenant_id, items.done_at, items.dmt_stage, items.is_dmt_compliant'
    ) }}
    {%- else %}
    from {{ ref('fct_work_item_compliance') }} as items
    inner join tenants
        on items.tenant_id = tenants.tenant_id
    {%- endif %}
    where items.dmt_stage = 'done'
        and items.done_at <= {{ as_of() }}
),

daily_items as (
    select
        tenant_id,
        done_date,
        count(*) as done_items,
        count(*) filter (where is_dmt_compliant) as compliant_items
    from done_items
    group by tenant_id, done_date
),

-- Each tenant's first day with an item done: by the (tenant_id, done_at) index in an incremental
-- build, which reads the items done from reads_from only.
first_done_items as (
    {%- if is_incremental() %}
    select tenants.tenant_id, (first_done.done_at at time zone tenants.timezone)::date as first_done_date
    from tenants
    cross join lateral (
        select items.done_at
        from {{ ref('fct_work_item_compliance') }} as items
        where items.tenant_id = tenants.tenant_id
            and items.dmt_stage = 'done'
            and items.done_at <= {{ as_of() }}
        order by items.done_at
        limit 1
    ) as first_done
    {%- else %}
    select tenant_id, min(done_date) as first_done_date from daily_items group by tenant_id
    {%- endif %}
),

completed_loads as (
    select
        loads.tenant_id,
        (loads.loaded_at at time zone tenants.timezone)::date as load_date,
        loads.loaded_at
    from {{ ref('stg_dlt_loads__loads') }} as loads
    inner join tenants
        on loads.tenant_id = tenants.tenant_id
    where loads.is_loaded
        and loads.loaded_at <= {{ as_of() }}
),

daily_loads as (
    select tenant_id, load_date, max(loaded_at) as last_load_at
    from completed_loads
    group by tenant_id, load_date
),

first_days as (
    select
        tenants.tenant_id,
        tenants.timezone,
        tenants.as_of_date,
        tenants.settings_version,
        tenants.rebuild_from,
        runs.first_run_date,
        runs.first_user_date,
        least(runs.first_run_date, items.first_done_date, loads.first_load_date) as first_day
    from tenants
    left join first_runs as runs
        on tenants.tenant_id = runs.tenant_id
    left join first_done_items as items
        on tenants.tenant_id = items.tenant_id
    left join (
        select tenant_id, min(load_date) as first_load_date from daily_loads group by tenant_id
    ) as loads
        on tenants.tenant_id = loads.tenant_id
),

days as (
    select
        first_days.tenant_id,
        first_days.timezone,
        first_days.as_of_date,
        first_days.settings_version,
        first_days.rebuild_from,
        first_days.first_run_date,
        first_days.first_user_date,
        series.day::date as score_date
    from first_days
    cross join lateral generate_series(
        greatest(first_days.first_day, first_days.rebuild_from)::timestamp,
        first_days.as_of_date::timestamp,
        interval '1 day'
    ) as series (day)
    where first_days.first_day is not null
),

-- This period: (score_date - period, score_date]; the previous one: the period before it.
-- activity, spend and compliance join each day to the days of its window one by one (back:
-- 0 = the day itself, 1 = the day before, …), equal dates, rather than to a range of dates: a
-- range join compared every day of a tenant with every day of its data, a cost that grew with
-- the square of its history: the full build's select took 75 s at 50 tenants × 4 years and
-- 21 s at 2 years, 18 s and 9 s with equal dates (docs/scaling.md).
activity as (
    select
        days.tenant_id,
        days.score_date,
        coalesce(sum(person_days.runs) filter (where person_days.usage_date > days.score_date - {{ period }}), 0)
            as runs_current,
        coalesce(sum(person_days.runs) filter (where person_days.usage_date <= days.score_date - {{ period }}), 0)
            as runs_previous,
        count(distinct person_days.user_email) filter (where person_days.usage_date > days.score_date - {{ period }})
            as active_users_current,
        count(distinct person_days.user_email) filter (where person_days.usage_date <= days.score_date - {{ period }})
            as active_users_previous,
        coalesce(
            sum(person_days.finished_runs) filter (where person_days.usage_date > days.score_date - {{ period }}), 0
        ) as finished_runs_current,
        coalesce(
            sum(person_days.succeeded_runs) filter (where person_days.usage_date > days.score_date - {{ period }}), 0
        ) as succeeded_runs_current
    from days
    cross join generate_series(0, {{ 2 * period - 1 }}) as back (days_back)
    left join person_days
        on days.tenant_id = person_days.tenant_id
        and person_days.usage_date = days.score_date - back.days_back
    group by days.tenant_id, days.score_date
),

-- Spend of the day's month up to the day, and of the 7 days ending with it.
spend as (
    select
        days.tenant_id,
        days.score_date,
        coalesce(
            sum(daily_spend.cost_usd)
                filter (where daily_spend.usage_date >= date_trunc('month', days.score_date)::date),
            0
        ) as month_to_date,
        coalesce(sum(daily_spend.cost_usd) filter (where daily_spend.usage_date > days.score_date - 7), 0)
            as trailing_7d,
        (date_trunc('month', days.score_date) + interval '1 month')::date - 1 - days.score_date as days_left
    from days
    cross join lateral generate_series(
        0, days.score_date - least(date_trunc('month', days.score_date)::date, days.score_date - 6)
    ) as back (days_back)
    left join daily_spend
        on days.tenant_id = daily_spend.tenant_id
        and daily_spend.usage_date = days.score_date - back.days_back
    group by days.tenant_id, days.score_date
),

compliance as (
    select
        days.tenant_id,
        days.score_date,
        coalesce(sum(daily_items.done_items) filter (where daily_items.done_date > days.score_date - {{ period }}), 0)
            as done_items_current,
        coalesce(
            sum(daily_items.compliant_items) filter (where daily_items.done_date > days.score_date - {{ period }}), 0
        ) as compliant_items_current,
        coalesce(sum(daily_items.done_items) filter (where daily_items.done_date <= days.score_date - {{ period }}), 0)
            as done_items_previous,
        coalesce(
            sum(daily_items.compliant_items) filter (where daily_items.done_date <= days.score_date - {{ period }}), 0
        ) as compliant_items_previous
    from days
    cross join generate_series(0, {{ 2 * period - 1 }}) as back (days_back)
    left join daily_items
        on days.tenant_id = daily_items.tenant_id
        and daily_items.done_date = days.score_date - back.days_back
    group by days.tenant_id, days.score_date
),

-- The newest load up to the end of each day (up to as_of() on the current day): the newest
-- before the first day built, then the running maximum of the days built.
freshness as (
    select
        days.tenant_id,
        days.score_date,
        greatest(
            earlier.last_load_at,
            max(daily_loads.last_load_at) over (partition by days.tenant_id order by days.score_date)
        ) as last_load_at,
        least((days.score_date + 1)::timestamp at time zone days.timezone, {{ as_of() }}) as measured_until
    from days
    left join daily_loads
        on days.tenant_id = daily_loads.tenant_id
        and days.score_date = daily_loads.load_date
    left join (
        select daily_loads.tenant_id, max(daily_loads.last_load_at) as last_load_at
        from daily_loads
        inner join tenants
            on daily_loads.tenant_id = tenants.tenant_id
        where daily_loads.load_date < tenants.rebuild_from
        group by daily_loads.tenant_id
    ) as earlier
        on days.tenant_id = earlier.tenant_id
),

figures as (
    select
        days.tenant_id,
        days.score_date,
        days.as_of_date,
        days.first_run_date,
        days.first_user_date,
        days.settings_version,
        activity.runs_current,
        activity.runs_previous,
        activity.active_users_current,
        activity.active_users_previous,
        activity.finished_runs_current,
        activity.succeeded_runs_current,
        org_budgets.amount_usd as budget_amount_usd,
        case when org_budgets.amount_usd is not null then spend.month_to_date end as month_to_date_spend,
        case
            when org_budgets.amount_usd is not null
                then spend.month_to_date + spend.trailing_7d / 7.0 * spend.days_left
        end as projected_spend,
        compliance.done_items_current,
        compliance.compliant_items_current,
        compliance.done_items_previous,
        compliance.compliant_items_previous,
        coalesce(items_of_day.done_items, 0) as done_items_day,
        coalesce(items_of_day.compliant_items, 0) as compliant_items_day,
        100.0 * compliance.compliant_items_current / nullif(compliance.done_items_current, 0)
            as compliance_rate_current,
        100.0 * compliance.compliant_items_previous / nullif(compliance.done_items_previous, 0)
            as compliance_rate_previous,
        freshness.last_load_at,
        freshness.measured_until,
        extract(epoch from freshness.measured_until - freshness.last_load_at) / 3600.0 as hours_since_last_load
    from days
    inner join activity
        on days.tenant_id = activity.tenant_id and days.score_date = activity.score_date
    inner join spend
        on days.tenant_id = spend.tenant_id and days.score_date = spend.score_date
    inner join compliance
        on days.tenant_id = compliance.tenant_id and days.score_date = compliance.score_date
    inner join freshness
        on days.tenant_id = freshness.tenant_id and days.score_date = freshness.score_date
    left join org_budgets
        on days.tenant_id = org_budgets.tenant_id
    left join daily_items as items_of_day
        on days.tenant_id = items_of_day.tenant_id and days.score_date = items_of_day.done_date
),

scored as (
    select
        figures.*,
        round(case
            when runs_previous > 0 then least(100, 100.0 * runs_current / runs_previous)
            when runs_current > 0 then 100
            when first_run_date <= score_date then 0
        end, 2) as agent_runs_trend_score,
        round(case
            when active_users_previous > 0 then least(100, 100.0 * active_users_current / active_users_previous)
            when active_users_current > 0 then 100
            when first_user_date <= score_date then 0
        end, 2) as active_users_trend_score,
        round(100.0 * succeeded_runs_current / nullif(finished_runs_current, 0), 2) as agent_success_rate_score,
        round(case
            when budget_amount_usd is null then null
            when projected_spend <= budget_amount_usd then 100
            else greatest(0, 100 - 100.0 * (projected_spend - budget_amount_usd) / budget_amount_usd)
        end, 2) as budget_adherence_score,
        -- the drop since the previous period counts against the rate; no previous period, no drop
        round(case
            when compliance_rate_current is null then null
            else greatest(
                0,
                compliance_rate_current
                - greatest(0, coalesce(compliance_rate_previous, compliance_rate_current) - compliance_rate_current)
            )
        end, 2) as dmt_compliance_trend_score,
        round(case
            when last_load_at is null then null
            when hours_since_last_load <= {{ fresh }} then 100
            when hours_since_last_load >= {{ stale }} then 0
            else 100.0 * ({{ stale }} - hours_since_last_load) / ({{ stale }} - {{ fresh }})
        end, 2) as data_freshness_score
    from figures
),

weighted as (
    select
        scored.*,
        (
            {%- for factor in factors %}
            coalesce({{ weights[factor] }} * {{ factor }}_score, 0){% if not loop.last %} +{% endif %}
            {%- endfor %}
        ) / nullif(
            {%- for factor in factors %}
            case when {{ factor }}_score is not null then {{ weights[factor] }} else 0 end{% if not loop.last %} +{% endif %}
            {%- endfor %},
            0
        ) as weighted_exact,
        (
            {%- for factor in factors %}
            ({{ factor }}_score is not null)::integer{% if not loop.last %} +{% endif %}
            {%- endfor %}
        ) as factors_with_data,
        concat_ws(
            ', ',
            {%- for factor in factors %}
            case when {{ factor }}_score is null then '{{ factor }}' end{% if not loop.last %},{% endif %}
            {%- endfor %}
        ) as factors_without_data
    from scored
),

banded as (
    select
        weighted.*,
        round(weighted_exact)::integer as health_score,
        case
            when round(weighted_exact) <= 50 then 'red'
            when round(weighted_exact) <= 75 then 'amber'
            else 'green'
        end as health_band
    from weighted
    where weighted_exact is not null
),

-- The scores the previous_period and previous_day columns read: the days built, and the
-- rows kept of the period before the first of them.
scores as (
    select tenant_id, score_date, health_score, health_band from banded
    {%- if is_incremental() %}
    union all
    select kept.tenant_id, kept.score_date, kept.health_score, kept.health_band
    from {{ this }} as kept
    inner join tenants
        on kept.tenant_id = tenants.tenant_id
    where kept.score_date >= tenants.rebuild_from - {{ period }}
        and kept.score_date < tenants.rebuild_from
    {%- endif %}
)

select
    banded.tenant_id,
    banded.score_date,
    banded.score_date = banded.as_of_date as is_latest,
    banded.runs_current::integer as runs_current,
    banded.runs_previous::integer as runs_previous,
    banded.agent_runs_trend_score::numeric(5, 2) as agent_runs_trend_score,
    banded.active_users_current::integer as active_users_current,
    banded.active_users_previous::integer as active_users_previous,
    banded.active_users_trend_score::numeric(5, 2) as active_users_trend_score,
    banded.finished_runs_current::integer as finished_runs_current,
    banded.succeeded_runs_current::integer as succeeded_runs_current,
    banded.agent_success_rate_score::numeric(5, 2) as agent_success_rate_score,
    banded.budget_amount_usd::numeric(14, 2) as budget_amount_usd,
    round(banded.month_to_date_spend, 6)::numeric(18, 6) as month_to_date_spend_usd,
    round(banded.projected_spend, 6)::numeric(18, 6) as projected_spend_usd,
    round(100 * banded.projected_spend / banded.budget_amount_usd, 2)::numeric(10, 2) as projected_share_pct,
    banded.budget_adherence_score::numeric(5, 2) as budget_adherence_score,
    banded.done_items_current::integer as done_items_current,
    banded.compliant_items_current::integer as compliant_items_current,
    round(banded.compliance_rate_current, 2)::numeric(5, 2) as compliance_rate_current,
    banded.done_items_previous::integer as done_items_previous,
    banded.compliant_items_previous::integer as compliant_items_previous,
    round(banded.compliance_rate_previous, 2)::numeric(5, 2) as compliance_rate_previous,
    banded.dmt_compliance_trend_score::numeric(5, 2) as dmt_compliance_trend_score,
    banded.done_items_day::integer as done_items_day,
    banded.compliant_items_day::integer as compliant_items_day,
    banded.last_load_at,
    round(banded.hours_since_last_load, 2)::numeric(10, 2) as hours_since_last_load,
    banded.data_freshness_score::numeric(5, 2) as data_freshness_score,
    banded.factors_with_data,
    banded.factors_without_data,
    round(banded.weighted_exact, 2)::numeric(5, 2) as weighted_score,
    banded.health_score,
    banded.health_band,
    previous_period.health_score as previous_period_score,
    previous_period.health_band as previous_period_band,
    banded.health_score - previous_period.health_score as score_change,
    previous_day.health_score as previous_day_score,
    previous_day.health_band as previous_day_band,
    banded.measured_until as measured_at,
    banded.settings_version
from banded
left join scores as previous_period
    on banded.tenant_id = previous_period.tenant_id
    and previous_period.score_date = banded.score_date - {{ period }}
left join scores as previous_day
    on banded.tenant_id = previous_day.tenant_id
    and previous_day.score_date = banded.score_date - 1
