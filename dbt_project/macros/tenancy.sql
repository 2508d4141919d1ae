{#- Tenancy: raw data lands in one schema per tenant and source (raw_<source>__<tenant>);
    marts hold every tenant, keyed by tenant_id, guarded by row-level security. -#}

{% macro tenant_schemas(source_type, table_name) -%}
    {#- The tenant schemas that hold <table_name> for <source_type>, as (schema, tenant) pairs:
        raw_<source_type>__<slug> for every tenant in control.tenants (so no other schema,
        such as a loader's scratch copy, is ever mistaken for a tenant).
        Always every tenant: staging views are shared, marts filter to their partition.
        Read from the catalog itself (information_schema.tables took 10-17 ms a time, its
        planning alone 6 ms, against 1-2 ms), once per dbt invocation: the first call reads every
        tenant's raw tables of every source type in one statement. A build asked about 140 times
        for some 30 tables (a staging model asks for each of its tables when compiled and again
        in its hooks); read per table, that was 35 statements dbt sends and logs at every build.
        The answer is kept in `graph`, the one mapping of the invocation's nodes that every node's
        context shares, under a key of the invocation's own: the next invocation (each build)
        reads the catalog again, even one given the same manifest in the same process. A table
        created while the invocation runs is seen by the next one, as a tenant added meanwhile. -#}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set known = graph.get('pulse_tenant_schemas__' ~ invocation_id) -%}
    {%- if known is none -%}
        {%- set known = {} -%}
        {#- raw_<source type>__<slug>: the source type is what lies between 'raw_' and '__<slug>'
            (by position: LIKE would read a slug's '_' as any character) -#}
        {%- set query -%}
            -- (schema names joined by spaces: run_query's table turns an array into text)
            select source_type, relname, string_agg(nspname, ' ' order by nspname)
            from (
                select
                    substr(namespaces.nspname, 5, length(namespaces.nspname) - length(tenants.slug) - 6)
                        as source_type,
                    relations.relname::text,
                    namespaces.nspname::text
                from pg_catalog.pg_class as relations
                inner join pg_catalog.pg_namespace as namespaces on namespaces.oid = relations.relnamespace
                inner join control.tenants as tenants
                    on right(namespaces.nspname, length(tenants.slug) + 2) = '__' || tenants.slug
                where left(namespaces.nspname, 4) = 'raw_'
                    and length(namespaces.nspname) > length(tenants.slug) + 6
                    and relations.relkind in ('r', 'p', 'v', 'f')
                    and pg_catalog.has_table_privilege(relations.oid, 'select')
            ) as tables
            group by source_type, relname
        {%- endset -%}
        {%- for kind, table, schemas in run_query(query).rows -%}
            {%- set prefix = 'raw_' ~ kind ~ '__' -%}
            {%- set pairs = [] -%}
            {%- for schema in schemas.split(' ') -%}
                {%- do pairs.append((schema, schema[prefix | length:])) -%}
            {%- endfor -%}
            {%- do known.update({kind ~ '.' ~ table: pairs}) -%}
        {%- endfor -%}
        {%- do graph.update({'pulse_tenant_schemas__' ~ invocation_id: known}) -%}
    {%- endif -%}
    {{ return(known.get(source_type ~ '.' ~ table_name, [])) }}
{%- endmacro %}

{% macro show_tenant_schemas(tables) -%}
    {#- Operator's view of what the staging views union: for each [source type, raw table] of
        `tables`, the tenant schemas that hold it, printed as JSON, one line per table:
        dbt run-operation show_tenant_schemas --args '{tables: [[github, pull_requests]]}' -#}
    {%- for source_type, table_name in tables -%}
        {%- do print(tojson({'source_type': source_type, 'table': table_name,
            'schemas': tenant_schemas(source_type, table_name)})) -%}
    {%- endfor -%}
{%- endmacro %}

{% macro union_tenant_sources(source_relation, source_type, columns) -%}
    {#- Every tenant's copy of a declared source, with tenant_id added. The source() call that
        produced source_relation keeps lineage; its schema is a template replaced per tenant.
        With no tenant loaded yet this is an empty relation with the same columns. -#}
    {%- set pairs = tenant_schemas(source_type, source_relation.identifier) -%}
    {%- if pairs | length == 0 %}
    select null::text as tenant_id
        {%- for column in columns %}, null::text as {{ column }}{% endfor %}
    where false
    {%- else -%}
    {%- for schema, tenant in pairs %}
    select '{{ tenant }}'::text as tenant_id
        {%- for column in columns %}, {{ column }}{% endfor %}
    from {{ source_relation.incorporate(path={"schema": schema}) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{% macro tenant_source_maxima(source_relation, source_type, column) -%}
    {#- (tenant_id, <column>): per tenant of the partition holding a copy of a declared source,
        the copy's largest `column` as stored. A scalar max() of one table, which PostgreSQL reads
        from an index on the column (one probe) where there is one. For dlt load ids (epoch
        seconds with a fraction, as text; all of ten integer digits until the year 2286) the
        text order is the time order. -#}
    {%- set pairs = tenant_schemas(source_type, source_relation.identifier) -%}
    {%- set tenant = partition_tenant() -%}
    {%- set parts = [] -%}
    {%- for schema, slug in pairs if tenant is none or slug == tenant -%}
        {%- do parts.append("select '" ~ slug ~ "'::text as tenant_id, (select max(" ~ column ~ ") from "
            ~ source_relation.incorporate(path={"schema": schema}) ~ ") as " ~ column) -%}
    {%- endfor -%}
    {%- if parts -%}
    {{ parts | join('\n    union all\n    ') }}
    {%- else -%}
    select null::text as tenant_id, null::text as {{ column }} where false
    {%- endif -%}
{%- endmacro %}

{% macro run_var(name) -%}
    {#- A setting of one run (tenant_id, as_of): the var when given (`--vars`), else the
        environment variable PULSE_DBT_<NAME> (unset or empty: none). The orchestrator and the
        benchmark set the environment variable: a change of `--vars` makes dbt parse the whole
        project again (seconds, in every tenant's run), while an environment variable read only
        when executing (`execute`) is one dbt's parser never sees. -#}
    {%- set value = var(name, none) -%}
    {%- if value is none and execute -%}
        {%- set value = env_var('PULSE_DBT_' ~ (name | upper), '') or none -%}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}

{% macro partition_tenant() -%}
    {#- The tenant whose partition is being built; none builds every tenant. -#}
    {{- return(run_var('tenant_id')) -}}
{%- endmacro %}

{% macro tenant_filter(alias=none) -%}
    {#- Restrict a model to the tenant partition being built, if any. -#}
    {%- if partition_tenant() is not none -%}
    where {% if alias %}{{ alias }}.{% endif %}tenant_id = '{{ partition_tenant() }}'
    {%- endif -%}
{%- endmacro %}

{% macro enable_tenant_rls() -%}
    {#- Row-level security on a mart: the reader role sees the rows of the tenants declared for
        its transaction (control.tenant_visible), and none when none is declared.

        Written only when the mart lacks it: ALTER TABLE … ENABLE ROW LEVEL SECURITY and CREATE
        POLICY take an ACCESS EXCLUSIVE lock on the mart, which waits for every open reader of
        it (an analyst's long query, a dashboard's transaction) while every reader after waits
        behind it. A build that changes a mart's rows only needs ROW EXCLUSIVE. So one catalog
        read decides: security enabled; the policy there as these statements write it (command,
        permissive, role, expression) and written by this version of them (its comment is their
        md5, tenant_rls_fingerprint()); the reader role able to select. Otherwise (a mart built
        anew by a full refresh, the first build after the statements changed, a policy altered
        by hand) the statements run, and lock the mart once.

        The hook runs after the build's rows are written (holding ROW EXCLUSIVE): two partitions'
        builds of one mart that both write the policy would deadlock on the upgrade; the one
        PostgreSQL picks leaves it to the other (dbt's pool runs one build at a time anyway). -#}
    {%- set rls = tenant_rls_policy() -%}
    do $$
    begin
        if not exists (
            select
            from pg_class as mart
            join pg_policy as policy on policy.polrelid = mart.oid
            where mart.oid = '{{ this }}'::regclass
                and mart.relrowsecurity
                and policy.polname = '{{ rls.name }}'
                and policy.polcmd = 'r'
                and policy.polpermissive
                and policy.polroles = array['{{ rls.role }}'::regrole::oid]
                and pg_get_expr(policy.polqual, policy.polrelid) = '{{ rls.using }}'
                and policy.polwithcheck is null
                and obj_description(policy.oid, 'pg_policy') = '{{ tenant_rls_fingerprint() }}'
        ) or not has_table_privilege('{{ rls.role }}', '{{ this }}'::regclass, 'select') then
            begin
                {{ tenant_rls_statements(this) | indent(16) }}
                comment on policy {{ rls.name }} on {{ this }} is '{{ tenant_rls_fingerprint() }}';
            exception when deadlock_detected then
                raise notice 'another build is writing the row-level security of %', '{{ this }}';
            end;
        end if;
    end
    $$
{%- endmacro %}

{% macro tenant_rls_policy() -%}
    {#- The marts' policy: its name, the role it is for, and its expression as PostgreSQL prints it. -#}
    {{- return({'name': 'tenant_isolation', 'role': 'pulse_reader', 'using': 'control.tenant_visible(tenant_id)'}) -}}
{%- endmacro %}

{% macro tenant_rls_statements(relation) -%}
    {%- set rls = tenant_rls_policy() -%}
    alter table {{ relation }} enable row level security;
    drop policy if exists {{ rls.name }} on {{ relation }};
    create policy {{ rls.name }} on {{ relation }} for select to {{ rls.role }}
        using ({{ rls.using }});
    grant select on {{ relation }} to {{ rls.role }};
{%- endmacro %}

{% macro tenant_rls_fingerprint() -%}
    {#- The comment of a policy written by tenant_rls_statements: an md5 of them (for any mart), so
        a change of the statements writes every mart's policy again in its next build. -#}
    {{- 'pulse rls v1, md5 ' ~ local_md5(tenant_rls_statements('<mart>')) -}}
{%- endmacro %}

{% macro grant_reader_usage() -%}
    {%- if execute -%}
    do $$
    begin
        if exists (select from pg_namespace where nspname = 'marts') then
            grant usage on schema marts to pulse_reader;
        end if;
    end
    $$
    {%- endif -%}
{%- endmacro %}

{% macro as_of() -%}
    {#- The moment "now" means in a build: as_of when set (run_var; a re-run for a past window gives
        identical results), else the start of the dbt run. Open intervals (still blocked, still
        in progress) are measured up to it. -#}
    {%- if run_var('as_of') is not none -%}
    '{{ run_var('as_of') }}'::timestamptz
    {%- else -%}
    '{{ run_started_at.isoformat() }}'::timestamptz
    {%- endif -%}
{%- endmacro %}

{#- Views never filter by tenant: a view is created once and read by everyone, so a filter
    baked in by one partition's build would hide every other tenant. Models that are built per
    tenant partition (incremental, delete-then-insert) filter where they read. -#}

{% macro and_tenant(alias=none) -%}
    {#- tenant_filter() for a query that already has a where clause. -#}
    {%- if partition_tenant() is not none -%}
    and {% if alias %}{{ alias }}.{% endif %}tenant_id = '{{ partition_tenant() }}'
    {%- endif -%}
{%- endmacro %}

{% macro per_tenant_table(key=none) -%}
    {#- Config of an intermediate model stored as a table and rebuilt per tenant partition, as the
        marts are (the partition's rows selected anew, written as a diff: macros/sync_strategy.sql,
        rows matched by `key`). -#}
    {{ config(materialized='incremental', incremental_strategy='sync', unique_key=key) }}
{%- endmacro %}

{% macro stored_tenants(relation) -%}
    {#- The distinct tenant_id of the partition in a relation with an index led by tenant_id:
        one index probe per tenant (a loose index scan) rather than a read of every row. -#}
    {%- if partition_tenant() is not none -%}
    {#- max() is answered from the index (a `limit 1` alone may be planned as a read of the
        table from its start until a row of the tenant turns up) -#}
    select tenant_id from (select max(tenant_id) as tenant_id from {{ relation }} {{ tenant_filter() }}) as present
    where tenant_id is not null
    {%- else -%}
    with recursive tenants as (
        (select tenant_id from {{ relation }} where tenant_id is not null order by tenant_id limit 1)
        union all
        select (
            select later.tenant_id from {{ relation }} as later
            where later.tenant_id > tenants.tenant_id
            order by later.tenant_id
            limit 1
        )
        from tenants
        where tenants.tenant_id is not null
    )
    select tenant_id from tenants where tenant_id is not null
    {%- endif -%}
{%- endmacro %}

{% macro rows_loaded_since(rows, columns, tenant, loaded_at=none) -%}
    {#- For a lateral join: the rows of `rows` (a query over raw tables with tenant_id, load_id
        (the dlt load id as stored) and loaded_at) of `tenant` (an expression) loaded after
        `loaded_at` (an expression; none: every row of the tenant), read through the raw tables'
        load id indexes (`load_id >= ...`: the load id no newer load sorts before); `columns`,
        the ones to return. -#}
    (
        select {% for column in columns %}loads.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
        from ({{ rows }}) as loads
        where loads.tenant_id = {{ tenant }}
        {%- if loaded_at is not none %}
            and loads.load_id >= floor(extract(epoch from {{ loaded_at }}))::bigint::text
            and loads.loaded_at > {{ loaded_at }}
        {%- endif %}
        offset 0
    )
{%- endmacro %}

{% macro tenants_gone(relation, present) -%}
    {#- The tenants of the partition that `relation` (with an index led by tenant_id) holds rows
        of and `present` (a relation with a tenant_id column, indexed or small) has none of: read
        tenant by tenant through the indexes, not row by row. -#}
    select stored.tenant_id
    from ({{ stored_tenants(relation) }}) as stored
    where not exists (select from {{ present }} as present where present.tenant_id = stored.tenant_id)
{%- endmacro %}

{% macro tenant_maxima(relation, column) -%}
    {#- Per tenant of the partition holding rows of `relation`, the largest `column` (as
        loaded_at): with an index on (tenant_id, column), one index probe per tenant instead of
        a pass over the table. -#}
    select tenants.tenant_id, (
        select max(held.{{ column }}) from {{ relation }} as held where held.tenant_id = tenants.tenant_id
    ) as loaded_at
    from ({{ stored_tenants(relation) }}) as tenants
{%- endmacro %}
