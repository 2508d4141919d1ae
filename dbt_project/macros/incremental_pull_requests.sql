{#- Incremental by changed pull request: int_pull_request_refs, int_pull_request_work_items and
    int_pull_requests_unified (compare macros/incremental.sql, the same idea for work items).

    Each is built once in full, then, on every later build, only for the pull requests with a
    raw git row (the pull request, a review or reviewer, a commit, an Azure work-item link)
    loaded (dlt load id) after the model's watermark: a changed pull request's every row is
    deleted and built again. Their column contracts carry no load, so the watermarks live in a
    table of their own, intermediate.pull_request_builds (model, tenant_id): the newest raw
    load the model's last build saw when it began, the version of the lookups it read and,
    for a model that reads work items, the newest work item load it saw. A build:
      1. (pre-hook) snapshots, in temporary tables of its session, the new watermarks (each
         tenant's newest raw load as the build begins), finds the pull requests with a raw row
         loaded after the old watermark (all of a tenant never built, or whose lookups changed; plus those its
         `also` macro names and those another model logged for it), then deletes their rows;
      2. (the model) builds the rows of exactly those pull requests;
      3. (post-hook) records the new watermarks.
    All in the build's transaction, so a failed build changes nothing.

    What a model reads besides a pull request's own rows:
      - int_pull_requests_unified: the GitHub login → email mapping (stg_github__users, made
        from every commit of the tenant) for author and reviewer emails: a lookups version, a
        tenant whose mapping changed is rebuilt whole; and the pull request's links with their
        items' keys, which int_pull_request_work_items logs for it (below).
      - int_pull_request_work_items: the tenant's work items (a new item, or an item whose key
        changed, links or unlinks an old pull request): it rebuilds, besides the loaded pull
        requests, those naming (int_pull_request_refs), tool-linking or linked to an item
        loaded since its item watermark; and it logs every pull request it rebuilds, in
        intermediate.pull_request_changes, for int_pull_requests_unified, which takes (deletes)
        its entries in its own build's transaction (so entries wait for it if it is not built).
        A build in full logs each tenant whole (pull_request_id null).
      - fct_pull_requests reads only int_pull_requests_unified, which logs its rebuilt pull
        requests for it likewise (and a tenant whole when its raw data is gone).
    A tenant whose raw git data is gone loses its rows. A pull request or work item deleted
    from the raw tables keeps its rows (dlt's merge never deletes): var rebuild=true rebuilds
    every pull request of the partition. After changing a model's logic, rebuild it with
    `dbt build --full-refresh --select <model>+`. Unit tests run the full path. -#}

{% macro pull_request_tables() -%}
    {#- The raw git tables, with their pull request id column. -#}
    {{ return([
        ('github', 'pull_requests', 'id'),
        ('github', 'reviews', 'pull_request_id'),
        ('github', 'commits', 'pull_request_id'),
        ('azure_devops_git', 'pull_requests', 'id'),
        ('azure_devops_git', 'reviewers', 'pull_request_id'),
        ('azure_devops_git', 'commits', 'pull_request_id'),
        ('azure_devops_git', 'pull_request_work_items', 'pull_request_id'),
    ]) }}
{%- endmacro %}

{% macro pull_request_loads(tables) -%}
    {#- (tenant_id, pull_request_id, load_id, loaded_at) of every row of the raw git tables named
        (table names, as pull_request_tables()) of the partition: load_id is the row's dlt load
        id as stored (text, indexed), loaded_at the same as a time. -#}
    {%- for source_type, table, key in pull_request_tables() if table in tables %}
    select raw_rows.tenant_id, '{{ source_type }}:' || raw_rows.{{ key }}::text as pull_request_id,
        raw_rows._dlt_load_id as load_id,
        to_timestamp(raw_rows._dlt_load_id::double precision) as loaded_at
    from ({{ union_tenant_sources(source(source_type, table), source_type, [key, '_dlt_load_id']) }}) as raw_rows
    where raw_rows.tenant_id is not null {{ and_tenant('raw_rows') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{% macro pull_request_sources(tables) -%}
    {#- The raw git tables named (as pull_request_tables()), as (source name, table) pairs. -#}
    {%- set pairs = [] -%}
    {%- for source_type, table, key in pull_request_tables() if table in tables -%}
        {%- do pairs.append((source_type, table)) -%}
    {%- endfor -%}
    {{ return(pairs) }}
{%- endmacro %}

{% macro pull_request_key_expressions(tables=none, source_type=none) -%}
    {#- For index_raw_load_ids: an index on the pull request key ('<source>:<id>', as the staging
        views compute it) of every tenant's copy of the raw git tables named (all when none; of
        one source type when source_type is given), so
        that a read of a staging view by pull request key (rows_of_batch_pull_requests) is one
        index probe per copy, not a read of every row. The expression must stay the views'
        own: `'<source>:' || <id column>::text` (the ids are bigint). -#}
    {%- set quadruples = [] -%}
    {%- for source, table, key in pull_request_tables()
        if (tables is none or table in tables) and (source_type is none or source == source_type) -%}
        {%- do quadruples.append((source, table, 'pull_request_key', "'" ~ source ~ ":' || " ~ key ~ "::text")) -%}
    {%- endfor -%}
    {{ return(quadruples) }}
{%- endmacro %}

{% macro azure_activity_indexes() -%}
    {#- For index_raw_load_ids' item_ids: an index on the pull request id of every tenant's copy
        of Azure's raw reviewers and commits, which stg_azure_devops_git__pull_requests reads
        per pull request (its latest vote, comment and commit). Ensured by that view and by
        every model reading it. -#}
    {{ return([
        ('azure_devops_git', 'reviewers', 'pull_request_id'),
        ('azure_devops_git', 'commits', 'pull_request_id'),
    ]) }}
{%- endmacro %}

{% macro rows_of_batch_pull_requests(relation, alias) -%}
    {#- A from item: the rows of `relation` (a relation or view with tenant_id and
        pull_request_id), as `alias`, of the pull requests this build rebuilds. In an incremental
        build, one read by index per pull request of the batch (lateral_index_read; through a
        staging view, the raw copies' pull request key indexes, pull_request_key_expressions):
        a join with the batch read every row of the view (0.3 s for the reviews at 50 tenants x
        2 years, and as much for the commits, growing with the history), where a probe costs
        0.03-0.13 ms. A batch of more than var `pull_requests_read_by_key_up_to` pull requests
        (5,000: tenants rebuilt whole, `rebuild: true`) is joined to the view as before, since
        reading it all is then the cheaper: the choice is made when the statement runs (a
        one-time filter on the batch's size) and only one of the two reads is executed. In a
        build in full, the relation itself (every row is read anyway): restrict it to the
        partition with and_tenant(alias). -#}
    {%- if is_incremental() -%}
    {%- set batch = changed_pull_requests_relation() -%}
    {%- set up_to = var('pull_requests_read_by_key_up_to', 5000) | int -%}
    (
        select {{ alias }}.*
        from {{ batch }} as {{ alias }}__batch
        {{ lateral_index_read(relation, alias,
            match=alias ~ '.tenant_id = ' ~ alias ~ '__batch.tenant_id and ' ~ alias ~ '.pull_request_id = '
                ~ alias ~ '__batch.pull_request_id',
            columns=alias ~ '.*') }}
        where (select count(*) from {{ batch }}) <= {{ up_to }}
        union all
        select {{ alias }}.*
        from {{ relation }} as {{ alias }}
        where ({{ alias }}.tenant_id, {{ alias }}.pull_request_id) in (select tenant_id, pull_request_id from {{ batch }})
            and (select count(*) from {{ batch }}) > {{ up_to }}
    ) as {{ alias }}
    {%- else -%}
    {{ relation }} as {{ alias }}
    {%- endif -%}
{%- endmacro %}

{% macro pull_request_newest_loads(tables) -%}
    {#- (tenant_id, _dlt_load_id): per tenant of the partition and raw git table named, the newest
        dlt load id, read from the table's load id index (one index probe each). -#}
    {%- set parts = [] -%}
    {%- for source_type, table, key in pull_request_tables() if table in tables -%}
        {%- do parts.append(tenant_source_maxima(source(source_type, table), source_type, '_dlt_load_id')) -%}
    {%- endfor -%}
    {{ parts | join('\n    union all\n') }}
{%- endmacro %}

{% macro per_pull_request_table(tables, key=[], lookups=none, also=none, reads_items=false, logs_for=[], indexes=[]) -%}
    {#- Config of a per-pull-request model (see above). `tables`: the raw git tables (names) whose
        rows make a pull request's rows; `key`: the columns that, after the pull request, make
        a row unique (a unique index, so the database refuses a duplicate); `lookups`: the name
        of a macro selecting (tenant_id, lookups_version); `also`: the name of a macro of
        statements adding pull requests to {{ changed_pull_requests_relation() }};
        `reads_items`: keep a work item watermark; `logs_for`: the models to log the rebuilt
        pull requests for; `indexes`: the model's other indexes (macros/enforced_tests.sql,
        ensure_indexes: a lookup by other columns than the pull request's cannot use the unique
        index's later columns; it would read every entry of the tenant). -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_changed_pull_requests() }}",
        post_hook=["{{ record_pull_request_watermarks() }}", "{{ ensure_indexes() }}"],
        pull_request_tables=tables,
        pull_request_lookups=lookups,
        rebuild_also=also,
        reads_items=reads_items,
        logs_for=logs_for,
        indexes=[{'columns': ['tenant_id', 'pull_request_id'] + key, 'unique': true}],
        ensured_indexes=indexes
    ) }}
{%- endmacro %}

{% macro pull_request_builds_relation() -%}
    {{ api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', none), identifier='pull_request_builds') }}
{%- endmacro %}

{% macro pull_request_changes_relation() -%}
    {{ api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', none), identifier='pull_request_changes') }}
{%- endmacro %}

{% macro create_pull_request_changes() -%}
    {#- The log of rebuilt pull requests, by the model that is to read them again (consumer);
        a null pull_request_id stands for the whole tenant. -#}
    create table if not exists {{ pull_request_changes_relation() }} (
        consumer text not null,
        tenant_id text not null,
        pull_request_id text
    )
{%- endmacro %}

{% macro changed_pull_requests_relation() -%}
    pg_temp.changed_pull_requests__{{ this.name }}
{%- endmacro %}

{% macro pull_request_watermarks_relation() -%}
    pg_temp.pull_request_watermarks__{{ this.name }}
{%- endmacro %}

{% macro pull_request_loads_relation() -%}
    pg_temp.pull_request_loads__{{ this.name }}
{%- endmacro %}

{% macro replace_changed_pull_requests() -%}
    {%- set lookups = config.get('pull_request_lookups') -%}
    {%- set also = config.get('rebuild_also') -%}
    {{ index_raw_load_ids(
        pull_request_sources(config.get('pull_request_tables')),
        item_ids=azure_activity_indexes(),
        expressions=pull_request_key_expressions(config.get('pull_request_tables'))
    ) }};
    create table if not exists {{ pull_request_builds_relation() }} (
        model text not null,
        tenant_id text not null,
        loaded_at timestamptz,
        lookups_version text,
        items_loaded_at timestamptz,
        primary key (model, tenant_id)
    );
    {{ create_pull_request_changes() }};
    -- the newest raw load of each tenant as the build begins (its new watermark)
    drop table if exists {{ pull_request_loads_relation() }};
    -- (load ids are epoch seconds as text, in the database's order as in time's: see
    -- tenant_source_maxima)
    create temporary table {{ pull_request_loads_relation() }} as
        select tenant_id, to_timestamp(max(_dlt_load_id)::double precision) as loaded_at
        from ({{ pull_request_newest_loads(config.get('pull_request_tables')) }}) as newest
        where _dlt_load_id is not null
        group by tenant_id;
    drop table if exists {{ pull_request_watermarks_relation() }};
    create temporary table {{ pull_request_watermarks_relation() }} as
        select
            loads.tenant_id,
            loads.loaded_at,
            {% if lookups %}lookups.lookups_version{% else %}null::text{% endif %} as lookups_version,
            {% if config.get('reads_items') %}items.loaded_at{% else %}null::timestamptz{% endif %} as items_loaded_at
        from {{ pull_request_loads_relation() }} as loads
        {%- if lookups %}
        left join ({{ context[lookups]() }}) as lookups
            on lookups.tenant_id = loads.tenant_id
        {%- endif %}
        {%- if config.get('reads_items') %}
        left join (
            select tenant_id, max(loaded_at) as loaded_at
            from {{ ref('int_work_items__unioned') }}
            {{ tenant_filter() }}
            group by tenant_id
        ) as items
            on items.tenant_id = loads.tenant_id
        {%- endif %};
    {%- if is_incremental() %}
    -- the pull requests with a row loaded since: tenant by tenant, only the rows loaded since
    -- are read, through the raw tables' load id indexes; every one of a tenant not built yet,
    -- whose lookups changed, or that another model logged whole for this one
    {%- set whole_tenant -%}
        built.loaded_at is null
            or current.lookups_version is distinct from built.lookups_version
            or current.tenant_id in (
                select tenant_id from {{ pull_request_changes_relation() }}
                where consumer = '{{ this.name }}' and pull_request_id is null
            )
            or {{ var('rebuild', false) }}
    {%- endset %}
    drop table if exists {{ changed_pull_requests_relation() }};
    create temporary table {{ changed_pull_requests_relation() }} as
        select distinct loads.tenant_id, loads.pull_request_id
        from (
            select current.tenant_id, whole.pull_request_id
            from {{ pull_request_watermarks_relation() }} as current
            left join {{ pull_request_builds_relation() }} as built
                on built.model = '{{ this.name }}' and built.tenant_id = current.tenant_id
            cross join lateral {{ rows_loaded_since(
                pull_request_loads(config.get('pull_request_tables')), ['pull_request_id'], 'current.tenant_id'
            ) }} as whole
            where {{ whole_tenant }}
            union all
            select current.tenant_id, since.pull_request_id
            from {{ pull_request_watermarks_relation() }} as current
            inner join {{ pull_request_builds_relation() }} as built
                on built.model = '{{ this.name }}' and built.tenant_id = current.tenant_id
            cross join lateral {{ rows_loaded_since(
                pull_request_loads(config.get('pull_request_tables')), ['pull_request_id'], 'current.tenant_id',
                'built.loaded_at'
            ) }} as since
            where not ({{ whole_tenant }})
        ) as loads;
    create unique index on {{ changed_pull_requests_relation() }} (tenant_id, pull_request_id);
    -- the pull requests another model logged for this one
    insert into {{ changed_pull_requests_relation() }} (tenant_id, pull_request_id)
    select distinct tenant_id, pull_request_id from {{ pull_request_changes_relation() }}
    where consumer = '{{ this.name }}' and pull_request_id is not null {{ and_tenant() }}
    on conflict do nothing;
    delete from {{ pull_request_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }};
    {% if also %}{{ context[also]() }};{% endif %}
    analyze {{ changed_pull_requests_relation() }};
    {%- for consumer in config.get('logs_for') %}
    insert into {{ pull_request_changes_relation() }} (consumer, tenant_id, pull_request_id)
    select '{{ consumer }}', tenant_id, pull_request_id from {{ changed_pull_requests_relation() }};
    {%- endfor %}
    -- A tenant whose raw data is gone (offboarded) keeps no rows (nor its readers).
    drop table if exists pg_temp.gone_tenants__{{ this.name }};
    create temporary table pg_temp.gone_tenants__{{ this.name }} as
        {{ tenants_gone(this, pull_request_watermarks_relation()) }};
    {%- for consumer in config.get('logs_for') %}
    insert into {{ pull_request_changes_relation() }} (consumer, tenant_id, pull_request_id)
    select '{{ consumer }}', tenant_id, null::text from pg_temp.gone_tenants__{{ this.name }};
    {%- endfor %}
    delete from {{ this }} where tenant_id in (select tenant_id from pg_temp.gone_tenants__{{ this.name }});
    delete from {{ this }} as built
    using {{ changed_pull_requests_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.pull_request_id = changed.pull_request_id
    {%- else %}
    -- a build in full takes every entry logged for it
    delete from {{ pull_request_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }};
    {%- for consumer in config.get('logs_for') %}
    insert into {{ pull_request_changes_relation() }} (consumer, tenant_id, pull_request_id)
    select '{{ consumer }}', tenant_id, null from {{ pull_request_watermarks_relation() }};
    {%- endfor %}
    select 1
    {%- endif -%}
{%- endmacro %}

{% macro record_pull_request_watermarks() -%}
    delete from {{ pull_request_builds_relation() }} where model = '{{ this.name }}' {{ and_tenant() }};
    insert into {{ pull_request_builds_relation() }} (model, tenant_id, loaded_at, lookups_version, items_loaded_at)
    select '{{ this.name }}', tenant_id, loaded_at, lookups_version, items_loaded_at
    from {{ pull_request_watermarks_relation() }}
{%- endmacro %}

{% macro add_changed_pull_requests(select_sql) -%}
    {#- For `also` macros: add the (tenant_id, pull_request_id) rows of select_sql to the batch. -#}
    insert into {{ changed_pull_requests_relation() }} (tenant_id, pull_request_id)
    select distinct extra.tenant_id, extra.pull_request_id from ({{ select_sql }}) as extra
    on conflict do nothing
{%- endmacro %}

{% macro and_pull_request_in_batch(alias=none) -%}
    {#- Restrict a query (that has a where clause) to the partition and, in an incremental
        build, to the pull requests it rebuilds. -#}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    {{ and_tenant(alias) }}
    {%- if is_incremental() %}
    and ({{ prefix }}tenant_id, {{ prefix }}pull_request_id) in (
        select tenant_id, pull_request_id from {{ changed_pull_requests_relation() }}
    )
    {%- endif -%}
{%- endmacro %}

{% macro github_user_lookups() -%}
    {#- int_pull_requests_unified reads authors' and reviewers' emails through the GitHub login
        → email mapping. -#}
    {{ lookups_version("select tenant_id, user_id, email from " ~ ref('stg_github__users')) }}
{%- endmacro %}

{% macro pull_request_work_items_also() -%}
    {#- int_pull_request_work_items rebuilds, besides the loaded pull requests, every one that
        names, tool-links or is linked to a work item loaded since its item watermark. -#}
    drop table if exists pg_temp.changed_work_items__{{ this.name }};
    -- tenant by tenant, one range of the items' (tenant_id, loaded_at) index (a join of the
    -- watermarks to the items read every item: 0.2 s at 2 years, growing with the history)
    create temporary table pg_temp.changed_work_items__{{ this.name }} as
        select built.tenant_id, items.work_item_uid, items.source_system,
            lower(items.work_item_id) as work_item_id, lower(items.work_item_key) as work_item_key
        from {{ pull_request_builds_relation() }} as built
        cross join lateral (
            select * from {{ ref('int_work_items__unioned') }} as items
            where items.tenant_id = built.tenant_id
                and items.loaded_at > coalesce(built.items_loaded_at, '-infinity'::timestamptz)
            offset 0
        ) as items
        where built.model = '{{ this.name }}' {{ and_tenant('built') }};
    analyze pg_temp.changed_work_items__{{ this.name }};
    {{ add_changed_pull_requests(
        "select refs.tenant_id, refs.pull_request_id from " ~ ref('int_pull_request_refs') ~ " as refs"
        ~ " inner join pg_temp.changed_work_items__" ~ this.name ~ " as items"
        ~ " on items.tenant_id = refs.tenant_id and items.work_item_key = refs.ref"
        ~ " where refs.kind = 'key' and items.source_system in ('jira', 'clickup')"
        ~ " union all select refs.tenant_id, refs.pull_request_id from " ~ ref('int_pull_request_refs') ~ " as refs"
        ~ " inner join pg_temp.changed_work_items__" ~ this.name ~ " as items"
        ~ " on items.tenant_id = refs.tenant_id and items.work_item_id = refs.ref"
        ~ " where refs.kind = 'azure' and items.source_system = 'azure_boards'"
        ~ " union all select links.tenant_id, links.pull_request_id from " ~ ref('stg_azure_devops_git__pull_request_work_items') ~ " as links"
        ~ " inner join pg_temp.changed_work_items__" ~ this.name ~ " as items"
        ~ " on items.tenant_id = links.tenant_id and items.work_item_uid = 'azure_boards:' || links.work_item_id"
        ~ " union all select linked.tenant_id, linked.pull_request_id from " ~ this ~ " as linked"
        ~ " inner join pg_temp.changed_work_items__" ~ this.name ~ " as items"
        ~ " on items.tenant_id = linked.tenant_id and items.work_item_uid = linked.work_item_uid"
    ) }}
{%- endmacro %}

{#- Marts that follow int_pull_requests_unified pull request by pull request (fct_pull_requests):
    its build logs every pull request it rebuilt (and a tenant whole when it was built in full
    or the tenant's raw data is gone) in intermediate.pull_request_changes; such a mart takes
    (deletes) its entries in its own build's transaction, deletes those pull requests' rows and
    selects them again. -#}

{% macro per_logged_pull_request_table(key=[], moments_for=[]) -%}
    {#- `key`: the columns that, after the pull request, make a row unique (a unique index);
        `moments_for`: the sprint marts to log the moments of changed git facts for (a model of
        git moments: int_git_moments, see macros/incremental_sprints.sql). -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_logged_pull_requests() }}",
        post_hook="{{ log_git_moment_changes() }}" if moments_for else [],
        moments_for=moments_for,
        indexes=[{'columns': ['tenant_id', 'pull_request_id'] + key, 'unique': true}] if key else []
    ) }}
{%- endmacro %}

{% macro logged_tenants_relation() -%}
    pg_temp.logged_tenants__{{ this.name }}
{%- endmacro %}

{% macro keep_logged_rows(relation) -%}
    {#- (Re)create the temporary table `relation` with this model's rows of the batch
        replace_logged_pull_requests took: the logged pull requests and whole logged tenants. -#}
    drop table if exists {{ relation }};
    -- two reads by index, tenant by tenant and pull request by pull request (an `or` of the
    -- two conditions was one read of every row: 0.26 s at 2 years, growing with the history)
    create temporary table {{ relation }} as
        select built.* from {{ logged_tenants_relation() }} as whole
        cross join lateral (select * from {{ this }} where tenant_id = whole.tenant_id offset 0) as built
        union all
        select built.* from {{ changed_pull_requests_relation() }} as changed
        inner join {{ this }} as built
            on built.tenant_id = changed.tenant_id and built.pull_request_id = changed.pull_request_id
        where not exists (
            select from {{ logged_tenants_relation() }} as whole where whole.tenant_id = changed.tenant_id
        )
{%- endmacro %}

{% macro replace_logged_pull_requests() -%}
    -- (reads the raw git rows of its batch through the staging views by pull request key)
    {{ index_raw_load_ids([], expressions=pull_request_key_expressions()) }};
    {{ create_pull_request_changes() }};
    {%- if is_incremental() %}
    drop table if exists {{ logged_tenants_relation() }};
    create temporary table {{ logged_tenants_relation() }} as
        select distinct tenant_id from {{ pull_request_changes_relation() }}
        where consumer = '{{ this.name }}' and pull_request_id is null {{ and_tenant() }};
    drop table if exists {{ changed_pull_requests_relation() }};
    create temporary table {{ changed_pull_requests_relation() }} as
        select tenant_id, pull_request_id from {{ pull_request_changes_relation() }}
        where consumer = '{{ this.name }}' and pull_request_id is not null {{ and_tenant() }}
        union
        select pull_requests.tenant_id, pull_requests.pull_request_id
        from {{ ref('int_pull_requests_unified') }} as pull_requests
        inner join {{ logged_tenants_relation() }} as whole
            on whole.tenant_id = pull_requests.tenant_id;
    analyze {{ changed_pull_requests_relation() }};
    delete from {{ pull_request_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }};
    {%- if config.get('moments_for') %}
    -- the rows about to be rebuilt, as they were (log_git_moment_changes compares them with the new)
    {{ keep_logged_rows(previous_moments_relation()) }};
    {%- endif %}
    -- a tenant int_pull_requests_unified no longer has (offboarded) keeps no rows
    delete from {{ this }}
    where tenant_id in ({{ tenants_gone(this, ref('int_pull_requests_unified')) }});
    delete from {{ this }} where tenant_id in (select tenant_id from {{ logged_tenants_relation() }});
    delete from {{ this }} as built
    using {{ changed_pull_requests_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.pull_request_id = changed.pull_request_id
    {%- else %}
    delete from {{ pull_request_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }}
    {%- endif -%}
{%- endmacro %}
