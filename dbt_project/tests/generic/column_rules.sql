{#- A view's column rules as one data test.

    A table's column tests are constraints of the table and read no row (macros/enforced_tests.sql),
    but a view cannot hold a constraint, so each of its tests runs at every build. In dbt each test
    is a node, and a node costs dbt about 30 ms of its one interpreter whatever its query reads:
    the views' 85 column tests were 2.5-3 s of every build of the warehouse (docs/scaling.md). So a
    view states its rules once, at the model, and they run as one query:

        data_tests:
          - column_rules:
              arguments:
                not_null: [tenant_id, review_id]
                unique_per_tenant: [review_id]
                accepted_values:
                  verdict: [approved, rejected]
                  vote: {values: [10, 0, -10], quote: false}

    - not_null: the column holds a value in every row;
    - unique_per_tenant: no two rows of a tenant hold the same value (nulls aside), as the generic
      test of that name;
    - accepted_values: the column holds only these values (nulls aside), written as quoted
      literals unless `quote: false`, as dbt's accepted_values.

    The test returns a row per broken rule (rule, column_name, failing_rows, example: the first
    offending tenant and value), and counts the rows that break a rule: "Got 3 results" means
    three rows. A view whose rows are each one raw row (meta test_new_loads) reads only the rows
    loaded since the test last passed, and for its unique columns every row sharing a key with
    one of those (macros/tested_loads.sql); the rows the test reads say which are new
    (tested_row_is_new: postgres__get_where_subquery, macros/enforced_tests.sql). -#}
{% test column_rules(model, not_null=[], unique_per_tenant=[], accepted_values={}) %}
{{ config(fail_calc='coalesce(sum(failing_rows), 0)') }}
{%- set row_rules = [] -%}
{%- for column in not_null -%}
    {%- do row_rules.append(('not_null', column, column ~ ' is null', "tenant_id")) -%}
{%- endfor -%}
{%- for column, accepted in accepted_values.items() -%}
    {%- set values = accepted['values'] if accepted is mapping else accepted -%}
    {%- set quote = accepted.get('quote', true) if accepted is mapping else true -%}
    {%- set listed -%}
        {%- for value in values -%}
            {%- if quote %}'{{ value | replace("'", "''") }}'{% else %}{{ value }}{% endif -%}
            {%- if not loop.last %}, {% endif -%}
        {%- endfor -%}
    {%- endset -%}
    {%- do row_rules.append(('accepted_values', column,
        column ~ ' is not null and ' ~ column ~ ' not in (' ~ listed ~ ')',
        "tenant_id || ': ' || " ~ column ~ "::text")) -%}
{%- endfor -%}
with broken as (
    {%- if row_rules %}
    select broken.*
    from (
        select
            {%- for rule, column, fails, example in row_rules %}
            count(*) filter (where {{ fails }}) as failing_{{ loop.index }},
            min({{ example }}) filter (where {{ fails }}) as example_{{ loop.index }}
            {%- if not loop.last %},{% endif %}
            {%- endfor %}
        from {{ model }}
        -- the rows that break a rule: PostgreSQL takes this filter into the view's query
        where tested_row_is_new and (
            {%- for rule, column, fails, example in row_rules %}
            ({{ fails }}){% if not loop.last %} or{% endif %}
            {%- endfor %}
        )
    ) as counted
    cross join lateral (
        values
            {%- for rule, column, fails, example in row_rules %}
            ('{{ rule }}', '{{ column }}', counted.failing_{{ loop.index }}, counted.example_{{ loop.index }})
            {%- if not loop.last %},{% endif %}
            {%- endfor %}
    ) as broken (rule, column_name, failing_rows, example)
    {%- else %}
    select null::text as rule, null::text as column_name, 0::bigint as failing_rows, null::text as example
    where false
    {%- endif %}
    {%- for column in unique_per_tenant %}
    union all
    select 'unique_per_tenant', '{{ column }}', coalesce(sum(occurrences), 0)::bigint, min(tenant_id || ': ' || key::text)
    from (
        select tenant_id, {{ column }} as key, count(*) as occurrences
        from {{ model }}
        where {{ column }} is not null
        group by tenant_id, {{ column }}
        -- a duplicate the test has read before passed then: one of its rows is new
        having count(*) > 1 and bool_or(tested_row_is_new)
    ) as duplicated
    {%- endfor %}
)

select rule, column_name, failing_rows, example
from broken
where failing_rows > 0
{% endtest %}
