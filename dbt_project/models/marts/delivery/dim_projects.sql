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

-- each (project, tool, name) once with its items: a few hundred groups, counted by hash (the
-- project's mode() of each sorted all 421k items, spilling to disk: 0.60 s against 0.32 s at 50
-- tenants × 2 years)
counted as (
    select tenant_id, project_key, source_system, project_name, count(*) as work_items
    from items
    group by tenant_id, project_key, source_system, project_name
),

projects as (
    select tenant_id, project_key, sum(work_items) as work_items
    from counted
    group by tenant_id, project_key
),

-- the tool and the name most of a project's items carry, as mode() has it: a missing one is
-- no candidate, and of equally many the first in order wins
{%- for cte, column in [('tools', 'source_system'), ('names', 'project_name')] %}
{{ cte }} as (
    select distinct on (tenant_id, project_key) tenant_id, project_key, {{ column }}
    from counted
    where {{ column }} is not null
    group by tenant_id, project_key, {{ column }}
    order by tenant_id, project_key, sum(work_items) desc, {{ column }}
),
{% endfor %}
registered as (
    select tenant_id, key as project_key, dmt_coverage_threshold
    from {{ source('control', 'projects') }}
    {{ tenant_filter() }}
)

select
    projects.tenant_id,
    projects.project_key,
    tools.source_system,
    names.project_name,
    projects.work_items::integer as work_items,
    registered.project_key is not null as is_registered,
    coalesce(registered.dmt_coverage_threshold, 80)::numeric(5, 2) as dmt_coverage_threshold
from projects
left join tools
    on tools.tenant_id = projects.tenant_id and tools.project_key = projects.project_key
left join names
    on names.tenant_id = projects.tenant_id and names.project_key = projects.project_key
left join registered
    on registered.tenant_id = projects.tenant_id and registered.project_key = projects.project_key
