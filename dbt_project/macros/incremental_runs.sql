{#- Incremental by changed agent runs (the agent models; compare macros/incremental.sql, the
    same idea for work items).

    Per-run models (int_agent_runs, fct_agent_runs) are built once in full, then, on every later
    run, only for the runs loaded since they last ran. Each row carries source_loaded_at: its
    run's newest load (a raw row's load, or, for a Claude Code run, the newest event of the
    prompt), capped at the newest load the build saw when it began; a tenant's watermark is the
    model's largest source_loaded_at (read from an index on (tenant_id, source_loaded_at): one
    probe per tenant, tenant_maxima). A build:
      1. (pre-hook) snapshots, in temporary tables of its session, the runs of its partition
         loaded after the watermark (plus any its `also` macro names) and the new watermark,
         then deletes those runs' rows;
      2. (the model) builds the rows of exactly those runs, stamped with the new watermark at
         most, so a run loaded while the build was under way is picked up by the next one.
    No column of a run depends on as_of (a running run has no duration yet), so no run is
    rebuilt only because time passed.

    The aggregates of runs (per day: fct_agent_usage_daily; per month: the team ranks and top
    users) are rebuilt per group: every (tenant, day) or (tenant, month) a rebuilt run left or
    entered. fct_agent_runs records those groups, for each aggregate, in a change log
    (intermediate.agent_run_changes): before it deletes a changed run, the run's old day and
    month; after it inserts it, the new ones; after a build in full, every tenant whole. Each
    aggregate, in its own build's transaction, takes (deletes) its entries of the partition and
    rebuilds exactly those groups, so an aggregate that is not built (or fails) keeps its
    entries for its next build.

    A tenant a model has no row of yet is built whole; one whose raw data is gone loses its
    rows. var rebuild=true rebuilds every run and group of the partition (after a past window
    was re-loaded, or as_of moved back; a changed model_prices is noticed: agent_runs_also). After changing a model's logic, rebuild
    it with `dbt build --full-refresh --select <model>+`. Unit tests run the full path
    (is_incremental false). -#}

{#- The aggregates that read fct_agent_runs by group, each with the fct_agent_runs column of its
    group and its own column for it. fct_account_health_daily takes its entries with its own
    pre-hook (macros/incremental_health.sql: a changed day rebuilds the days from it on). -#}
{% macro agent_run_aggregates() -%}
    {{ return({
        'fct_agent_usage_daily': ('run_date', 'usage_date'),
        'fct_agent_team_ranks_monthly': ('run_month', 'usage_month'),
        'fct_agent_top_users_monthly': ('run_month', 'usage_month'),
        'fct_agent_spend_monthly': ('run_month', 'spend_month'),
        'fct_account_health_daily': ('run_date', 'score_date'),
    }) }}
{%- endmacro %}

{% macro per_agent_run_table(loaded, also=none, logs_changes=false, versions=none, primary_key=false, watermarks=none,
                              loaded_since=none, raw_load_ids=[]) -%}
    {#- Config of a per-run model. `loaded`: the name of a macro that selects (tenant_id,
        agent_run_id, loaded_at) of every candidate row (a run may appear more than once);
        `also`: the name of a macro of statements that add runs to rebuild to
        {{ changed_runs_relation() }}; `logs_changes`: record the groups of the runs rebuilt
        for the aggregates (fct_agent_runs); `versions`: the name of a macro giving, per tenant,
        the version of what else the rows read (macros/agent_run_versions.sql), which `also`
        compares rows for only where it moved; `primary_key`: the model's contract declares the
        primary key (tenant_id, agent_run_id), otherwise a unique index on it is made. Either
        way the database refuses a duplicate run, which a test would have to find by reading
        the whole table after every build; `watermarks`: the name of a macro selecting
        (tenant_id, loaded_at), each tenant's newest load of `loaded` (default: its max, a pass
        over `loaded`); `loaded_since`: the name of a macro (tenant, loaded_at) giving, for a
        lateral join, the (tenant_id, agent_run_id) of `loaded` loaded after loaded_at from the
        raw tables' indexed load columns (default: `loaded` filtered, a pass over it);
        `raw_load_ids`: the raw tables (source name, table) whose dlt load id `loaded_since`
        reads by index. An index on (tenant_id, source_loaded_at) gives each tenant's watermark
        (tenant_maxima) and, where `loaded` reads a per-run model, its newer runs, without a
        pass over the table. The pre-hook deletes what is rebuilt; the model appends it. -#}
    {%- set post_hooks = [] -%}
    {%- if logs_changes %}{% do post_hooks.append("{{ log_new_run_groups() }}") %}{% endif -%}
    {%- if versions %}{% do post_hooks.append("{{ record_built_run_versions() }}") %}{% endif -%}
    {%- set settings = {
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'pre_hook': "{{ replace_changed_runs() }}",
        'runs_loaded': loaded,
        'rebuild_also': also,
        'logs_changes': logs_changes,
        'run_versions': versions,
        'runs_watermarks': watermarks,
        'runs_loaded_since': loaded_since,
        'raw_load_ids': raw_load_ids,
        'indexes': ([] if primary_key else [{'columns': ['tenant_id', 'agent_run_id'], 'unique': true}])
            + [{'columns': ['tenant_id', 'source_loaded_at']}],
    } -%}
    {%- if post_hooks %}{% do settings.update({'post_hook': post_hooks}) %}{% endif -%}
    {{ config(**settings) }}
{%- endmacro %}

