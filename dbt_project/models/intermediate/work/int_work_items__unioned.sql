{#- Every tracker's work items (staging contract, docs/sources.md) in one relation, with the
    keys the unified models join on: work_item_uid = '<source_system>:<work_item_id>' (the
    same id can exist in two tools), and the parent's, cause's and sprint's uids likewise.
    A table indexed by item: the models after it read it many times (and the incremental ones
    a few items of it); by sprint, for int_sprint_scope's lookup of a running sprint's items; and
    by lowercase key, for int_pull_request_work_items' lookup of the keys pull requests name; and
    by parent, for int_work_items_unified's lookup of a changed item's children. It
    follows the staging tables (staged per item, macros/incremental.sql) item by item: a run
    replaces the items staged from a load newer than the newest it holds of the tenant and tool
    (every item of a tenant staged with other lookups) and drops the tenants staging no longer
    has. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ replace_restaged_work_items() }}",
    post_hook="{{ ensure_indexes() }}",
    indexes=[
        {'columns': ['tenant_id', 'work_item_uid']},
        {'columns': ['tenant_id', 'loaded_at']}
    ],
    ensured_indexes=[
        {'columns': ['tenant_id', 'sprint_uid'], 'where_set': 'sprint_uid'},
        {'columns': ['tenant_id', 'lower(work_item_key)']},
        {'columns': ['tenant_id', 'parent_uid'], 'where_set': 'parent_uid'}
    ]
) }}
{%- set columns = [
    'tenant_id', 'source_system', 'work_item_id', 'work_item_key', 'project_key', 'project_name',
    'item_type', 'native_type', 'title', 'status', 'status_category', 'story_points', 'sprint_id',
    'assignee_email', 'reporter_email', 'parent_id', 'caused_by_id', 'created_at', 'updated_at',
    'resolved_at', 'url', 'dmt_ac_quality', 'dmt_unit_test_task', 'dmt_unit_test_status',
    'dmt_coverage_pct', 'dmt_pr_links', 'dmt_ci_evidence', 'dmt_reviewer_signoff', 'dmt_exception',
    'dmt_exception_reason', 'dmt_exception_approver', 'dmt_exception_expires', 'loaded_at',
    'lookups_version'
] -%}
with

unioned as (
    {%- for tracker in work_item_trackers() %}
    select {{ columns | join(', ') }}
    from {{ ref('stg_' ~ tracker ~ '__work_items') }}
    where true {{ and_tenant() }}
    {%- if is_incremental() %}
        and (tenant_id, work_item_id) in (
            select tenant_id, work_item_id from {{ restaged_work_items_relation() }} where source_system = '{{ tracker }}'
        )
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    tenant_id,
    source_system || ':' || work_item_id as work_item_uid,
    case when parent_id is not null then source_system || ':' || parent_id end as parent_uid,
    case when caused_by_id is not null then source_system || ':' || caused_by_id end as caused_by_uid,
    case when sprint_id is not null then source_system || ':' || sprint_id end as sprint_uid,
    {{ columns[1:] | join(',\n    ') }}
from unioned
