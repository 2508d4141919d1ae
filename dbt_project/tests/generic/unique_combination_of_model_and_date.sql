{% test unique_combination_of_model_and_date(model) %}
select model_name, effective_from, count(*) as occurrences
from {{ model }}
group by model_name, effective_from
having count(*) > 1
{% endtest %}