{% macro changed_runs_relation() -%}
    pg_temp.changed_runs__{{ this.name }}
{%- endmacro %}

{% macro run_watermarks_relation() -%}
    pg_temp.run_watermarks__{{ this.name }}
{%- endmacro %}

{% macro run_built_relation() -%}
    pg_temp.run_built__{{ this.name }}
{%- endmacro %}

{% macro run_batch_bounds_relation() -%}
    pg_temp.run_batch_bounds__{{ this.name }}
{%- endmacro %}

{% macro gone_tenants_relation() -%}
    pg_temp.gone_tenants__{{ this.name }}
{%- endmacro %}

{% macro run_changes_relation() -%}
    {{ api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', none), identifier='agent_run_changes') }}
{%- endmacro %}

{% macro create_run_changes() -%}
    {#- The change log: one row per aggregate and group to rebuild (run_date and run_month of a
        run that changed), or per aggregate and tenant to rebuild whole (whole_tenant). -#}
    create table if not exists {{ run_changes_relation() }} (
        aggregate text not null,
        tenant_id text not null,
        run_date date,
        run_month date,
        whole_tenant boolean not null default false
    )
{%- endmacro %}

{% macro log_run_groups(groups_sql, whole_tenant=false) -%}
    {#- Record, for every aggregate, the (tenant_id, run_date, run_month) rows of groups_sql. -#}
    insert into {{ run_changes_relation() }} (aggregate, tenant_id, run_date, run_month, whole_tenant)
    select aggregates.aggregate, groups.tenant_id, groups.run_date, groups.run_month, {{ whole_tenant }}
    from (select distinct tenant_id, run_date, run_month from ({{ groups_sql }}) as logged) as groups
    cross join (values {% for name in agent_run_aggregates() %}('{{ name }}'){% if not loop.last %}, {% endif %}{% endfor %}) as aggregates (aggregate)
{%- endmacro %}

{% macro replace_changed_runs() -%}
    {%- set logs_changes = config.get('logs_changes', false) -%}
    {%- if logs_changes %}{{ create_run_changes() }};{% endif -%}
    {%- if is_incremental() -%}
    {%- set loaded = context[config.get('runs_loaded')]() -%}
    {%- set also = config.get('rebuild_also') -%}
    {%- set versions = config.get('run_versions') -%}
    {%- set watermarks = config.get('runs_watermarks') -%}
    {%- set loaded_since = config.get('runs_loaded_since') -%}
    {%- if config.get('raw_load_ids') %}{{ index_raw_load_ids(config.get('raw_load_ids')) }};{% endif %}
    -- per tenant, the newest load the model holds (its watermark) and the newest it reads now
    drop table if exists {{ run_built_relation() }};
    create temporary table {{ run_built_relation() }} as
        {{ tenant_maxima(this, 'source_loaded_at') }};
    analyze {{ run_built_relation() }};
    drop table if exists {{ run_watermarks_relation() }};
    create temporary table {{ run_watermarks_relation() }} as
    {%- if watermarks %}
        {{ context[watermarks]() }};
    {%- else %}
        select loaded.tenant_id, max(loaded.loaded_at) as loaded_at
        from ({{ loaded }}) as loaded
        where true {{ and_tenant('loaded') }}
        group by loaded.tenant_id;
    {%- endif %}
    analyze {{ run_watermarks_relation() }};
    drop table if exists {{ changed_runs_relation() }};
    create temporary table {{ changed_runs_relation() }} as
        -- the runs loaded after the tenant's watermark, tenant by tenant (offset 0 keeps the
        -- lateral a loop: an index range per tenant, or the tenant's own branch of a union)
        select distinct loaded.tenant_id, loaded.agent_run_id
        from {{ run_built_relation() }} as built
        cross join lateral (
        {%- if loaded_since and not var('rebuild', false) %}
            {{ context[loaded_since]('built.tenant_id', 'built.loaded_at') }}
        {%- else %}
            select loaded.tenant_id, loaded.agent_run_id
            from ({{ loaded }}) as loaded
            where loaded.tenant_id = built.tenant_id
                and (loaded.loaded_at > built.loaded_at or {{ var('rebuild', false) }})
            offset 0
        {%- endif %}
        ) as loaded
        union
        -- every run of a tenant the model has no row (with a watermark) of yet
        select loaded.tenant_id, loaded.agent_run_id
        from ({{ loaded }}) as loaded
        where loaded.tenant_id in (
            select current.tenant_id from {{ run_watermarks_relation() }} as current
            where not exists (
                select from {{ run_built_relation() }} as built
                where built.tenant_id = current.tenant_id and built.loaded_at is not null
            )
        ) {{ and_tenant('loaded') }};
    -- the tenants the model holds whose raw data is gone (offboarded)
    drop table if exists {{ gone_tenants_relation() }};
    create temporary table {{ gone_tenants_relation() }} as
        select built.tenant_id from {{ run_built_relation() }} as built
        where not exists (select from {{ run_watermarks_relation() }} as current where current.tenant_id = built.tenant_id);
    create unique index on {{ changed_runs_relation() }} (tenant_id, agent_run_id);
    {% if versions %}{{ snapshot_run_versions(versions) }};{% endif %}
    {% if also %}{{ context[also]() }};{% endif %}
    {% if versions %}{{ record_run_versions("select tenant_id, version from " ~ current_versions_relation()) }};{% endif %}
    analyze {{ changed_runs_relation() }};
    {%- if config.get('raw_load_ids') %}
    -- per tenant of the batch, a time its runs' raw rows were all loaded after (runs_of_batch):
    -- its watermark, or a second before the oldest load of a run it holds that is rebuilt again
    -- (a tenant re-priced whole; a run's row is never older than the source_loaded_at it was
    -- built with); the epoch for a tenant built whole (nothing held yet, var rebuild)
    drop table if exists {{ run_batch_bounds_relation() }};
    create temporary table {{ run_batch_bounds_relation() }} as
        select
            changed.tenant_id,
            case
                when built.loaded_at is null or {{ var('rebuild', false) }} then 'epoch'::timestamptz
                else least(built.loaded_at, min(held.source_loaded_at) - interval '1 second')
            end as loaded_after
        from {{ changed_runs_relation() }} as changed
        left join {{ run_built_relation() }} as built
            on built.tenant_id = changed.tenant_id
        left join {{ this }} as held
            on held.tenant_id = changed.tenant_id and held.agent_run_id = changed.agent_run_id
        group by changed.tenant_id, built.loaded_at;
    {%- endif %}
    {%- if logs_changes %}
    -- the groups the deleted runs leave (their old day and month), for the aggregates
    {{ log_run_groups(
        "select built.tenant_id, built.run_date, built.run_month from " ~ this ~ " as built"
        ~ " inner join " ~ changed_runs_relation() ~ " as changed"
        ~ " on changed.tenant_id = built.tenant_id and changed.agent_run_id = built.agent_run_id"
        ~ " union all select built.tenant_id, built.run_date, built.run_month from " ~ this ~ " as built"
        ~ " where built.tenant_id in (select tenant_id from " ~ gone_tenants_relation() ~ ")"
    ) }};
    {%- endif %}
    -- A tenant whose raw data is gone (offboarded) keeps no rows.
    delete from {{ this }} as built
    where built.tenant_id in (select tenant_id from {{ gone_tenants_relation() }});
    delete from {{ this }} as built
    using {{ changed_runs_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.agent_run_id = changed.agent_run_id
    {%- endif -%}
{%- endmacro %}

{% macro log_new_run_groups() -%}
    {#- Post-hook of fct_agent_runs: the groups the rebuilt runs entered; after a build in full,
        every tenant of the partition whole. -#}
    {%- if is_incremental() -%}
    {{ log_run_groups(
        "select tenant_id, run_date, run_month from " ~ this
        ~ " where (tenant_id, agent_run_id) in (select tenant_id, agent_run_id from " ~ changed_runs_relation() ~ ")"
    ) }}
    {%- else -%}
    {{ log_run_groups("select tenant_id, null::date as run_date, null::date as run_month from " ~ this ~ " " ~ tenant_filter(), whole_tenant=true) }}
    {%- endif -%}
{%- endmacro %}

{% macro add_changed_runs(select_sql) -%}
    {#- For `also` macros: add the (tenant_id, agent_run_id) rows of select_sql to the batch. -#}
    insert into {{ changed_runs_relation() }} (tenant_id, agent_run_id)
    select distinct extra.tenant_id, extra.agent_run_id from ({{ select_sql }}) as extra
    on conflict do nothing
{%- endmacro %}

{% macro run_load_watermarks(loaded) -%}
    {#- Per tenant, the newest load this build reads: what it stamps rows with at most.
        `loaded`: the model's `loaded` macro (see per_agent_run_table). -#}
    {%- if is_incremental() -%}
    select tenant_id, loaded_at from {{ run_watermarks_relation() }}
    {%- else -%}
    select loaded.tenant_id, max(loaded.loaded_at) as loaded_at
    from ({{ context[loaded]() }}) as loaded
    where true {{ and_tenant('loaded') }}
    group by loaded.tenant_id
    {%- endif -%}
{%- endmacro %}

{% macro and_run_in_batch(alias=none) -%}
    {#- In an incremental build, restrict a query (that has a where clause) to the batch's runs. -#}
    {%- if is_incremental() -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    and ({{ prefix }}tenant_id, {{ prefix }}agent_run_id) in (select tenant_id, agent_run_id from {{ changed_runs_relation() }})
    {%- endif -%}
{%- endmacro %}

{% macro runs_of_batch(source_type) -%}
    {#- The runs staging view of `source_type` (stg_<source_type>__runs) as a build of the batch
        reads it. In an incremental build of a model with raw_load_ids (int_agent_runs), the
        agent platform's view is read per batch tenant, the rows loaded after its bound
        (run_batch_bounds_relation), through the raw tables' load id index (the view's load_id),
        instead of a pass over every run of every tenant joined to the batch; otherwise the
        view. A superset of the batch's runs: the caller keeps and_run_in_batch(). -#}
    {%- set relation = ref('stg_' ~ source_type ~ '__runs') -%}
    {%- if source_type == 'agent_platform' and is_incremental() and config.get('raw_load_ids') -%}
    (
        select batch.*
        from {{ run_batch_bounds_relation() }} as bounds
        cross join lateral {{ rows_loaded_since(
            'select * from ' ~ relation, ['*'], 'bounds.tenant_id', 'bounds.loaded_after'
        ) }} as batch
    )
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- The loaded runs of each per-run model. -#}

{% macro claude_code_run_key(alias=none) -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    coalesce('prompt:' || {{ prefix }}prompt_id, 'session:' || {{ prefix }}session_id)
{%- endmacro %}

{% macro agent_runs_loaded() -%}
    {#- int_agent_runs: each reported run's load, and each Claude Code event's (a prompt is
        loaded again when any of its events arrives). -#}
    {%- for source_type in ['agent_platform', 'agent_import', 'agent_mcp'] %}
    select tenant_id, agent_run_id, loaded_at from {{ ref('stg_' ~ source_type ~ '__runs') }}
    union all
    {%- endfor %}
    select tenant_id, 'claude_code:' || {{ claude_code_run_key() }} as agent_run_id, loaded_at
    from {{ ref('stg_claude_code__events') }}
    where (prompt_id is not null or session_id is not null)
        and event_name in ('user_prompt', 'api_request', 'api_error', 'tool_result')
{%- endmacro %}

{% macro agent_runs_watermarks() -%}
    {#- int_agent_runs: per tenant, the newest load of any of its run sources, by one index probe
        per raw table where the load column is indexed (the agent platform's dlt load id). -#}
    select newest.tenant_id, max(newest.loaded_at) as loaded_at
    from (
        select tenant_id, to_timestamp(_dlt_load_id::double precision) as loaded_at
        from ({{ tenant_source_maxima(source('agent_platform', 'runs'), 'agent_platform', '_dlt_load_id') }}) as dlt
        {%- for source_type, table, column in agent_run_load_columns() %}
        union all
        select tenant_id, {{ column }}::timestamptz
        from ({{ tenant_source_maxima(source(source_type, table), source_type, column) }}) as {{ source_type }}
        {%- endfor %}
    ) as newest
    where newest.loaded_at is not null {{ and_tenant('newest') }}
    group by newest.tenant_id
{%- endmacro %}

{% macro agent_run_load_columns() -%}
    {#- The run sources Pulse writes itself, with the column that records when a row was written. -#}
    {{ return([('agent_import', 'runs', 'imported_at'), ('agent_mcp', 'runs', 'reported_at'),
               ('claude_code', 'otel_events', 'received_at')]) }}
{%- endmacro %}

{% macro agent_runs_loaded_since(tenant, loaded_at) -%}
    {#- int_agent_runs: the runs of agent_runs_loaded of `tenant` loaded after `loaded_at` (both
        expressions, for a lateral join), read from the raw tables' load columns (the agent
        platform's through its load id index) instead of the staging views' computed loaded_at,
        a pass over every run. -#}
    {%- set platform_loads -%}
        select raw_rows.tenant_id, raw_rows.run_id, raw_rows._dlt_load_id as load_id,
            to_timestamp(raw_rows._dlt_load_id::double precision) as loaded_at
        from ({{ union_tenant_sources(source('agent_platform', 'runs'), 'agent_platform', ['run_id', '_dlt_load_id']) }}) as raw_rows
    {%- endset %}
    select {{ tenant }} as tenant_id, 'agent_platform:' || platform.run_id::text as agent_run_id
    from {{ rows_loaded_since(platform_loads, ['run_id'], tenant, loaded_at) }} as platform
    {%- for source_type, table, column in agent_run_load_columns() if table == 'runs' %}
    union all
    select raw_rows.tenant_id, '{{ source_type }}:' || raw_rows.run_id::text
    from ({{ union_tenant_sources(source(source_type, table), source_type, ['run_id', column]) }}) as raw_rows
    where raw_rows.tenant_id = {{ tenant }} and raw_rows.{{ column }}::timestamptz > {{ loaded_at }}
    {%- endfor %}
    union all
    select events.tenant_id, 'claude_code:' || {{ claude_code_run_key('events') }}
    from ({{ union_tenant_sources(
        source('claude_code', 'otel_events'), 'claude_code', ['prompt_id', 'session_id', 'event_name', 'received_at']
    ) }}) as events
    where events.tenant_id = {{ tenant }} and events.received_at::timestamptz > {{ loaded_at }}
        and (events.prompt_id is not null or events.session_id is not null)
        and events.event_name in ('user_prompt', 'api_request', 'api_error', 'tool_result')
    offset 0
{%- endmacro %}

{% macro prices_version() -%}
    {#- A fingerprint of the model_prices table: int_agent_runs stores it on every row, and
        re-prices a tenant's every run when it changed. -#}
    (select md5(coalesce(string_agg(prices::text, ',' order by prices::text), '')) from {{ ref('model_prices') }} as prices)
{%- endmacro %}

{% macro agent_runs_also() -%}
    {#- int_agent_runs rebuilds, besides the loaded runs, every run of a tenant priced with
        another version of model_prices (a price corrected: history is re-priced). Only the
        tenants whose recorded version moved are looked at (int_agent_runs_versions). -#}
    {{ add_changed_runs(
        "select loaded.tenant_id, loaded.agent_run_id from (" ~ agent_runs_loaded() ~ ") as loaded"
        ~ " where loaded.tenant_id in (select built.tenant_id from " ~ this ~ " as built where true " ~ and_tenant('built')
        ~ " " ~ and_tenant_version_changed('built')
        ~ " group by built.tenant_id having bool_or(built.prices_version is distinct from " ~ prices_version() ~ "))"
    ) }}
{%- endmacro %}

{% macro fct_agent_runs_loaded() -%}
    select tenant_id, agent_run_id, source_loaded_at as loaded_at from {{ ref('int_agent_runs') }}
{%- endmacro %}

{% macro fct_agent_runs_watermarks() -%}
    {{ tenant_maxima(ref('int_agent_runs'), 'source_loaded_at') }}
{%- endmacro %}

{% macro matched_team(teams_relation, alias) -%}
    {#- The control.teams team a run's team name names: a team's slug first, then its name
        (case-insensitive); the lowest id on a tie. A lateral subquery on `alias` (tenant_id,
        team_name). -#}
    select teams.team_id
    from {{ teams_relation }} as teams
    where teams.tenant_id = {{ alias }}.tenant_id
        and (teams.slug = lower({{ alias }}.team_name) or lower(teams.name) = lower({{ alias }}.team_name))
    order by (teams.slug = lower({{ alias }}.team_name)) desc, teams.team_id
    limit 1
{%- endmacro %}

{% macro fct_agent_runs_also() -%}
    {#- fct_agent_runs rebuilds, besides the loaded runs, those int_agent_runs re-priced, and
        those whose team or local day control now gives otherwise (a team added or renamed, a
        tenant's time zone changed). Only the tenants whose recorded version (their teams, time
        zone and the prices int_agent_runs recorded: fct_agent_runs_versions) moved are looked
        at. -#}
    {{ add_changed_runs(
        "select built.tenant_id, built.agent_run_id from " ~ this ~ " as built"
        ~ " inner join " ~ ref('int_agent_runs') ~ " as runs"
        ~ " on runs.tenant_id = built.tenant_id and runs.agent_run_id = built.agent_run_id"
        ~ " where (runs.cost_usd, runs.input_cost_usd, runs.output_cost_usd, runs.cache_read_cost_usd,"
        ~ " runs.cache_write_cost_usd, runs.cost_source) is distinct from (built.cost_usd, built.input_cost_usd,"
        ~ " built.output_cost_usd, built.cache_read_cost_usd, built.cache_write_cost_usd, built.cost_source) "
        ~ and_tenant('built') ~ " " ~ and_tenant_version_changed('built')
    ) }};
    {{ add_changed_runs(
        "select built.tenant_id, built.agent_run_id from " ~ this ~ " as built"
        ~ " inner join (select names.tenant_id, names.team_name, matched.team_id"
        ~ " from (select distinct tenant_id, team_name from " ~ this ~ " as named where team_name is not null "
        ~ and_tenant('named') ~ " " ~ and_tenant_version_changed('named') ~ ") as names"
        ~ " left join lateral (" ~ matched_team(source('control', 'teams'), 'names') ~ ") as matched on true) as current"
        ~ " on current.tenant_id = built.tenant_id and current.team_name = built.team_name"
        ~ " where current.team_id is distinct from built.team_id " ~ and_tenant('built') ~ " " ~ and_tenant_version_changed('built')
    ) }};
    {{ add_changed_runs(
        "select built.tenant_id, built.agent_run_id from " ~ this ~ " as built"
        ~ " left join " ~ source('control', 'tenants') ~ " as tenants on tenants.slug = built.tenant_id"
        ~ " where built.run_date is distinct from"
        ~ " (coalesce(built.started_at, built.updated_at) at time zone tenants.timezone)::date "
        ~ and_tenant('built') ~ " " ~ and_tenant_version_changed('built')
    ) }}
{%- endmacro %}

{#- Aggregates rebuilt per group. -#}

{% macro per_run_group_table(group_column, renames_teams=false) -%}
    {#- Config of an aggregate of fct_agent_runs rebuilt per (tenant, group) (see above):
        `group_column` its column of the group (as agent_run_aggregates() names it);
        `renames_teams`: its rows name control.teams teams (team_id, team_name), so a group
        with a team renamed since is rebuilt too. -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_changed_run_groups() }}",
        renames_teams=renames_teams,
        indexes=[{'columns': ['tenant_id', group_column]}]
    ) }}
{%- endmacro %}

{% macro changed_groups_relation() -%}
    pg_temp.changed_groups__{{ this.name }}
{%- endmacro %}

{% macro replace_changed_run_groups() -%}
    {%- set run_column, group_column = agent_run_aggregates()[this.name] -%}
    {%- set runs = ref('fct_agent_runs') -%}
    {{ create_run_changes() }};
    {%- if is_incremental() %}
    drop table if exists {{ changed_groups_relation() }};
    create temporary table {{ changed_groups_relation() }} (tenant_id text not null, group_key date not null);
    -- take this aggregate's entries of the change log
    with taken as (
        delete from {{ run_changes_relation() }}
        where aggregate = '{{ this.name }}' {{ and_tenant() }}
        returning tenant_id, {{ run_column }} as group_key, whole_tenant
    ),
    whole as (
        select distinct tenant_id from taken where whole_tenant
        {%- if var('rebuild', false) %}
        union
        select distinct tenant_id from {{ runs }} {{ tenant_filter() }}
        union
        select distinct tenant_id from {{ this }} {{ tenant_filter() }}
        {%- endif %}
    )
    insert into {{ changed_groups_relation() }} (tenant_id, group_key)
    select tenant_id, group_key from taken
    where not whole_tenant and group_key is not null
    union
    select runs.tenant_id, runs.{{ run_column }} from {{ runs }} as runs
    where runs.tenant_id in (select tenant_id from whole) and runs.{{ run_column }} is not null
    union
    select built.tenant_id, built.{{ group_column }} from {{ this }} as built
    where built.tenant_id in (select tenant_id from whole)
    {%- if config.get('renames_teams') %}
    union
    -- groups naming a team control now names otherwise (renamed, or gone)
    select built.tenant_id, built.{{ group_column }} from {{ this }} as built
    left join {{ source('control', 'teams') }} as teams
        on teams.team_id = built.team_id
    where built.team_id is not null and built.team_name is distinct from teams.name {{ and_tenant('built') }}
    {%- endif %};
    create unique index on {{ changed_groups_relation() }} (tenant_id, group_key);
    analyze {{ changed_groups_relation() }};
    -- A tenant without runs any more (offboarded) keeps no rows (its tenants and their runs
    -- looked up by index, one probe each).
    delete from {{ this }} as built
    where built.tenant_id in (
        select held.tenant_id from ({{ tenant_maxima(this, group_column) }}) as held
        where not exists (select from {{ runs }} as runs where runs.tenant_id = held.tenant_id)
    );
    delete from {{ this }} as built
    using {{ changed_groups_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.{{ group_column }} = changed.group_key
    {%- else %}
    -- built in full: every entry of the partition is done
    delete from {{ run_changes_relation() }} where aggregate = '{{ this.name }}' {{ and_tenant() }}
    {%- endif -%}
{%- endmacro %}

{% macro and_run_group_in_batch(alias=none) -%}
    {#- In an incremental build of an aggregate, restrict a query on fct_agent_runs (that has a
        where clause) to the groups it rebuilds. -#}
    {%- if is_incremental() -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    and ({{ prefix }}tenant_id, {{ prefix }}{{ agent_run_aggregates()[this.name][0] }})
        in (select tenant_id, group_key from {{ changed_groups_relation() }})
    {%- endif -%}
{%- endmacro %}
