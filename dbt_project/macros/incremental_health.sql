{#- Incremental by day: fct_account_health_daily (docs/health.md, "Incremental builds").

    A day's row depends only on the data of that day and the 2 × health_period_days - 1 days
    before it (its period and the previous one; the budget projection reads the month and the 7
    days before; freshness the newest load up to the day; previous_period_score and
    previous_day_score the rows of earlier days), and on the build's as_of only through the
    current day (measured up to as_of; every past day is measured at its end). So, per tenant,
    a build finds the earliest day whose data may have changed since the model last ran, deletes
    the rows from that day on and rebuilds them; earlier rows are kept. The earliest day is the
    least of:
      - the tenant's latest row (the day that was current, measured at the old as_of; anything
        that happened after the old as_of is on that day or later);
      - the days of the agent runs fct_agent_runs rebuilt since: the model is one of the
        consumers of the change log intermediate.agent_run_changes (agent_run_aggregates()) and
        takes its entries in its own build's transaction;
      - the days of the items done whose done row fct_work_item_compliance changed since (an
        item done, re-opened, done again at another moment, or judged otherwise: its log
        intermediate.work_item_done_changes, macros/incremental_compliance.sql, which this
        model takes in its own build's transaction, as the runs' log);
      - the days of completed dlt loads newer than the newest load the rows saw.
    The tenant is rebuilt whole when it has no row yet, a row carries another settings_version
    (the health vars or the tenant's time zone changed) or another organisation budget, a row
    was measured after as_of (as_of moved back), a change log says so (fct_agent_runs or
    fct_work_item_compliance was built in full, or the tenant's raw data is gone), or var
    rebuild=true. A tenant no longer in control.tenants loses its rows.
    Raw data removed without a change of runs or items (a pulled source's dlt ledger dropped)
    is not noticed: rebuild with var rebuild=true. -#}

{% macro health_rebuild_relation() -%}
    pg_temp.health_rebuild__{{ this.name }}
{%- endmacro %}

{% macro health_settings_version(timezone_sql) -%}
    {#- What every day's figures depend on besides the data: the health vars and the tenant's
        time zone (timezone_sql), as an md5. -#}
    {%- set weights = var('health_weights') -%}
    {%- set hours = var('health_freshness_hours') -%}
    {%- set key -%}
        {%- for name in weights | sort %}{{ name }}={{ weights[name] }};{% endfor -%}
        period={{ var('health_period_days') }};fresh={{ hours['fresh'] }};stale={{ hours['stale'] }};timezone=
    {%- endset -%}
    md5('{{ key }}' || {{ timezone_sql }})
{%- endmacro %}

{% macro replace_changed_health_days() -%}
    {{ create_run_changes() }};
    {{ create_done_changes() }};
    {%- if is_incremental() %}
    drop table if exists {{ health_rebuild_relation() }};
    create temporary table {{ health_rebuild_relation() }} (tenant_id text primary key, rebuild_from date);
    with
    tenants as (
        select
            slug as tenant_id,
            timezone,
            {{ health_settings_version('timezone') }} as settings_version,
            budgets.amount_usd::numeric(14, 2) as budget_amount_usd
        from {{ source('control', 'tenants') }} as tenants
        left join {{ source('control', 'budgets') }} as budgets
            on budgets.tenant_id = tenants.slug and budgets.team_id is null
        where true {% if partition_tenant() is not none %}and slug = '{{ partition_tenant() }}'{% endif %}
    ),
    -- take this model's entries of the change log
    taken as (
        delete from {{ run_changes_relation() }}
        where aggregate = '{{ this.name }}' {{ and_tenant() }}
        returning tenant_id, run_date, whole_tenant
    ),
    runs_changed as (
        select tenant_id, bool_or(whole_tenant) as whole_tenant, min(run_date) as from_date
        from taken
        group by tenant_id
    ),
    built as (
        select
            built.tenant_id,
            max(built.score_date) as latest_date,
            max(built.last_load_at) as last_load_at,
            max(built.measured_at) as measured_until,
            bool_or(
                (built.settings_version, built.budget_amount_usd)
                is distinct from (tenants.settings_version, tenants.budget_amount_usd)
            ) as settings_changed
        from {{ this }} as built
        inner join tenants
            on tenants.tenant_id = built.tenant_id
        group by built.tenant_id
    ),
    -- take this model's entries of the done items' change log
    taken_items as (
        delete from {{ done_changes_relation() }}
        where true {{ and_tenant() }}
        returning tenant_id, done_at, whole_tenant
    ),
    items_changed as (
        select
            taken_items.tenant_id,
            bool_or(taken_items.whole_tenant) as whole_tenant,
            min((taken_items.done_at at time zone tenants.timezone)::date) as from_date
        from taken_items
        inner join tenants
            on tenants.tenant_id = taken_items.tenant_id
        group by taken_items.tenant_id
    ),
    loads_changed as (
        select loads.tenant_id, min((loads.loaded_at at time zone tenants.timezone)::date) as from_date
        from {{ ref('stg_dlt_loads__loads') }} as loads
        inner join tenants
            on tenants.tenant_id = loads.tenant_id
        left join built
            on built.tenant_id = loads.tenant_id
        where loads.is_loaded
            and loads.loaded_at <= {{ as_of() }}
            and (built.last_load_at is null or loads.loaded_at > built.last_load_at)
        group by loads.tenant_id
    )
    insert into {{ health_rebuild_relation() }} (tenant_id, rebuild_from)
    select
        tenants.tenant_id,
        case
            when not (
                built.tenant_id is null
                or built.settings_changed
                or built.measured_until > {{ as_of() }}
                or coalesce(runs_changed.whole_tenant, false)
                or coalesce(items_changed.whole_tenant, false)
                or {{ var('rebuild', false) }}
            )
                then least(built.latest_date, runs_changed.from_date, items_changed.from_date, loads_changed.from_date)
        end as rebuild_from
    from tenants
    left join built
        on built.tenant_id = tenants.tenant_id
    left join runs_changed
        on runs_changed.tenant_id = tenants.tenant_id
    left join items_changed
        on items_changed.tenant_id = tenants.tenant_id
    left join loads_changed
        on loads_changed.tenant_id = tenants.tenant_id;
    analyze {{ health_rebuild_relation() }};
    -- A tenant gone from control.tenants keeps no rows.
    delete from {{ this }}
    where tenant_id in (
        {{ tenants_gone(this, "(select slug as tenant_id from " ~ source('control', 'tenants') ~ ")") }}
    );
    -- rebuild_from null: the tenant whole
    delete from {{ this }} as built
    using {{ health_rebuild_relation() }} as rebuild
    where built.tenant_id = rebuild.tenant_id
        and (rebuild.rebuild_from is null or built.score_date >= rebuild.rebuild_from)
    {%- else %}
    -- built in full: every entry of the partition is done
    delete from {{ run_changes_relation() }} where aggregate = '{{ this.name }}' {{ and_tenant() }};
    delete from {{ done_changes_relation() }} where true {{ and_tenant() }}
    {%- endif -%}
{%- endmacro %}
