{#- Keys are unique within a tenant: two tenants may legitimately hold the same tool id
    (both connected the same public repository). A table with a unique index on (tenant_id,
    column) holds it by construction: no row is read (macros/enforced_tests.sql). -#}
{% test unique_per_tenant(model, column_name) %}
select tenant_id, {{ column_name }}, count(*) as occurrences
from {{ model }}
where {{ column_name }} is not null
{%- if is_relation(model) %}
    and not {{ has_unique_index(model, ['tenant_id', column_name]) }}
{%- endif %}
group by tenant_id, {{ column_name }}
having count(*) > 1
{% endtest %}
