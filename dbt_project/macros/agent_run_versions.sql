{#- Versions of what a per-run model reads besides its runs (macros/incremental_runs.sql).

    A row of int_agent_runs also reads model_prices; a row of fct_agent_runs reads control.teams
    (its team), control.tenants (its local day) and int_agent_runs' prices (its costs, which a
    re-pricing changes without loading the run again). Comparing every row with what those give
    now costs a pass over the model on every build; instead each model records, per tenant, an
    md5 of what its rows read (intermediate.agent_run_versions: model, tenant_id, version), and
    its `also` macro compares rows only for the tenants whose version differs from the recorded
    one (or has none recorded yet: a tenant built before versions were kept is compared once).

    A model declares `versions` (per_agent_run_table): a macro taking the SQL of a list of
    tenants (tenant_id) and selecting (tenant_id, version) for them. An incremental build's
    pre-hook snapshots the versions of the tenants it builds (those with runs), lists those whose
    version moved in {{ changed_versions_relation() }} (every tenant with var rebuild), and,
    after its `also` macro, records the snapshot: in the build's transaction, so a build that
    fails records nothing. A build in full records the versions of its tenants in a post-hook. -#}

{% macro run_versions_relation() -%}
    {{ api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', none), identifier='agent_run_versions') }}
{%- endmacro %}

{% macro create_run_versions() -%}
    create table if not exists {{ run_versions_relation() }} (
        model text not null,
        tenant_id text not null,
        version text not null,
        primary key (model, tenant_id)
    )
{%- endmacro %}

{% macro current_versions_relation() -%}
    pg_temp.run_versions__{{ this.name }}
{%- endmacro %}

{% macro changed_versions_relation() -%}
    pg_temp.changed_versions__{{ this.name }}
{%- endmacro %}

{% macro snapshot_run_versions(versions) -%}
    {#- Pre-hook of an incremental build (after run_watermarks_relation() is made): the current
        versions of the tenants with runs, and the tenants whose recorded version differs. -#}
    {{ create_run_versions() }};
    drop table if exists {{ current_versions_relation() }};
    create temporary table {{ current_versions_relation() }} as
        {{ context[versions]("select tenant_id from " ~ run_watermarks_relation()) }};
    drop table if exists {{ changed_versions_relation() }};
    create temporary table {{ changed_versions_relation() }} as
        select current.tenant_id
        from {{ current_versions_relation() }} as current
        left join {{ run_versions_relation() }} as recorded
            on recorded.model = '{{ this.name }}' and recorded.tenant_id = current.tenant_id
        where recorded.version is distinct from current.version or {{ var('rebuild', false) }};
    analyze {{ changed_versions_relation() }}
{%- endmacro %}

{% macro record_run_versions(versions_sql) -%}
    {#- Replace the model's recorded versions of the partition with the rows of versions_sql. -#}
    {{ create_run_versions() }};
    delete from {{ run_versions_relation() }} where model = '{{ this.name }}' {{ and_tenant() }};
    insert into {{ run_versions_relation() }} (model, tenant_id, version)
    select '{{ this.name }}', recorded.tenant_id, recorded.version
    from ({{ versions_sql }}) as recorded
    where recorded.version is not null {{ and_tenant('recorded') }}
{%- endmacro %}

{% macro record_built_run_versions() -%}
    {#- Post-hook: after a build in full, the versions of the partition's tenants (an incremental
        build recorded its snapshot in its pre-hook). -#}
    {%- set versions = config.get('run_versions') -%}
    {%- if execute and not is_incremental() -%}
    {{ record_run_versions(context[versions]("select distinct tenant_id from " ~ this ~ " " ~ tenant_filter())) }}
    {%- endif -%}
{%- endmacro %}

{% macro and_tenant_version_changed(alias) -%}
    {#- For `also` macros: restrict a query (with a where clause) to the tenants whose version
        moved since the model last recorded it. -#}
    and {{ alias }}.tenant_id in (select tenant_id from {{ changed_versions_relation() }})
{%- endmacro %}

{#- The versions of the two per-run models. -#}

{% macro int_agent_runs_versions(tenants_sql) -%}
    {#- int_agent_runs: the model_prices table (prices_version(), also kept on every row). -#}
    select tenants.tenant_id, {{ prices_version() }} as version
    from ({{ tenants_sql }}) as tenants
{%- endmacro %}

{% macro fct_agent_runs_versions(tenants_sql) -%}
    {#- fct_agent_runs: the tenant's teams and time zone, and the prices int_agent_runs recorded
        for the tenant (int_agent_runs' own version). -#}
    select
        tenants.tenant_id,
        md5(row(priced.version, control_tenants.timezone, teams.teams)::text) as version
    from ({{ tenants_sql }}) as tenants
    left join {{ run_versions_relation() }} as priced
        on priced.model = 'int_agent_runs' and priced.tenant_id = tenants.tenant_id
    left join {{ source('control', 'tenants') }} as control_tenants
        on control_tenants.slug = tenants.tenant_id
    left join (
        select tenant_id, string_agg(row(team_id, slug, name)::text, ',' order by team_id) as teams
        from {{ source('control', 'teams') }}
        group by tenant_id
    ) as teams
        on teams.tenant_id = tenants.tenant_id
{%- endmacro %}
