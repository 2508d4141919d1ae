{#- The `sync` incremental strategy: a table rebuilt per tenant partition, written as a diff.

    The model selects the partition's every row, as a full rebuild would; dbt puts them in a
    temporary table; then only the differences are written: the stored rows of the partition
    that no new row equals are deleted, and the new rows no stored row equals are inserted. A
    day changes a few rows of a large table, and deleting and inserting all of them (with their
    indexes) was most of the cost of such a model. The result is the rows the model selected,
    exactly (rows are compared whole, as text: a model's rows are distinct, each mart has a
    unique key). -#}

{% macro get_incremental_sync_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set new = arg_dict['temp_relation'] -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | list -%}
    {%- set stored_row -%}row({% for column in columns %}stored.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %})::text{%- endset -%}
    {%- set new_row -%}row({% for column in columns %}fresh.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %})::text{%- endset -%}
    delete from {{ target }} as stored
    where not exists (select from {{ new }} as fresh where {{ new_row }} = {{ stored_row }})
        {{ and_tenant('stored') }};
    insert into {{ target }} ({{ columns | join(', ') }})
    select {% for column in columns %}fresh.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
    from {{ new }} as fresh
    where not exists (
        select from {{ target }} as stored
        where {{ stored_row }} = {{ new_row }} {{ and_tenant('stored') }}
    )
{%- endmacro %}
