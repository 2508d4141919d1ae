{#- fct_pr_health built by week: a build recomputes only the (repository, week) rows whose pull
    requests changed.

    A row of fct_pr_health aggregates the pull requests opened in one week (in the tenant's time
    zone) in one repository. int_pull_requests_unified logs every pull request it rebuilds, for
    this model too (intermediate.pull_request_changes, macros/incremental_pull_requests.sql), and
    a tenant whole when it was built in full or its raw data is gone. A rebuilt pull request may
    change the figures of the week it is in now, and of the week it was counted in before, if
    its repository or opening moved. That second week is not in int_pull_requests_unified any
    more (its row was replaced), so this model keeps its own ledger,
    intermediate.pr_health_members: each pull request it counted, in which row (source system,
    repository, week) and under which time zone. A build (pre-hook, in the model's transaction):
      1. takes the entries logged for it; a tenant is rebuilt whole when it was logged whole, or
         when its ledger was counted under another time zone than the tenant's now (or is
         empty: a tenant new to the model, a table built before the ledger existed, or after a
         build in full of another tenant's partition), or with var rebuild;
      2. for the pull requests logged one by one: the ledger's row for each (the week before)
         and, after the ledger is brought up to date from int_pull_requests_unified, the row
         now; those rows are deleted from the table;
      3. the batch is every pull request the ledger now counts in those rows, and every one of
         a whole tenant: the model aggregates exactly them, so each row it writes is whole.
    A tenant gone from int_pull_requests_unified or from control.tenants keeps no rows. A build
    in full (or the table's first) counts every pull request of its partition and writes the
    ledger anew: the partition's rows only, so that a tenant left out is counted whole next time.
    The build holds control.tenants in share mode, so that all its statements see the same time
    zones (a change of one waits for the build's end). tests/integration/test_incremental_pull_requests.py
    compares builds by week with builds in full. -#}

{% macro per_logged_week_table() -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_logged_weeks() }}"
    ) }}
{%- endmacro %}

