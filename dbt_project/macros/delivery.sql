{#- Data tests of the delivery marts (marts/delivery). -#}

{% test values_between(model, column_name, min_value=none, max_value=none) -%}
    {#- Every non-null value of the column lies within [min_value, max_value] (either may be open). -#}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null
      and (
        false
        {%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
      )
{%- endtest %}

{% test holds_for_every_row(model, expression) -%}
    {#- The boolean SQL expression is true (not false, not null) on every row. -#}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{%- endtest %}
