{#- Data tests of the delivery marts (marts/delivery), and how they attribute a review. -#}

{% macro reviewer_person_joins(reviews, people) -%}
    {#- The joins that make the reviewer of a review (`reviews`: an alias of
        int_pull_request_reviews_unified's rows) a person of `people` (int_people's tenant_id,
        person_id, github_login): by their email, else (GitHub) by their login. The person is
        coalesce(by_email.person_id, by_login.person_id). One rule for fct_developer_sprints and
        int_git_moments, which logs the moments its figures change at. -#}
    left join {{ people }} as by_email
        on by_email.tenant_id = {{ reviews }}.tenant_id and by_email.person_id = {{ reviews }}.reviewer_email
    left join {{ people }} as by_login
        on by_login.tenant_id = {{ reviews }}.tenant_id
        and {{ reviews }}.source_system = 'github'
        and by_login.github_login = {{ reviews }}.reviewer_login
{%- endmacro %}

{% test values_between(model, column_name, min_value=none, max_value=none) -%}
    {#- Every non-null value of the column lies within [min_value, max_value] (either may be open).
        A table with the CHECK of these bounds holds it by construction (macros/enforced_tests.sql). -#}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null
      and (
        false
        {%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
      )
      {%- if is_relation(model) %}
      and not {{ has_check(model, values_between_constraint(column_name, min_value, max_value)) }}
      {%- endif %}
{%- endtest %}

{% test holds_for_every_row(model, expression) -%}
    {#- The boolean SQL expression is true (not false, not null) on every row. A table with the
        CHECK of this expression holds it by construction (macros/enforced_tests.sql). -#}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
    {%- if is_relation(model) %}
      and not {{ has_check(model, holds_for_every_row_constraint(expression)) }}
    {%- endif %}
{%- endtest %}