{% macro pr_week_start(opened_at, timezone) -%}
    {#- The Monday of the ISO week of `opened_at` in the time zone `timezone`. -#}
    date_trunc('week', {{ opened_at }} at time zone {{ timezone }})::date
{%- endmacro %}

{% macro pr_repository(repository) -%}
    coalesce({{ repository }}, '(unknown)')
{%- endmacro %}

{% macro pr_health_members_relation() -%}
    {{ api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', none), identifier='pr_health_members') }}
{%- endmacro %}

{% macro pr_health_members_of(where) -%}
    {#- The ledger's rows (as inserted) of the pull requests of int_pull_requests_unified that
        `where` (a condition on `pull_requests`) keeps: each opened one, in its row now. -#}
    select
        pull_requests.tenant_id,
        pull_requests.source_system,
        {{ pr_repository('pull_requests.repository') }} as repository,
        {{ pr_week_start('pull_requests.opened_at', 'tenants.timezone') }} as week_start,
        pull_requests.pull_request_id,
        tenants.timezone
    from {{ ref('int_pull_requests_unified') }} as pull_requests
    inner join {{ source('control', 'tenants') }} as tenants
        on tenants.slug = pull_requests.tenant_id
    where pull_requests.opened_at is not null and {{ where }}
{%- endmacro %}

{% macro replace_logged_weeks() -%}
    {%- set members = pr_health_members_relation() -%}
    {%- set logged = 'pg_temp.logged_pull_requests__' ~ this.name -%}
    {%- set whole = 'pg_temp.whole_tenants__' ~ this.name -%}
    {%- set gone = 'pg_temp.gone_tenants__' ~ this.name -%}
    {%- set weeks = 'pg_temp.changed_weeks__' ~ this.name -%}
    {%- set taken = 'pg_temp.taken_entries__' ~ this.name -%}
    {{ create_pull_request_changes() }};
    -- every statement of this build reads the tenants' time zones as they are now: a time zone
    -- changed between the ledger's statements and the model's would count the two in different
    -- weeks (the lock waits for a change in progress; a change waits for this build's end)
    lock table {{ source('control', 'tenants') }} in share mode;
    -- (the keys come with the table: an index created later, at every build, would lock it)
    create table if not exists {{ members }} (
        tenant_id text not null,
        source_system text not null,
        repository text not null,
        week_start date not null,
        pull_request_id text not null,
        timezone text not null,
        primary key (tenant_id, source_system, repository, week_start, pull_request_id),
        unique (tenant_id, pull_request_id)
    );
    {%- if is_incremental() %}
    -- the entries logged for this model, taken at once (an entry logged meanwhile waits for the
    -- next build)
    drop table if exists {{ taken }};
    create temporary table {{ taken }} (tenant_id text not null, pull_request_id text);
    with entries as (
        delete from {{ pull_request_changes_relation() }}
        where consumer = '{{ this.name }}' {{ and_tenant() }}
        returning tenant_id, pull_request_id
    )
    insert into {{ taken }} (tenant_id, pull_request_id) select tenant_id, pull_request_id from entries;
    -- a tenant gone from int_pull_requests_unified or from control.tenants keeps no rows
    drop table if exists {{ gone }};
    create temporary table {{ gone }} as
        {{ tenants_gone(this, ref('int_pull_requests_unified')) }}
        union
        {{ tenants_gone(this, '(select slug as tenant_id from ' ~ source('control', 'tenants') ~ ')') }};
    analyze {{ gone }};
    -- tenants rebuilt whole: logged whole, counted under another time zone (or not at all), or
    -- every one with var rebuild: one ledger row read per tenant, all of a tenant's rows carry
    -- one time zone
    drop table if exists {{ whole }};
    create temporary table {{ whole }} as
        select tenant_id from {{ taken }} where pull_request_id is null
        union
        select present.tenant_id
        from ({{ stored_tenants(ref('int_pull_requests_unified')) }}) as present
        inner join {{ source('control', 'tenants') }} as tenants
            on tenants.slug = present.tenant_id
        where {{ var('rebuild', false) }} or tenants.timezone is distinct from (
            select counted.timezone from {{ members }} as counted
            where counted.tenant_id = present.tenant_id
            order by counted.pull_request_id
            limit 1
        );
    analyze {{ whole }};
    -- the pull requests logged one by one, of the other tenants
    drop table if exists {{ logged }};
    create temporary table {{ logged }} as
        select distinct tenant_id, pull_request_id from {{ taken }}
        where pull_request_id is not null
            and tenant_id not in (select tenant_id from {{ whole }})
            and tenant_id not in (select tenant_id from {{ gone }});
    analyze {{ logged }};
    -- the rows they were counted in, and the ledger brought up to date
    drop table if exists {{ weeks }};
    create temporary table {{ weeks }} as
        select counted.tenant_id, counted.source_system, counted.repository, counted.week_start
        from {{ logged }} as changed
        inner join {{ members }} as counted
            on counted.tenant_id = changed.tenant_id and counted.pull_request_id = changed.pull_request_id;
    delete from {{ members }} as counted
    using {{ logged }} as changed
    where counted.tenant_id = changed.tenant_id and counted.pull_request_id = changed.pull_request_id;
    delete from {{ members }}
    where tenant_id in (select tenant_id from {{ whole }} union all select tenant_id from {{ gone }});
    insert into {{ members }} (tenant_id, source_system, repository, week_start, pull_request_id, timezone)
    {{ pr_health_members_of(
        "(pull_requests.tenant_id, pull_requests.pull_request_id) in (select tenant_id, pull_request_id from " ~ logged ~ ")"
    ) }}
    union all
    -- (tenant by tenant, through the (tenant_id, pull_request_id) index)
    select counted.* from {{ whole }} as whole
    cross join lateral (
        {{ pr_health_members_of("pull_requests.tenant_id = whole.tenant_id") }}
        offset 0
    ) as counted;
    -- and the rows they are counted in now
    insert into {{ weeks }} (tenant_id, source_system, repository, week_start)
    select counted.tenant_id, counted.source_system, counted.repository, counted.week_start
    from {{ logged }} as changed
    inner join {{ members }} as counted
        on counted.tenant_id = changed.tenant_id and counted.pull_request_id = changed.pull_request_id;
    analyze {{ weeks }};
    delete from {{ this }}
    where tenant_id in (select tenant_id from {{ whole }} union all select tenant_id from {{ gone }});
    delete from {{ this }} as built
    using (select distinct * from {{ weeks }}) as changed
    where built.tenant_id = changed.tenant_id and built.source_system = changed.source_system
        and built.repository = changed.repository and built.week_start = changed.week_start;
    -- the batch: every pull request counted in those rows, and every one of the whole tenants
    drop table if exists {{ changed_pull_requests_relation() }};
    create temporary table {{ changed_pull_requests_relation() }} as
        select counted.tenant_id, counted.pull_request_id
        from (select distinct * from {{ weeks }}) as changed
        inner join {{ members }} as counted
            on counted.tenant_id = changed.tenant_id and counted.source_system = changed.source_system
                and counted.repository = changed.repository and counted.week_start = changed.week_start
        union all
        select counted.tenant_id, counted.pull_request_id
        from {{ whole }} as whole
        inner join {{ members }} as counted
            on counted.tenant_id = whole.tenant_id;
    analyze {{ changed_pull_requests_relation() }}
    {%- else %}
    -- a build in full counts every pull request: every entry logged is taken, and the ledger
    -- is written anew; a build in full of one tenant's partition holds only that tenant's rows,
    -- so the other tenants lose their ledger too and are counted whole at their next build
    delete from {{ pull_request_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }};
    delete from {{ members }};
    insert into {{ members }} (tenant_id, source_system, repository, week_start, pull_request_id, timezone)
    {{ pr_health_members_of("true " ~ and_tenant('pull_requests')) }}
    {%- endif -%}
{%- endmacro %}
