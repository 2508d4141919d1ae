{#- No two rows share the values of `columns` (a composite key; nulls count as equal). A table
    with a unique index on those columns that treats nulls so (NULLS NOT DISTINCT, or every column
    NOT NULL, as in a primary key) holds it by construction: no row is read
    (macros/enforced_tests.sql). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
{%- if is_relation(model) %}
where not {{ has_unique_index(model, columns, nulls_equal=true) }}
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
