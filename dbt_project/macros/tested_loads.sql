{#- Tests of a view read the rows loaded since they last passed.

    A table's column tests read no row (their constraints hold them: macros/enforced_tests.sql),
    but a view cannot hold constraints, so each of its tests reads every row behind it at every
    build: the agent platform's four read all 590k runs of 50 tenants (6.5 s summed) to find
    nothing new. A view marked `meta: {test_new_loads: true}` promises that each of its rows is a
    function of one raw row of one raw table, and exposes that row's dlt load id as stored
    (`load_id`) and as a time (`loaded_at`). A raw row is never changed in place: dlt writes a
    changed record as a new row under a new load id. So a row that passed a not_null or
    accepted_values test passes it for ever, and those tests need only read the rows loaded
    since they last passed; a unique_per_tenant test reads every row holding a key that a new
    row holds (a new row's duplicate may be old). A column_rules test (one test for the view's
    rules, tests/generic/column_rules.sql) reads both: the new rows, marked new, and the rows it
    has read before that share a key of its unique columns with one of them.

    The state lives in the control plane (migration 0006): control.tested_loads, per test and
    tenant, the newest load the test has passed, and the version of the view and test it holds
    for (a changed view or test reads every row again). At the start of a build or test run
    (on-run-start) each such test's candidate is captured: per tenant, the newest load in the raw
    table (one index probe). When the test passes, on-run-end makes the candidate its state; a
    failing test reads the same rows again next time. As the staged tables do
    (macros/incremental.sql), this assumes a tenant's loads of one table commit in the order of
    their load ids (one pipeline run at a time per tenant and source); a run that began before a
    load committed reads that load next time.

    A full refresh reads every row. Without the control tables (a database before migration
    0006) every test reads every row. -#}

{% macro tested_loads_view(test_node) -%}
    {#- The graph node of the view a data test reads only new loads of (see above), else none:
        a column_rules, not_null, accepted_values or unique_per_tenant test of a view marked
        test_new_loads, built from exactly one raw source; or a relationships test of such a
        view whose parent is read by key through an index (relationships_key_index). -#}
    {%- set found = none -%}
    {%- set metadata = test_node.get('test_metadata') or {} -%}
    {%- set model_node = graph.nodes.get(test_node.get('attached_node') or '') -%}
    {%- set kinds = ['column_rules', 'not_null', 'accepted_values', 'unique_per_tenant'] -%}
    {%- if relationships_key_index(test_node) -%}
        {%- do kinds.append('relationships') -%}
    {%- endif -%}
    {%- if model_node and metadata.get('name') in kinds
        and model_node.config.materialized == 'view' and (model_node.config.meta or {}).get('test_new_loads') -%}
        {%- set parents = model_node.depends_on.nodes -%}
        {%- if parents | length == 1 and parents[0].startswith('source.') -%}
            {%- set found = model_node -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}

{% macro relationships_key_index(test_node) -%}
    {#- For a relationships test whose parent is a view of key_read_parents and whose field is
        that view's indexed key: the parent's name, else none. Such a test of a view marked
        test_new_loads reads only the child rows loaded since it last passed, each probing the
        parent's key index once (postgres__test_relationships): a child row that found its
        parent finds it for ever, as the raw parent rows are never removed (dlt's merge writes a
        changed record in place of the old; a tenant's raw data goes whole, children with
        parents). -#}
    {%- set metadata = test_node.get('test_metadata') or {} -%}
    {%- if metadata.get('name') != 'relationships' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set attached = test_node.get('attached_node') -%}
    {%- set parents = (test_node.get('depends_on') or {}).get('nodes', []) | reject('equalto', attached) | list -%}
    {%- if parents | length != 1 or not parents[0].startswith('model.') -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set parent = parents[0].split('.')[-1] -%}
    {%- set key = key_read_parents().get(parent) -%}
    {{ return(parent if key and key == metadata.kwargs.get('field') else none) }}
{%- endmacro %}

{% macro key_read_parents() -%}
    {#- The views a relationships test reads by key (view → its key column): those of
        unique_key_indexes, and Azure DevOps' pull requests, read by the key its reviews and
        work item links name, through the index on it its pre-hook ensures on every raw copy
        (pull_request_key_expressions). Joined by hash, the two tests read all of the view's
        pull requests at every build (0.25 and 0.18 s at 50 tenants × 2 years, docs/scaling.md). -#}
    {%- set parents = {'stg_azure_devops_git__pull_requests': 'pull_request_id'} -%}
    {%- for view, key_index in unique_key_indexes().items() -%}
        {%- do parents.update({view: key_index[0]}) -%}
    {%- endfor -%}
    {{ return(parents) }}
{%- endmacro %}

{% macro tested_loads_version(test_node, view_node) -%}
    {#- What a test's state holds for: the view's SQL and the test's arguments; for a
        relationships test, its parent view's SQL too (a changed parent reads every child again). -#}
    {%- set parent = relationships_key_index(test_node) -%}
    {%- set parent_sql = graph.nodes['model.' ~ test_node.package_name ~ '.' ~ parent].checksum.checksum if parent else '' -%}
    {{- return(local_md5(view_node.checksum.checksum ~ '|' ~ tojson(test_node.test_metadata) ~ parent_sql)) -}}
{%- endmacro %}

{% macro tested_loads_source(view_node) -%}
    {#- (source name, raw table) of the view's one raw source. -#}
    {%- set source_node = graph.sources[view_node.depends_on.nodes[0]] -%}
    {{ return((source_node.source_name, source_node.identifier)) }}
{%- endmacro %}

{% macro tested_loads_ready() -%}
    {#- Whether this run reads and keeps test state: a build or test of a database with the
        control tables, not a full refresh. -#}
    {%- if not execute or flags.WHICH not in ('build', 'test') -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set exists = run_query("select to_regclass('control.tested_loads') is not null").columns[0].values()[0] -%}
    {{ return(exists) }}
{%- endmacro %}

{% macro capture_tested_loads() -%}
    {#- on-run-start: each selected new-loads test's candidate state (see above). -#}
    {%- set rows = [] -%}
    {%- if tested_loads_ready() -%}
        {%- set tests_by_source = {} -%}
        {%- for unique_id in selected_resources if unique_id.startswith('test.') -%}
            {%- set test_node = graph.nodes[unique_id] -%}
            {%- set view_node = tested_loads_view(test_node) -%}
            {%- if view_node -%}
                {%- set key = tested_loads_source(view_node) -%}
                {%- do tests_by_source.setdefault(key, []).append(
                    "('" ~ unique_id ~ "', '" ~ tested_loads_version(test_node, view_node) ~ "')") -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for key, tests in tests_by_source.items() -%}
            {%- set source_name, table = key -%}
            {%- set relation = api.Relation.create(schema='raw', identifier=table) -%}
            {%- do rows.append(
                "select '" ~ invocation_id ~ "', tests.test_id, maxima.tenant_id, tests.version, "
                ~ "to_timestamp(maxima._dlt_load_id::double precision) as loaded_at "
                ~ "from (values " ~ (tests | join(', ')) ~ ") as tests (test_id, version) "
                ~ "cross join (" ~ tenant_source_maxima(relation, source_name, '_dlt_load_id') ~ ") as maxima "
                ~ "where maxima._dlt_load_id is not null") -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if rows -%}
    insert into control.tested_load_candidates (invocation_id, test_id, tenant_id, version, loaded_at)
    {{ rows | join('\nunion all\n') }}
    {%- endif -%}
{%- endmacro %}

{% macro record_tested_loads(results) -%}
    {#- on-run-end: a passing new-loads test's candidate becomes its state; the invocation's
        candidates (and any an interrupted run left) go, and so does the state of a test that is
        no new-loads test of the project any more (removed, renamed, or its view unmarked). -#}
    {%- if tested_loads_ready() -%}
    {%- set current = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'test' and tested_loads_view(node) -%}
        {%- do current.append("'" ~ node.unique_id ~ "'") -%}
    {%- endfor -%}
    {%- set passed = [] -%}
    {%- for result in results if result.node.resource_type == 'test' and result.status == 'pass' -%}
        {%- if tested_loads_view(graph.nodes[result.node.unique_id]) -%}
            {%- do passed.append("'" ~ result.node.unique_id ~ "'") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if passed %}
    insert into control.tested_loads as kept (test_id, tenant_id, version, loaded_at, tested_at)
    select test_id, tenant_id, version, loaded_at, now()
    from control.tested_load_candidates
    where invocation_id = '{{ invocation_id }}' and test_id in ({{ passed | join(', ') }})
    on conflict (test_id, tenant_id) do update
        set version = excluded.version, loaded_at = excluded.loaded_at, tested_at = excluded.tested_at;
    {%- endif %}
    delete from control.tested_load_candidates
    where invocation_id = '{{ invocation_id }}' or captured_at < now() - interval '1 day';
    delete from control.tested_loads
    where test_id <> all(array[{{ current | join(', ') }}]::text[])
    {%- endif -%}
{%- endmacro %}

{% macro tested_loads_rows(relation, test_node, view_node) -%}
    {#- For get_where_subquery: the rows of the view `relation` a new-loads test reads (see
        above), or none to read every row. -#}
    {%- if flags.FULL_REFRESH or not tested_loads_ready() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set tenant = partition_tenant() -%}
    {#- the tenants with rows as the run began (its candidates), with the load each has passed -#}
    {%- set query -%}
        select
            candidate.tenant_id,
            kept.loaded_at::text,
            floor(extract(epoch from kept.loaded_at))::bigint::text
        from control.tested_load_candidates as candidate
        left join control.tested_loads as kept
            on kept.test_id = candidate.test_id
            and kept.tenant_id = candidate.tenant_id
            and kept.version = candidate.version
        where candidate.invocation_id = '{{ invocation_id }}' and candidate.test_id = '{{ test_node.unique_id }}'
    {%- endset -%}
    {%- set tenants = run_query(query).rows -%}
    {%- set marks = tenants | selectattr(1) | list -%}
    {%- if not marks -%}
        {{ return(none) }}
    {%- endif -%}
    {#- a tenant loaded first after the run began has no candidate: its rows are newer than any
        mark, so read in any case -#}
    {%- set unmarked = tenants | rejectattr(1) | list -%}
    {%- set marked -%}
        left join (values
            {%- for row in marks %}
            ('{{ row[0] }}', '{{ row[1] }}'::timestamptz){% if not loop.last %},{% endif %}
            {%- endfor %}
        ) as tested (tenant_id, loaded_at)
    {%- endset -%}
    {%- set new_rows -%}
        from {{ relation }} as loaded
        {{ marked }}
            on tested.tenant_id = loaded.tenant_id
        where (tested.loaded_at is null or loaded.loaded_at > tested.loaded_at)
            {%- if tenant is not none %}
            and loaded.tenant_id = '{{ tenant }}'
            {%- endif %}
            {%- if not unmarked %}
            -- every tenant has read up to a load: the rows since the oldest of them, through the
            -- raw tables' load id index (the load id no newer load sorts before)
            and loaded.load_id >= '{{ marks | map(attribute=2) | min }}'
            {%- endif %}
    {%- endset -%}
    {%- set kind = test_node.test_metadata.name -%}
    {%- if kind == 'unique_per_tenant' -%}
        {%- set column = test_node.test_metadata.kwargs.column_name -%}
        {%- set rows -%}
            (select every_row.* from {{ relation }} as every_row
            where ({% if tenant is not none %}every_row.tenant_id = '{{ tenant }}' and {% endif -%}
                (every_row.tenant_id, every_row.{{ column }}) in (
                    select loaded.tenant_id, loaded.{{ column }} {{ new_rows }}
                ))) dbt_subquery
        {%- endset -%}
    {%- elif kind == 'column_rules' -%}
        {#- the new rows, and for the unique columns the rows read before that share a key with
            one of them (tests/generic/column_rules.sql) -#}
        {%- set unique_columns = test_node.test_metadata.kwargs.get('unique_per_tenant') or [] -%}
        {%- set key_index = unique_key_indexes().get(view_node.name) -%}
        {%- set rows -%}
            (select loaded.*, true as tested_row_is_new {{ new_rows }}
            {%- if key_index and unique_columns == [key_index[0]] %}
            union all
            -- each new row's key, then the rows read before that hold it: one probe of the raw
            -- copies' index on the key per key (unique_key_indexes)
            select every_row.*, false
            from (
                -- (a tenant without a mark has every row new: none of its rows is read before)
                select distinct loaded.tenant_id, loaded.{{ unique_columns[0] }} as unique_key {{ new_rows }}
                    and tested.loaded_at is not null
            ) as new_keys
            {{ lateral_index_read(
                relation, 'every_row',
                match='every_row.tenant_id = new_keys.tenant_id and every_row.' ~ unique_columns[0] ~ ' = new_keys.unique_key',
                columns='*'
            ) }}
            {{ marked }}
                on tested.tenant_id = every_row.tenant_id
            where tested.loaded_at is not null and every_row.loaded_at <= tested.loaded_at
            {%- elif unique_columns %}
            union all
            select every_row.*, false
            from {{ relation }} as every_row
            {{ marked }}
                on tested.tenant_id = every_row.tenant_id
            where tested.loaded_at is not null and every_row.loaded_at <= tested.loaded_at
                {%- if tenant is not none %}
                and every_row.tenant_id = '{{ tenant }}'
                {%- endif %}
                and (
                {%- for column in unique_columns %}
                    (every_row.tenant_id, every_row.{{ column }}) in (
                        select loaded.tenant_id, loaded.{{ column }} {{ new_rows }}
                    ){% if not loop.last %} or{% endif %}
                {%- endfor %}
                )
            {%- endif %}) dbt_subquery
        {%- endset -%}
    {%- else -%}
        {%- set rows -%}
            (select loaded.* {{ new_rows }}) dbt_subquery
        {%- endset -%}
    {%- endif -%}
    {{ return(rows) }}
{%- endmacro %}

{% macro unique_key_indexes() -%}
    {#- The views marked test_new_loads whose one unique column is a key computed from a raw
        column: view → (the unique column, source name, raw table, index name suffix, the key's
        expression, as the view computes it). Each such view's pre-hook (index_unique_keys) indexes every tenant's
        copy of the raw table on the expression, and its column_rules test reads the rows that
        share a key with a new row through it, one probe per key (tested_loads_rows). Read by
        key from the view without the index, those rows were found by reading every row: all
        492k agent platform runs of 50 tenants × 2 years, 0.25-0.46 s, at every build whatever
        it loaded (docs/scaling.md). The expression must stay the view's own, and the view's one
        unique column the key, or the read misses the index (tests plan each view's read by key:
        test_tested_loads.py, test_incremental_pull_requests.py). -#}
    {{ return({
        'stg_agent_platform__runs': ('agent_run_id', 'agent_platform', 'runs', 'agent_run_key', "'agent_platform:' || run_id::text"),
        'stg_github__pull_requests': ('pull_request_id', 'github', 'pull_requests', 'pull_request_key', "'github:' || id::text"),
        'stg_github__reviews': ('review_id', 'github', 'reviews', 'review_key', "'github:' || id::text"),
    }) }}
{%- endmacro %}

{% macro index_unique_keys() -%}
    {#- Pre-hook of a view of unique_key_indexes: its raw copies' index on the key (created once;
        the same index as the pull request models' for the pull requests' key). -#}
    {%- set column, source_name, table, name, expression = unique_key_indexes()[this.name] -%}
    {{ index_raw_load_ids([], expressions=[(source_name, table, name, expression)]) }}
{%- endmacro %}

{% macro raw_load_stamps() -%}
    {#- The columns of a view marked test_new_loads (see above) that say when its row's raw row
        was loaded: the dlt load id as stored (filtering on it reads the raw tables' load id
        index) and as a time. -#}
    _dlt_load_id as load_id,
        to_timestamp(_dlt_load_id::double precision) as loaded_at
{%- endmacro %}
