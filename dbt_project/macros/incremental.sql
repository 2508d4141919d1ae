{#- Incremental by changed work items.

    The large per-item models (status history, sprint scope, unified items) are built once in
    full, then, on every later run, only for the work items loaded since they last ran: a work
    item's every row is deleted and rebuilt when any of its data changes, because every change
    of an item (status, sprint, points, fields) lands its row again with a new dlt load id
    (staging's loaded_at).

    Each row carries source_loaded_at, its item's loaded_at capped at the newest load the run
    saw when it began (its watermark); a tenant's watermark is the largest source_loaded_at
    of the model. A run:
      1. (pre-hook) snapshots, in temporary tables of its session, the items of its partition
         loaded after the watermark (plus any the model names: e.g. items still blocked, whose
         blocked time grows with as_of) and the new watermark, then deletes those items' rows;
      2. (the model) builds the rows of exactly those items, stamped with the new watermark
         at most, so an item loaded while the run was under way is picked up by the next one.
    A tenant the model has no row of yet is built whole; one whose raw data is gone loses its
    rows. (A single item deleted from the raw tables keeps its rows: dlt's merge never deletes.) var rebuild=true rebuilds every item
    of the partition (after a past window was re-loaded, or as_of moved back). After changing
    a model's logic, rebuild it for every tenant with `dbt build --full-refresh --select <model>`.
    Unit tests run the full path (is_incremental false). -#}

{% macro per_work_item_table(also=none, key=none, indexes=[], primary_key=false, joins_as_written=false,
                             before_replace=none) -%}
    {#- Config of a per-item model (see above). `also`: the name of a macro of statements that
        add items to rebuild besides the loaded ones to {{ changed_items_relation() }};
        `before_replace`: the name of a macro of statements run once the batch is known and
        before its rows are deleted (to keep what a change log needs of them); `key`:
        the columns that, after the item, make a row unique: the item index is then a unique
        index, so the database refuses a duplicate row (which a test would have to find by
        reading the whole table after every run); `primary_key`: the model's contract declares
        the primary key (tenant_id, work_item_uid), whose index is then the item index (a second
        one would only cost every write); `indexes`: the model's other indexes;
        `joins_as_written`: the planner joins the model's relations in the order its SQL writes
        them (join_collapse_limit = 1, for the model's statements only: the hook's come first),
        for a model whose row estimates of its CTEs are too far off to choose an order; and, in
        an incremental build, by hash: a batch's CTEs are estimated at a few rows (48 for
        11,810), and a merge join on the tenant alone then compared every pair of rows of a
        tenant (1.4M in int_sprint_scope's batch of 11,436; docs/scaling.md). -#}
    {%- set item_index = [] if primary_key else [
        {'columns': ['tenant_id', 'work_item_uid'] + (key or []), 'unique': key is not none}
    ] -%}
    {%- set hooks = ["{{ replace_changed_work_items() }}"] -%}
    {%- if joins_as_written -%}
        {%- do hooks.append("set local join_collapse_limit = 1") -%}
        {%- do hooks.append("set local enable_mergejoin = {{ 'off' if is_incremental() else 'on' }}") -%}
    {%- endif -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook=hooks,
        rebuild_also=also,
        before_replace=before_replace,
        item_key=key or [],
        indexes=item_index + [{'columns': ['tenant_id', 'source_loaded_at']}] + indexes
    ) }}
{%- endmacro %}

{% macro changed_items_relation() -%}
    pg_temp.changed_items__{{ this.name }}
{%- endmacro %}

{% macro watermarks_relation() -%}
    pg_temp.watermarks__{{ this.name }}
{%- endmacro %}

{% macro replace_changed_work_items() -%}
    {%- if is_incremental() -%}
    {%- set also = config.get('rebuild_also') -%}
    {%- set items = ref('int_work_items__unioned') -%}
    {%- set whole_tenant = "built.loaded_at is null or " ~ var('rebuild', false) -%}
    -- Every tenant's newest load, and the newest the table holds: read by index, tenant by tenant.
    drop table if exists {{ watermarks_relation() }};
    create temporary table {{ watermarks_relation() }} as
        {{ tenant_maxima(items, 'loaded_at') }};
    drop table if exists {{ built_watermarks_relation() }};
    create temporary table {{ built_watermarks_relation() }} as
        {{ tenant_maxima(this, 'source_loaded_at') }};
    analyze {{ watermarks_relation() }};
    analyze {{ built_watermarks_relation() }};
    -- the items loaded after what the table holds (every item of a tenant it holds nothing of)
    drop table if exists {{ changed_items_relation() }};
    create temporary table {{ changed_items_relation() }} as
        select current.tenant_id, whole.work_item_uid
        from {{ watermarks_relation() }} as current
        left join {{ built_watermarks_relation() }} as built
            on built.tenant_id = current.tenant_id
        cross join lateral (
            select work_item_uid from {{ items }} where tenant_id = current.tenant_id offset 0
        ) as whole
        where {{ whole_tenant }}
        union all
        select current.tenant_id, since.work_item_uid
        from {{ watermarks_relation() }} as current
        inner join {{ built_watermarks_relation() }} as built
            on built.tenant_id = current.tenant_id
        cross join lateral (
            select work_item_uid from {{ items }}
            where tenant_id = current.tenant_id and loaded_at > built.loaded_at
            offset 0
        ) as since
        where not ({{ whole_tenant }});
    create unique index on {{ changed_items_relation() }} (tenant_id, work_item_uid);
    {% if also %}{{ context[also]() }};{% endif %}
    analyze {{ changed_items_relation() }};
    {%- if config.get('sprint_inputs') %}
    -- the rows about to be rebuilt, as the sprint marts read them (log_sprint_inputs)
    {{ capture_sprint_inputs() }};
    {%- endif %}
    {%- if config.get('before_replace') %}
    -- what the model keeps of the rows about to be replaced (config before_replace)
    {{ context[config.get('before_replace')]() }};
    {%- endif %}
    -- A tenant whose raw data is gone (offboarded) keeps no rows.
    delete from {{ this }}
    where tenant_id in ({{ tenants_no_longer_loaded() }});
    delete from {{ this }} as built
    using {{ changed_items_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.work_item_uid = changed.work_item_uid
    {%- endif -%}
{%- endmacro %}

{% macro tenants_no_longer_loaded() -%}
    {#- The tenants the model holds rows of (its built watermarks) whose raw data is gone (no
        watermark now): a per-item model deletes their rows. -#}
    select built.tenant_id from {{ built_watermarks_relation() }} as built
    where not exists (select from {{ watermarks_relation() }} as loaded where loaded.tenant_id = built.tenant_id)
{%- endmacro %}

{% macro add_changed_items(select_sql) -%}
    {#- For `also` macros: add the (tenant_id, work_item_uid) rows of select_sql to the batch. -#}
    insert into {{ changed_items_relation() }} (tenant_id, work_item_uid)
    select distinct extra.tenant_id, extra.work_item_uid from ({{ select_sql }}) as extra
    on conflict do nothing
{%- endmacro %}

{% macro work_item_batch() -%}
    {#- The (tenant_id, work_item_uid) this run builds: every item of the partition, or, in an
        incremental run, the changed ones the pre-hook found. -#}
    {%- if is_incremental() -%}
    select tenant_id, work_item_uid from {{ changed_items_relation() }}
    {%- else -%}
    select tenant_id, work_item_uid from {{ ref('int_work_items__unioned') }} {{ tenant_filter() }}
    {%- endif -%}
{%- endmacro %}

{% macro load_watermarks() -%}
    {#- Per tenant, the newest load this run builds from: what it stamps rows with at most. -#}
    {%- if is_incremental() -%}
    select tenant_id, loaded_at from {{ watermarks_relation() }}
    {%- else -%}
    select tenant_id, max(loaded_at) as loaded_at
    from {{ ref('int_work_items__unioned') }} {{ tenant_filter() }}
    group by tenant_id
    {%- endif -%}
{%- endmacro %}

{% macro and_in_batch(alias=none) -%}
    {#- In an incremental run, restrict a query (that has a where clause) to the batch's items. -#}
    {%- if is_incremental() -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    and ({{ prefix }}tenant_id, {{ prefix }}work_item_uid) in (select tenant_id, work_item_uid from {{ changed_items_relation() }})
    {%- endif -%}
{%- endmacro %}

{% macro unified_items_also() -%}
    {#- int_work_items_unified rebuilds, besides the loaded items, the items blocked when it last
        ran (their blocked time grows with as_of) and the children and grandchildren of loaded
        items (their epic is read through their parent). -#}
    {{ add_changed_items("select tenant_id, work_item_uid from " ~ this ~ " where is_blocked_now " ~ and_tenant()) }};
    {#- each by index: the blocked items by a partial index, the children of each item of the
        batch by the (tenant_id, parent_uid) index of int_work_items__unioned, not by reading
        either table whole (0.13-0.16 s each at 50 tenants × 2 years, in every build) -#}
    {%- for generation in ['children', 'grandchildren'] %}
    {{ add_changed_items(
        "select child.tenant_id, child.work_item_uid from " ~ changed_items_relation() ~ " as parent "
        ~ lateral_index_read(
            ref('int_work_items__unioned'), 'child',
            match='child.tenant_id = parent.tenant_id and child.parent_uid = parent.work_item_uid',
            columns='child.tenant_id, child.work_item_uid')
    ) }};
    {%- endfor %}
{%- endmacro %}

{% macro sprint_scope_also() -%}
    {#- int_sprint_scope rebuilds, besides the loaded items, every item of a sprint whose window
        moved since it last ran (a sprint closed or re-dated) or that is no longer a started
        sprint, and every item that is or was in a sprint whose window now reaches past the
        latest moment the model measured for the tenant (a running sprint's end is as_of; a
        sprint that has started since may have no row yet).

        Each is found through the model's indexes, not by reading it whole (its every row joined
        to its sprint's window: 0.26-0.42 s at 50 tenants × 2 years, in every build, one with
        nothing new included; docs/scaling.md):
        - a sprint's rows carry the window they were measured with (never null: only started
          sprints are measured, and least() passes over a missing end). The window moved when a
          row of the sprint sorts below or above the current one in the (tenant_id, sprint_uid,
          scope_start_at, scope_end_at) index: two probes per started sprint;
        - the sprints held, one probe each through the same index (a loose index scan), against
          the started sprints: a sprint held but no longer started has every row rebuilt;
        - the latest moment measured, per tenant: one probe of the (tenant_id, scope_end_at)
          index. -#}
    {%- set windows = 'pg_temp.sprint_windows__' ~ this.name %}
    {%- set moved = 'pg_temp.moved_sprints__' ~ this.name %}
    {#- the indexes first: a table built before they were named gets them now (its post-hook
        would add them only after these probes had each read the whole table) -#}
    {{ ensure_indexes() }};
    -- the started sprints' windows now, read once (a union of every tracker's sprints)
    drop table if exists {{ windows }};
    create temporary table {{ windows }} as {{ sprint_windows() }};
    analyze {{ windows }};
    drop table if exists {{ moved }};
    create temporary table {{ moved }} as
        with recursive held (tenant_id, sprint_uid) as (
            (select tenant_id, sprint_uid from {{ this }}
             where sprint_uid is not null {{ and_tenant() }}
             order by tenant_id, sprint_uid limit 1)
            union all
            select next.tenant_id, next.sprint_uid
            from held
            cross join lateral (
                select later.tenant_id, later.sprint_uid from {{ this }} as later
                where (later.tenant_id, later.sprint_uid) > (held.tenant_id, held.sprint_uid) {{ and_tenant('later') }}
                order by later.tenant_id, later.sprint_uid
                limit 1
            ) as next
        )
        select windows.tenant_id, windows.sprint_uid, windows.scope_start_at, windows.scope_end_at
        from {{ windows }} as windows
        where
        {%- for side in ['<', '>'] %}
            {% if not loop.first %}or {% endif %}exists (
                select from {{ this }} as scope
                where scope.tenant_id = windows.tenant_id and scope.sprint_uid = windows.sprint_uid
                    and (scope.scope_start_at, scope.scope_end_at) {{ side }} (windows.scope_start_at, windows.scope_end_at)
            )
        {%- endfor %}
        union all
        select held.tenant_id, held.sprint_uid, null::timestamptz, null::timestamptz
        from held
        where not exists (
            select from {{ windows }} as windows
            where windows.tenant_id = held.tenant_id and windows.sprint_uid = held.sprint_uid
        );
    {{ add_changed_items(
        "select scope.tenant_id, scope.work_item_uid from " ~ moved ~ " as moved "
        ~ lateral_index_read(this, 'scope',
            match="scope.tenant_id = moved.tenant_id and scope.sprint_uid = moved.sprint_uid"
                ~ " and (scope.scope_start_at, scope.scope_end_at) is distinct from (moved.scope_start_at, moved.scope_end_at)",
            columns='scope.tenant_id, scope.work_item_uid')
    ) }};
    {#- The sprints whose window reaches past what was measured come first (a handful: the running
        ones), in a table of their own the planner counts, then their items, found by hash against
        it (a union of every item's sprints first sorted two million rows on every run). -#}
    drop table if exists pg_temp.reaching_sprints__{{ this.name }};
    create temporary table pg_temp.reaching_sprints__{{ this.name }} as
        select windows.tenant_id, windows.sprint_uid
        from {{ windows }} as windows
        inner join (
            select tenants.tenant_id,
                (select max(scope.scope_end_at) from {{ this }} as scope where scope.tenant_id = tenants.tenant_id) as measured_until
            from ({{ stored_tenants(this) }}) as tenants
        ) as built on built.tenant_id = windows.tenant_id
        where windows.scope_end_at > built.measured_until;
    analyze pg_temp.reaching_sprints__{{ this.name }};
    {#- Each lookup reads a partial index of its own (ensure_indexes): items by sprint
        (int_work_items__unioned), sprint changes by the sprint moved to and from
        (int_work_item_changes__unioned). -#}
    {%- set moved = [] -%}
    {%- for side in ['sprint_to_uid', 'sprint_from_uid'] -%}
    {%- do moved.append(
        "select changes.tenant_id, changes.work_item_uid from " ~ ref('int_work_item_changes__unioned') ~ " as changes"
        ~ " inner join pg_temp.reaching_sprints__" ~ this.name ~ " as reaching"
        ~ " on reaching.tenant_id = changes.tenant_id and reaching.sprint_uid = changes." ~ side
        ~ " where changes." ~ side ~ " is not null " ~ and_tenant('changes')
    ) -%}
    {%- endfor %}
    {{ add_changed_items(
        "select items.tenant_id, items.work_item_uid from " ~ ref('int_work_items__unioned') ~ " as items"
        ~ " inner join pg_temp.reaching_sprints__" ~ this.name ~ " as reaching"
        ~ " on reaching.tenant_id = items.tenant_id and reaching.sprint_uid = items.sprint_uid"
        ~ " where items.sprint_uid is not null " ~ and_tenant('items')
        ~ " union all " ~ moved | join(" union all ")
    ) }}
{%- endmacro %}

{#- Staging by changed source items.

    A tool's change history (stg_<tool>__work_item_changes) is derived per work item from raw
    rows (Azure compares consecutive revisions, ClickUp orders its status entries), so it is
    staged per item too: a table that, on every run after the first, restages only the items
    with a raw row loaded (dlt load id) after the newest load it holds for the tenant. Lookups
    the rows read (users' emails, status categories, sprint lists) carry a version: a tenant
    whose lookups changed is restaged whole. Rows carry loaded_at, their item's newest raw load
    as the run began (a row loaded during the run is staged by the next), and lookups_version.

    A model declares `loaded`, a macro selecting (tenant_id, work_item_id, loaded_at) for every
    raw row it reads, and `lookups`, a macro selecting (tenant_id, lookups_version) (or null). It filters
    each raw relation with and_source_item_in_batch() and stamps rows with
    staged_item_loads(loaded) / staged_lookups(lookups). -#}

{% macro per_source_item_table(loaded, lookups, raw_item_ids, one_row_per_item=false, raw_elements=[]) -%}
    {#- `raw_item_ids`: the raw tables the model reads per item (and_source_item_in_batch) as
        (source name, table, item id column) triples, each copy indexed on the column (created
        once, index_raw_load_ids); `raw_elements`: (source name, table, jsonb column) triples
        whose arrays `loaded` looks up by value, each copy given an inverted index on the column
        (index_raw_load_ids' `elements`); `one_row_per_item`: the item index is unique (the model's
        unique_per_tenant test of work_item_id would otherwise add a second, unique, index on
        the same columns: macros/enforced_tests.sql). -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_changed_source_items() }}",
        source_item_loads=loaded,
        source_item_lookups=lookups,
        raw_item_ids=raw_item_ids,
        raw_elements=raw_elements,
        indexes=[
            {'columns': ['tenant_id', 'work_item_id'], 'unique': one_row_per_item},
            {'columns': ['tenant_id', 'loaded_at']}
        ]
    ) }}
{%- endmacro %}

{% macro changed_source_items_relation() -%}
    pg_temp.changed_source_items__{{ this.name }}
{%- endmacro %}

{% macro built_watermarks_relation() -%}
    pg_temp.built_watermarks__{{ this.name }}
{%- endmacro %}

{% macro source_item_loads_relation() -%}
    pg_temp.source_item_loads__{{ this.name }}
{%- endmacro %}

{% macro replace_changed_source_items() -%}
    {{ index_raw_load_ids(item_ids=config.get('raw_item_ids') or [], elements=config.get('raw_elements') or []) }};
    {%- if is_incremental() -%}
    {%- set loaded = context[config.get('source_item_loads')]() -%}
    {%- set lookups = context[config.get('source_item_lookups')]() -%}
    {%- set whole_tenant = "built.loaded_at is null or current.lookups_version is distinct from built.lookups_version or " ~ var('rebuild', false) %}
    -- per tenant, the newest load and the lookups version the table holds
    drop table if exists {{ built_watermarks_relation() }};
    create temporary table {{ built_watermarks_relation() }} as
        select
            tenants.tenant_id,
            built.loaded_at,
            built.lookups_version
        from ({{ stored_tenants(this) }}) as tenants
        cross join lateral (
            select
                (select max(loaded_at) from {{ this }} where tenant_id = tenants.tenant_id) as loaded_at,
                -- a tenant's rows carry one lookups version (a changed one restages them all);
                -- the first row of the (tenant_id, loaded_at) index: a bare `limit 1` was planned
                -- as a read of the table from its start until a row of the tenant turned up
                (select lookups_version from {{ this }} where tenant_id = tenants.tenant_id
                 order by loaded_at limit 1) as lookups_version
        ) as built
        where true {{ and_tenant('tenants') }};
    analyze {{ built_watermarks_relation() }};
    -- per tenant with a raw row (one row read per tenant: a tenant without is offboarded),
    -- the lookups version now
    drop table if exists {{ watermarks_relation() }};
    create temporary table {{ watermarks_relation() }} as
        select tenants.slug as tenant_id, lookups.lookups_version
        from {{ source('control', 'tenants') }} as tenants
        cross join lateral (
            select from ({{ loaded }}) as loads where loads.tenant_id = tenants.slug limit 1
        ) as present
        left join ({{ lookups }}) as lookups
            on lookups.tenant_id = tenants.slug
        where true {{ and_tenant('tenants') | replace('tenants.tenant_id', 'tenants.slug') }};
    analyze {{ watermarks_relation() }};
    -- the items with a raw row loaded after what the table holds, with their newest load as
    -- the run begins (a newer load is the item's newest, so only the rows loaded since are
    -- read: through the raw tables' load id indexes, tenant by tenant); every item of a tenant
    -- staged whole (nothing held yet, its lookups changed, or var rebuild)
    drop table if exists {{ source_item_loads_relation() }};
    create temporary table {{ source_item_loads_relation() }} as
        select loads.tenant_id, loads.work_item_id, max(loads.loaded_at) as loaded_at
        from (
            select current.tenant_id, whole.work_item_id, whole.loaded_at
            from {{ watermarks_relation() }} as current
            left join {{ built_watermarks_relation() }} as built
                on built.tenant_id = current.tenant_id
            cross join lateral {{ rows_loaded_since(loaded, ['work_item_id', 'loaded_at'], 'current.tenant_id') }} as whole
            where {{ whole_tenant }}
            union all
            select current.tenant_id, since.work_item_id, since.loaded_at
            from {{ watermarks_relation() }} as current
            inner join {{ built_watermarks_relation() }} as built
                on built.tenant_id = current.tenant_id
            cross join lateral {{ rows_loaded_since(
                loaded, ['work_item_id', 'loaded_at'], 'current.tenant_id', 'built.loaded_at'
            ) }} as since
            where not ({{ whole_tenant }})
        ) as loads
        group by loads.tenant_id, loads.work_item_id;
    drop table if exists {{ changed_source_items_relation() }};
    create temporary table {{ changed_source_items_relation() }} as
        select tenant_id, work_item_id from {{ source_item_loads_relation() }};
    create unique index on {{ changed_source_items_relation() }} (tenant_id, work_item_id);
    analyze {{ changed_source_items_relation() }};
    -- A tenant whose raw data is gone (offboarded) keeps no rows.
    delete from {{ this }}
    where tenant_id in ({{ tenants_no_longer_loaded() }});
    delete from {{ this }} as built
    using {{ changed_source_items_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.work_item_id = changed.work_item_id
    {%- endif -%}
{%- endmacro %}

{% macro index_raw_load_ids(tables=none, item_ids=[], expressions=[], elements=[], covering=[]) -%}
    {#- An index on the dlt load id of every tenant's copy of each raw table the model reads
        (created once; dlt keeps it through its merges and appends), so a run reads the rows
        loaded since rather than every row. `tables`: the raw tables as (source name, table)
        pairs, when the model does not name them with source() (its hooks do). `item_ids`: (source
        name, table, column) triples, an index on that column of every copy too: the item id a
        model staged per item reads its batch by (and_source_item_in_batch). An index is named
        <table>_<column> (<table>__dlt_load_id for the load id). `expressions`: (source name,
        table, name, expression) quadruples, an index on the expression of every copy, named
        <table>_<name>: a key a staging view computes from raw columns, which a read of the view
        by that key finds through the index (pull_request_key_expressions). `elements`: (source
        name, table, jsonb column) triples, an inverted (GIN) index on the column of every copy,
        named <table>_<column>: a read of the rows whose array holds a value (`column ? value`)
        finds them through it. `covering`: (source name, table, name, columns) quadruples, an
        index on those columns of every copy, named <table>_<name>: a query that reads only
        them reads the index, not the table's rows (an index-only scan; a raw row holds its
        record's whole payload, so reading every row of a table is reading the payloads). -#}
    {%- set copies = [] -%}
    {%- if execute -%}
    {%- if tables is none -%}
        {%- set tables = [] -%}
        {%- for node_id in model.depends_on.nodes if node_id.startswith('source.') -%}
            {%- set source_node = graph.sources[node_id] -%}
            {%- if source_node.schema.startswith('raw_') -%}
                {%- do tables.append((source_node.source_name, source_node.identifier)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for source_name, table in tables -%}
        {%- do columns.append((source_name, table, '_dlt_load_id')) -%}
    {%- endfor -%}
    {#- each raw table's copies looked up once (a table indexed on its load id and item id is
        named twice) -#}
    {#- (source name, table, index name suffix, what follows the table in `create index`: the
        method and the column, quoted, or an expression in parentheses) -#}
    {%- set indexed = [] -%}
    {%- for source_name, table, column in columns + item_ids -%}
        {%- do indexed.append((source_name, table, column, '(' ~ adapter.quote(column) ~ ')')) -%}
    {%- endfor -%}
    {%- for source_name, table, name, expression in expressions -%}
        {%- do indexed.append((source_name, table, name, '((' ~ expression ~ '))')) -%}
    {%- endfor -%}
    {%- for source_name, table, column in elements -%}
        {%- do indexed.append((source_name, table, column, 'using gin (' ~ adapter.quote(column) ~ ')')) -%}
    {%- endfor -%}
    {%- for source_name, table, name, covered in covering -%}
        {%- set quoted = [] -%}
        {%- for column in covered -%}{%- do quoted.append(adapter.quote(column)) -%}{%- endfor -%}
        {%- do indexed.append((source_name, table, name, '(' ~ quoted | join(', ') ~ ')')) -%}
    {%- endfor -%}
    {%- set schemas_of = {} -%}
    {%- for source_name, table, name, definition in indexed -%}
        {%- if (source_name, table) not in schemas_of -%}
            {%- do schemas_of.update({(source_name, table): tenant_schemas(source_name, table)}) -%}
        {%- endif -%}
        {%- for schema, tenant in schemas_of[(source_name, table)] -%}
            {%- do copies.append("('" ~ schema ~ "', '" ~ table ~ "', '" ~ table ~ '_' ~ name ~ "', '"
                ~ definition | replace("'", "''") ~ "')") -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- endif -%}
    {%- if copies -%}
    -- one catalog read: only a missing index is created (a `create index if not exists` of
    -- each copy would lock every raw table, at every build)
    do $index$
    declare
        missing record;
    begin
        for missing in
            select copies.schema_name, copies.table_name, copies.index_name, copies.definition
            from (values {{ copies | join(', ') }}) as copies (schema_name, table_name, index_name, definition)
            where to_regclass(format('%I.%I', copies.schema_name, copies.index_name)) is null
        loop
            -- each index on its own: a clash undoes only that one (the others this block created
            -- stay; only a missing index gets here, so a build with all of them pays nothing)
            begin
                execute format(
                    'create index if not exists %I on %I.%I %s',
                    missing.index_name, missing.schema_name, missing.table_name, missing.definition
                );
            exception
                -- another model reading the same raw table created it at the same moment
                when unique_violation or duplicate_table then null;
            end;
        end loop;
    end
    $index$
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{% macro and_source_item_in_batch(column, type='text') -%}
    {#- Restrict a query on raw rows (with a where clause and a tenant_id column) to the items
        this run stages: `column` is the raw rows' work item id column, of `type` (its text is the
        staged work_item_id). The raw column is compared as it is stored (the cast to its own
        type is none), so each tenant's copy is read by its index on it (per_source_item_table's
        `raw_item_ids`); the cast is for a tool no tenant has loaded yet, whose empty relation has
        text columns (union_tenant_sources). -#}
    {{ and_tenant() }}
    {%- if is_incremental() %}
    and (tenant_id, {{ column }}::{{ type }}) in (
        select tenant_id, work_item_id::{{ type }} from {{ changed_source_items_relation() }}
    )
    {%- endif -%}
{%- endmacro %}

{% macro staged_item_loads(loaded) -%}
    {#- Per staged item, its newest raw load as the run began. `loaded`: the model's `loaded`
        macro (as per_source_item_table's). -#}
    {%- if is_incremental() -%}
    select loads.tenant_id, loads.work_item_id, loads.loaded_at
    from {{ source_item_loads_relation() }} as loads
    inner join {{ changed_source_items_relation() }} as changed
        on changed.tenant_id = loads.tenant_id and changed.work_item_id = loads.work_item_id
    {%- else -%}
    select loads.tenant_id, loads.work_item_id, max(loads.loaded_at) as loaded_at
    from ({{ context[loaded]() }}) as loads
    {{ tenant_filter('loads') }}
    group by loads.tenant_id, loads.work_item_id
    {%- endif -%}
{%- endmacro %}

{% macro staged_lookups(lookups) -%}
    {#- Per tenant, the version of the lookups the run stages with. `lookups`: the model's
        `lookups` macro (as per_source_item_table's). -#}
    {%- if is_incremental() -%}
    select tenant_id, lookups_version from {{ watermarks_relation() }}
    {%- else -%}
    {{ context[lookups]() }}
    {%- endif -%}
{%- endmacro %}

{% macro join_staged_stamps(alias, item_id, loaded, lookups) -%}
    {#- The joins that stamp a staged model's rows (loads.loaded_at, lookups.lookups_version):
        `alias` names the rows' relation, `item_id` the expression of their work item id (text);
        `loaded`, `lookups` are the model's macros (as per_source_item_table's). -#}
    inner join ({{ staged_item_loads(loaded) }}) as loads
        on loads.tenant_id = {{ alias }}.tenant_id and loads.work_item_id = {{ item_id }}
    left join ({{ staged_lookups(lookups) }}) as lookups
        on lookups.tenant_id = {{ alias }}.tenant_id
{%- endmacro %}

{% macro raw_item_loads(relation, source_type, column, item_id=none) -%}
    {#- For `loaded` macros: (tenant_id, work_item_id, loaded_at, load_id) of every row of a raw table;
        `column` its item id column, `item_id` the expression of the id over it (default: the
        column), cast to text. -#}
    select
        tenant_id,
        ({{ item_id or column }})::text as work_item_id,
        to_timestamp(_dlt_load_id::double precision) as loaded_at,
        _dlt_load_id::text as load_id
    from ({{ union_tenant_sources(relation, source_type, [column, '_dlt_load_id']) }}) as raw_rows
{%- endmacro %}

{% macro lookups_version(select_sql) -%}
    {#- For `lookups` macros: per tenant, an md5 of the rows of select_sql (with a tenant_id). -#}
    select tenant_id, md5(string_agg(md5(lookup::text), '' order by md5(lookup::text))) as lookups_version
    from ({{ select_sql }}) as lookup
    group by tenant_id
{%- endmacro %}

{#- int_work_items__unioned follows the staged work items item by item. -#}

{% macro work_item_trackers() -%}
    {{ return(['jira', 'clickup', 'azure_boards']) }}
{%- endmacro %}

{% macro restaged_work_items_relation() -%}
    pg_temp.restaged_work_items__{{ this.name }}
{%- endmacro %}

{% macro replace_restaged_work_items() -%}
    {%- if is_incremental() -%}
    drop table if exists {{ restaged_work_items_relation() }};
    create temporary table {{ restaged_work_items_relation() }} as
    {%- for tracker in work_item_trackers() %}
    {%- set staged = ref('stg_' ~ tracker ~ '__work_items') %}
    -- per tenant, what the tool's staging holds and what this table holds of it (read by index):
    -- every item of a tenant this holds nothing of or staged with other lookups, else the items
    -- staged after the newest this holds
    select tenants.tenant_id, '{{ tracker }}'::text as source_system, restaged.work_item_id
    from ({{ stored_tenants(staged) }}) as tenants
    cross join lateral (
        select
            (select max(loaded_at) from {{ this }}
             where tenant_id = tenants.tenant_id and source_system = '{{ tracker }}') as loaded_at,
            (select lookups_version from {{ this }}
             where tenant_id = tenants.tenant_id and source_system = '{{ tracker }}'
             order by loaded_at limit 1) as lookups_version,
            (select lookups_version from {{ staged }} where tenant_id = tenants.tenant_id
             order by loaded_at limit 1) as staged_lookups_version
    ) as built
    cross join lateral (
        select staged.work_item_id from {{ staged }} as staged
        where staged.tenant_id = tenants.tenant_id
            -- one range of the (tenant_id, loaded_at) index (a staged item always has a load)
            and staged.loaded_at > case
                when built.loaded_at is null
                    or built.lookups_version is distinct from built.staged_lookups_version
                    or {{ var('rebuild', false) }}
                then '-infinity'::timestamptz
                else built.loaded_at
            end
        offset 0
    ) as restaged
    where true {{ and_tenant('tenants') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %};
    analyze {{ restaged_work_items_relation() }};
    -- A tenant staging no longer has (offboarded) keeps no rows.
    delete from {{ this }}
    where tenant_id in (
        select built.tenant_id from ({{ stored_tenants(this) }}) as built
        where true {{ and_tenant('built') }}
        {%- for tracker in work_item_trackers() %}
            and not exists (select from {{ ref('stg_' ~ tracker ~ '__work_items') }} as staged where staged.tenant_id = built.tenant_id)
        {%- endfor %}
    );
    delete from {{ this }} as built
    using {{ restaged_work_items_relation() }} as restaged
    where built.tenant_id = restaged.tenant_id
        and built.work_item_uid = restaged.source_system || ':' || restaged.work_item_id
    {%- endif -%}
{%- endmacro %}

{% macro analyze_built_in_full() -%}
    {#- Post-hook of every model: a table rebuilt whole (a table model, or any model under
        --full-refresh) is analyzed at once. PostgreSQL plans a query on a table it has no
        statistics of blind, and autovacuum reaches a table only when its workers are free: after
        a full build of the warehouse (3 GB of new tables at 50 tenants), not for many minutes. The
        bench's day builds after a full build then took int_sprint_scope 4.3-5.1 s instead of
        1.0-1.2 s (docs/scaling.md). A table's first build is analyzed by autovacuum.
        Otherwise it renders nothing, as every hook here with nothing to do: dbt runs no empty
        hook, where a no-op statement costs a round trip and dbt's handling of it (86 statements
        in the bench's build with nothing new). -#}
    {%- if execute and (model.config.materialized == 'table'
        or (model.config.materialized == 'incremental' and should_full_refresh())) -%}
    analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
