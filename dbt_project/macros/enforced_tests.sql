{#- Column tests the database enforces.

    A not_null, accepted_values or unique_per_tenant data test of a table (incremental models)
    must otherwise read the whole table after every build, though an incremental build wrote a
    few rows of it. So the post-hook enforce_column_tests() turns each such test of the model
    (error severity, no custom thresholds) into a constraint of its table: NOT NULL, a CHECK on
    the accepted values, a unique index on (tenant_id, column). The database then refuses a
    row that breaks one when it is written (the build fails with the database's message, which
    names the column), and the test asks the catalog first: when its constraint is there, the
    property holds by construction and the test reads no row. Views cannot hold constraints:
    their tests read every row, as do tests of a partition run (their where clause wraps the
    table in a subquery; they read that tenant's rows). -#}

{% macro column_tests_of_model() -%}
    {#- The not_null / accepted_values / unique_per_tenant tests of this model that a constraint
        can stand for: (test name, column, accepted values). -#}
    {%- set found = [] -%}
    {%- if execute -%}
    {%- for node in graph.nodes.values() -%}
        {%- set metadata = node.get('test_metadata') or {} -%}
        {%- if node.resource_type == 'test' and node.get('attached_node') == model.unique_id
            and metadata.get('name') in ('not_null', 'accepted_values', 'unique_per_tenant')
            and (node.config.severity | lower) == 'error'
            and node.config.warn_if == '!= 0' and node.config.error_if == '!= 0' -%}
            {%- set kwargs = metadata.get('kwargs', {}) -%}
            {%- if metadata.name != 'accepted_values' or kwargs.get('quote', true) -%}
            {%- do found.append((metadata.name, kwargs.get('column_name'), kwargs.get('values'))) -%}
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

{% macro quoted_values(values) -%}
    {%- for value in values %}'{{ value | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{% macro enforce_column_tests() -%}
    {#- Post-hook of the table models: see above. -#}
    {%- set materialized = config.get('materialized') -%}
    {%- set tests = column_tests_of_model() if materialized in ('table', 'incremental') else [] -%}
    {%- if tests -%}
    do $enforce$
    begin
    {%- for name, column, values in tests %}
        {%- if name == 'not_null' %}
        -- a no-op (no scan) when the column is NOT NULL already
        alter table {{ this }} alter column {{ adapter.quote(column) }} set not null;
        {%- elif name == 'accepted_values' %}
        {%- set constraint = accepted_values_constraint(column, values) %}
        if not exists (
            select from pg_constraint
            where conrelid = '{{ this }}'::regclass and conname = '{{ constraint }}'
        ) then
            alter table {{ this }} add constraint {{ constraint }}
                check ({{ adapter.quote(column) }} in ({{ quoted_values(values) }}));
        end if;
        {%- elif name == 'unique_per_tenant' %}
        if not {{ has_unique_index(this, column) }} then
            create unique index on {{ this }} (tenant_id, {{ adapter.quote(column) }});
        end if;
        {%- endif %}
    {%- endfor %}
    end
    $enforce$
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{% macro index_columns(index) -%}
    {#- SQL: the names of the columns of the pg_index row `index`, in order (text[]). -#}
    (
        select array_agg(attribute.attname::text order by key.position)
        from unnest({{ index }}.indkey::int2[]) with ordinality as key (attnum, position)
        inner join pg_attribute as attribute
            on attribute.attrelid = {{ index }}.indrelid and attribute.attnum = key.attnum
    )
{%- endmacro %}

{% macro has_unique_index(relation, column_name) -%}
    {#- SQL: the relation has a unique index (or primary key) on exactly (tenant_id, column). -#}
    exists (
        select
        from pg_index as index
        where index.indrelid = to_regclass('{{ relation }}')
            and index.indisunique
            and index.indpred is null
            and index.indexprs is null
            and {{ index_columns('index') }} = array['tenant_id', '{{ column_name }}']
    )
{%- endmacro %}

{% macro ensure_indexes() -%}
    {#- Post-hook of a table whose config names `ensured_indexes`: each (a dict of `columns` and,
        optionally, `where_set`: a column, to index only the rows where it is set) is created
        when the table has no index on exactly those columns and rows. Unlike dbt's `indexes`
        config, which is applied only when dbt creates the table, this also reaches a table
        built before the index was added. An index is recognized by its columns and predicate,
        not by name: a full refresh's previous copy keeps its names until it is dropped. -#}
    do $index$
    begin
    {%- for index in config.get('ensured_indexes') or [] %}
        {%- set columns = index['columns'] %}
        {%- set where_set = index.get('where_set') %}
        if not exists (
            select
            from pg_index as index
            where index.indrelid = '{{ this }}'::regclass
                and index.indexprs is null
                and pg_get_expr(index.indpred, index.indrelid) is not distinct from
                    {% if where_set %}'({{ where_set }} IS NOT NULL)'{% else %}null{% endif %}
                and {{ index_columns('index') }} = array[{{ quoted_values(columns) }}]
        ) then
            create index on {{ this }} ({{ columns | join(', ') }})
                {%- if where_set %} where {{ where_set }} is not null{% endif %};
        end if;
    {%- endfor %}
    end
    $index$
{%- endmacro %}

{% macro postgres__get_where_subquery(relation) -%}
    {#- The rows a data test reads. A test of a tenant model (where clause 'true', set for the
        staging, intermediate and marts folders in dbt_project.yml) reads the partition's tenant
        only, when a partition is built; a test of every tenant reads the relation itself, so
        that it can ask the catalog about the relation's constraints; else dbt's filtered
        subquery. A test of a view that reads only new loads reads those (macros/tested_loads.sql). -#}
    {%- set test_node = graph.nodes.get(model.unique_id) if execute and model is mapping and model.unique_id is defined else none -%}
    {%- set view_node = tested_loads_view(test_node) if test_node else none -%}
    {%- set new_loads = tested_loads_rows(relation, test_node, view_node) if view_node else none -%}
    {%- if new_loads -%}
        {%- do return(new_loads) -%}
    {%- endif -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and (where | trim | lower) == 'true' and partition_tenant() is not none -%}
        {%- set where = "tenant_id = '" ~ partition_tenant() ~ "'" -%}
    {%- endif -%}
    {%- if where and (where | trim | lower) != 'true' -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{% macro is_relation(model) -%}
    {{- return(model is not string and model.identifier is defined) -}}
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
    where not exists (
        select from pg_constraint
        where conrelid = to_regclass('{{ model }}') and conname = '{{ accepted_values_constraint(column_name, values) }}'
    )
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
