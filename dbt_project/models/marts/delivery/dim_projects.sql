-- One row per project (Jira project, ClickUp space, Azure Boards project) a tenant's work items
-- belong to, with its Done-Means-Tested coverage threshold: control.projects' where the project
-- is registered there (same tenant and key), else the default 80. A key is one project per
-- tenant, as control.projects has it; its name and tool are the ones most of its items carry.

with

items as (
    select tenant_id, project_key, project_name, source_system
    from {{ ref('int_work_items_unified') }}
    where project_key is not null {{ and_tenant() }}
),

projects as (
    select
        tenant_id,
        project_key,
        mode() within group (order by source_system) as source_system,
        mode() within group (order by project_name) as project_name,
        count(*) as work_items
    from items
    group by tenant_id, project_key
),

registered as (
    select tenant_id, key as project_key, dmt_coverage_threshold
    from {{ source('control', 'projects') }}
    {{ tenant_filter() }}
)

select
    projects.tenant_id,
    projects.project_key,
    projects.source_system,
    projects.project_name,
    projects.work_items::integer as work_items,
    registered.project_key is not null as is_registered,
    coalesce(registered.dmt_coverage_threshold, 80)::numeric(5, 2) as dmt_coverage_threshold
from projects
left join registered
    on registered.tenant_id = projects.tenant_id and registered.project_key = projects.project_key
