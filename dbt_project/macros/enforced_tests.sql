{#- Data tests the database enforces.

    A data test of a table (incremental models) must otherwise read the whole table after every
    build, though an incremental build wrote a few rows of it. So the post-hook
    enforce_column_tests() turns each test of the model that a constraint can say (error
    severity, no custom thresholds) into a constraint of its table:

    - not_null: NOT NULL;
    - accepted_values (quoted): a CHECK on the values;
    - values_between: a CHECK on the bounds (a null passes, as in the test);
    - holds_for_every_row: a CHECK of coalesce(expression, false) (a null fails, as in the test);
    - unique_per_tenant, unique: a unique index on (tenant_id, column) or (column) (the tests
      skip nulls; so does such an index);
    - unique_combination: a unique index on its columns, NULLS NOT DISTINCT (the test groups
      nulls together; so does such an index), or a primary key on them.

    The database then refuses a row that breaks one when it is written (the build fails with the
    database's message, which names the constraint), and the test asks the catalog first: when
    its constraint is there, the property holds by construction and the test reads no row. Views
    cannot hold constraints: their tests read the rows, as do tests of a partition run (their
    where clause wraps the table in a subquery; they read that tenant's rows).
    pulse/enforced_tests.py picks the same tests, to answer them from the catalog. -#}

{% macro column_tests_of_model() -%}
    {#- The tests of this model that a constraint can stand for: a list of dicts with the test's
        kind and arguments (column, values, columns, min_value, max_value, expression). -#}
    {%- set found = [] -%}
    {%- if execute -%}
    {%- for node in graph.nodes.values() -%}
        {%- set metadata = node.get('test_metadata') or {} -%}
        {%- if node.resource_type == 'test' and node.get('attached_node') == model.unique_id
            and metadata.get('name') in (
                'not_null', 'accepted_values', 'unique_per_tenant', 'unique', 'unique_combination',
                'values_between', 'holds_for_every_row')
            and (node.config.severity | lower) == 'error'
            and node.config.warn_if == '!= 0' and node.config.error_if == '!= 0'
            and (node.config.get('fail_calc') or 'count(*)') == 'count(*)'
            and ((node.config.get('where') or 'true') | trim | lower) == 'true' -%}
            {%- set kwargs = metadata.get('kwargs', {}) -%}
            {#- a constraint names plain (lower-case) columns; a test of an expression stays a test -#}
            {%- set named = (kwargs.get('columns') or []) + ([kwargs.column_name] if kwargs.get('column_name') else []) -%}
            {%- set plain = not named or modules.re.match('^([a-z_][a-z0-9_]*,)+$', (named | join(',')) ~ ',') -%}
            {%- if plain and (metadata.name != 'accepted_values' or kwargs.get('quote', true)) -%}
            {%- do found.append({
                'kind': metadata.name, 'column': kwargs.get('column_name'), 'values': kwargs.get('values'),
                'columns': kwargs.get('columns'), 'min_value': kwargs.get('min_value'),
                'max_value': kwargs.get('max_value'), 'expression': kwargs.get('expression')}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}

{% macro accepted_values_constraint(column_name, values) -%}
    {#- Named after the values, so that changed values make a new constraint. -#}
    {{- 'accepted__' ~ column_name[:30] ~ '__' ~ local_md5(values | join('|'))[:10] -}}
{%- endmacro %}

{% macro values_between_constraint(column_name, min_value, max_value) -%}
    {{- 'between__' ~ column_name[:30] ~ '__' ~ local_md5(min_value ~ '|' ~ max_value)[:10] -}}
{%- endmacro %}

{% macro holds_for_every_row_constraint(expression) -%}
    {#- Named after the expression: its words (to be read in the database's error), and its md5. -#}
    {%- set words = modules.re.sub('[^a-z0-9]+', '_', expression | lower).strip('_')[:36] -%}
    {{- 'holds__' ~ words ~ '__' ~ local_md5(expression)[:10] -}}
{%- endmacro %}

{% macro values_between_check(column_name, min_value, max_value) -%}
    {#- SQL: the CHECK of values_between (a null passes: the test skips nulls). -#}
    {{ column_name }} >= {{ min_value if min_value is not none else column_name }}
    and {{ column_name }} <= {{ max_value if max_value is not none else column_name }}
{%- endmacro %}

{% macro quoted_values(values) -%}
    {%- for value in values %}'{{ value | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{% macro add_check(relation, constraint, condition) -%}
    {#- plpgsql: add the CHECK named `constraint` unless the table has it. -#}
        if not exists (
            select from pg_constraint
            where conrelid = '{{ relation }}'::regclass and conname = '{{ constraint }}'
        ) then
            alter table {{ relation }} add constraint {{ constraint }} check ({{ condition }});
        end if;
{%- endmacro %}

{% macro enforce_column_tests() -%}
    {#- Post-hook of the table models: see above. A CHECK this hook added for a test that has
        changed (new values, bounds or expression: a new name) or is gone is dropped. -#}
    {%- set materialized = config.get('materialized') -%}
    {%- if materialized in ('table', 'incremental') -%}
    {%- set checks = [] -%}
    do $enforce$
    declare
        stale record;
    begin
    {%- for test in column_tests_of_model() %}
        {%- set column = test.column %}
        {%- if test.kind == 'not_null' %}
        -- only when missing: even a no-op SET NOT NULL locks the table against its readers
        if exists (
            select from pg_attribute
            where attrelid = '{{ this }}'::regclass and attname = '{{ column }}' and not attnotnull
        ) then
            alter table {{ this }} alter column {{ adapter.quote(column) }} set not null;
        end if;
        {%- elif test.kind == 'accepted_values' %}
        {%- do checks.append(accepted_values_constraint(column, test['values'])) %}
        {{ add_check(this, checks[-1], adapter.quote(column) ~ ' in (' ~ quoted_values(test['values']) ~ ')') }}
        {%- elif test.kind == 'values_between' %}
        {%- do checks.append(values_between_constraint(column, test.min_value, test.max_value)) %}
        {{ add_check(this, checks[-1], values_between_check(adapter.quote(column), test.min_value, test.max_value)) }}
        {%- elif test.kind == 'holds_for_every_row' %}
        {%- do checks.append(holds_for_every_row_constraint(test.expression)) %}
        {{ add_check(this, checks[-1], 'coalesce((' ~ test.expression ~ '), false)') }}
        {%- else %}
        {%- set columns = test.columns if test.kind == 'unique_combination'
            else (['tenant_id', column] if test.kind == 'unique_per_tenant' else [column]) %}
        {%- set nulls_equal = test.kind == 'unique_combination' %}
        if not {{ has_unique_index(this, columns, nulls_equal) }} then
            create unique index on {{ this }} (
                {%- for name in columns %}{{ adapter.quote(name) }}{% if not loop.last %}, {% endif %}{% endfor -%}
            ){% if nulls_equal %} nulls not distinct{% endif %};
        end if;
        {%- endif %}
    {%- endfor %}
        for stale in
            select conname from pg_constraint
            where conrelid = '{{ this }}'::regclass and contype = 'c'
                and conname ~ '^(accepted|between|holds)__'
                and conname <> all(array[{{ quoted_values(checks) }}]::text[])
        loop
            execute format('alter table %s drop constraint %I', '{{ this }}', stale.conname);
        end loop;
    end
    $enforce$
    {%- endif -%}
{%- endmacro %}

{% macro index_columns(index, by_name=false) -%}
    {#- SQL: the names of the columns of the pg_index row `index` (text[]), in the index's order,
        or with by_name sorted by code point (to compare as a set). -#}
    (
        select array_agg(attribute.attname::text order by
            {%- if by_name %} attribute.attname::text collate "C"{% else %} key.position{% endif %})
        from unnest({{ index }}.indkey::int2[]) with ordinality as key (attnum, position)
        inner join pg_attribute as attribute
            on attribute.attrelid = {{ index }}.indrelid and attribute.attnum = key.attnum
    )
{%- endmacro %}

{% macro has_unique_index(relation, columns, nulls_equal=false) -%}
    {#- SQL: the relation has a unique index (or primary key) on exactly these columns, in any
        order; with nulls_equal, one that also holds two rows apart that differ only by nulls:
        NULLS NOT DISTINCT, or every column NOT NULL. -#}
    exists (
        select
        from pg_index as index
        where index.indrelid = to_regclass('{{ relation }}')
            and index.indisunique
            and index.indisvalid
            and index.indpred is null
            and index.indexprs is null
            and {{ index_columns('index', by_name=true) }} = array[{{ quoted_values(columns | sort(case_sensitive=true)) }}]::text[]
            {%- if nulls_equal %}
            and (
                index.indnullsnotdistinct
                or not exists (
                    select from pg_attribute
                    where attrelid = index.indrelid and attname = any(array[{{ quoted_values(columns) }}])
                        and not attnotnull
                )
            )
            {%- endif %}
    )
{%- endmacro %}

{% macro ensure_indexes() -%}
    {#- Post-hook of a table whose config names `ensured_indexes`: each (a dict of `columns`, its
        keys: column names or expressions as PostgreSQL prints them, such as
        'lower(work_item_key)'; and, optionally, `where_set`: a column, to index only the rows
        where it is set, or `where_true`: a boolean column, to index only the rows where it is
        true) is created when the table has no index on exactly those keys and rows.
        Unlike dbt's `indexes` config, which is applied only when dbt creates the table, this
        also reaches a table built before the index was added. An index is recognized by its keys
        and predicate, not by name: a full refresh's previous copy keeps its names until it is
        dropped. With none named, nothing (no hook runs). -#}
    {%- if config.get('ensured_indexes') %}
    do $index$
    begin
    {%- for index in config.get('ensured_indexes') %}
        {%- set columns = index['columns'] %}
        {%- set where_set = index.get('where_set') %}
        {%- set where_true = index.get('where_true') %}
        {#- the predicate as PostgreSQL prints it, and as written -#}
        {%- set printed = "'(" ~ where_set ~ " IS NOT NULL)'" if where_set else ("'" ~ where_true ~ "'" if where_true else 'null') %}
        {%- set predicate = where_set ~ ' is not null' if where_set else where_true %}
        if not exists (
            select
            from pg_index as index
            where index.indrelid = '{{ this }}'::regclass
                and pg_get_expr(index.indpred, index.indrelid) is not distinct from {{ printed }}
                -- each key as PostgreSQL prints it: a column's name, or an expression
                and array(
                    select pg_get_indexdef(index.indexrelid, key, true)
                    from generate_series(1, index.indnkeyatts) as key
                    order by key
                ) = array[{{ quoted_values(columns) }}]::text[]
        ) then
            create index on {{ this }} ({{ columns | join(', ') }})
                {%- if predicate %} where {{ predicate }}{% endif %};
        end if;
    {%- endfor %}
    end
    $index$
    {%- endif -%}
{%- endmacro %}

{% macro postgres__get_where_subquery(relation) -%}
    {#- The rows a data test reads. A test of a tenant model (where clause 'true', set for the
        staging, intermediate and marts folders in dbt_project.yml) reads the partition's tenant
        only, when a partition is built; a test of every tenant reads the relation itself, so
        that it can ask the catalog about the relation's constraints; else dbt's filtered
        subquery. A test of a view that reads only new loads reads those (macros/tested_loads.sql).
        A column_rules test's rows say which it has not read before (tested_row_is_new: every row,
        unless it reads new loads; tests/generic/column_rules.sql). -#}
    {%- set test_node = graph.nodes.get(model.unique_id) if execute and model is mapping and model.unique_id is defined else none -%}
    {%- set view_node = tested_loads_view(test_node) if test_node else none -%}
    {%- set new_loads = tested_loads_rows(relation, test_node, view_node) if view_node else none -%}
    {%- if new_loads -%}
        {%- do return(new_loads) -%}
    {%- endif -%}
    {%- set marked = test_node is not none and (test_node.get('test_metadata') or {}).get('name') == 'column_rules' -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and (where | trim | lower) == 'true' and partition_tenant() is not none -%}
        {%- set where = "tenant_id = '" ~ partition_tenant() ~ "'" -%}
    {%- endif -%}
    {%- set filtered = where and (where | trim | lower) != 'true' -%}
    {%- if filtered or marked -%}
        {%- set rows -%}
            (select *{% if marked %}, true as tested_row_is_new{% endif %} from {{ relation }}
            {%- if filtered %} where {{ where }}{% endif %}) dbt_subquery
        {%- endset -%}
        {%- do return(rows) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{% macro is_relation(model) -%}
    {{- return(model is not string and model.identifier is defined) -}}
{%- endmacro %}

{% macro postgres__test_relationships(model, column_name, to, field) -%}
    {#- dbt's relationships test; when the parent is a view of key_read_parents and the field
        its key (GitHub's and Azure DevOps' reviews → pull requests, Azure DevOps' work item
        links → pull requests), the parent must be of the child's tenant, and
        a child narrowed to its rows loaded since the test last passed (macros/tested_loads.sql,
        relationships_key_index) has each of them probe the parent view's key index once, in its
        own tenant's raw copy (the view is a union of the tenants' copies). Joined by hash, the
        parent view was read whole at every build: GitHub's 86,897 pull requests of 50 tenants ×
        2 years for a day's few thousand reviews. -#}
    {%- set key = key_read_parents().get(to.identifier) if execute else none -%}
    {%- if key and key == field -%}
select child.from_field
from (
    select tenant_id, {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
) as child
{%- if is_relation(model) %}
-- every child row: both views read whole, joined by hash
left join (select tenant_id, {{ field }} as to_field, true as found from {{ to }}) as parent
    on parent.tenant_id = child.tenant_id and parent.to_field = child.from_field
{%- else %}
left join lateral (
    select true as found
    from {{ to }} as parent
    where parent.tenant_id = child.tenant_id and parent.{{ field }} = child.from_field
    limit 1
) as parent on true
{%- endif %}
where parent.found is null
    {%- else -%}
{{ dbt.default__test_relationships(model, column_name, to, field) }}
    {%- endif -%}
{%- endmacro %}

{% macro postgres__test_not_null(model, column_name) -%}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{%- if is_relation(model) %}
    -- the column is NOT NULL in the database: no row to read (see macros/enforced_tests.sql)
    and not exists (
        select from pg_attribute
        where attrelid = to_regclass('{{ model }}') and attname = '{{ column_name }}' and attnotnull
    )
{%- endif %}
{%- endmacro %}

{% macro postgres__test_accepted_values(model, column_name, values, quote=True) -%}
with all_values as (
    select {{ column_name }} as value_field, count(*) as n_records
    from {{ model }}
    {%- if is_relation(model) and quote %}
    -- a CHECK constraint holds the column to these values: no row to read
    where not {{ has_check(model, accepted_values_constraint(column_name, values)) }}
    {%- endif %}
    group by {{ column_name }}
)

select *
from all_values
where value_field not in (
    {%- for value in values -%}
        {% if quote %}'{{ value }}'{% else %}{{ value }}{% endif %}{% if not loop.last %}, {% endif %}
    {%- endfor -%}
)
{%- endmacro %}

{% macro has_check(relation, constraint) -%}
    {#- SQL: the relation has the validated CHECK named `constraint`. -#}
    exists (
        select from pg_constraint
        where conrelid = to_regclass('{{ relation }}') and conname = '{{ constraint }}' and convalidated
    )
{%- endmacro %}

{% macro postgres__test_unique(model, column_name) -%}
    {#- dbt's unique test; a table with a unique index on the column holds it by construction
        (the test skips nulls; so does the index): no row is read. -#}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
{%- if is_relation(model) %}
    and not {{ has_unique_index(model, [column_name]) }}
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{%- endmacro %}
