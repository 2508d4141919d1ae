{#- Keys are unique within a tenant: two tenants may legitimately hold the same tool id
    (both connected the same public repository). -#}
{% test unique_per_tenant(model, column_name) %}
select tenant_id, {{ column_name }}, count(*) as occurrences
from {{ model }}
where {{ column_name }} is not null
group by tenant_id, {{ column_name }}
having count(*) > 1
{% endtest %}
