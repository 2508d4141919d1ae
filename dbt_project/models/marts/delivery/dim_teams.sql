-- One row per team of a tenant (control.teams) with the projects taken to be its own: those
-- whose name starts with the team's name or its slug, ignoring case ("Payments" and
-- "payments" both own "Payments team"). The trackers say nothing about teams, so this naming
-- rule is the link; a team whose projects are named otherwise owns none, and a project whose
-- name starts with two teams' names belongs to both. project_keys lists them comma-separated,
-- as the intermediate models list things (empty when the team owns none).

with

teams as (
    select team_id, tenant_id, slug, name
    from {{ source('control', 'teams') }}
    {{ tenant_filter() }}
),

projects as (
    select tenant_id, project_key, project_name
    from {{ ref('dim_projects') }}
    {{ tenant_filter() }}
),

owned as (
    select
        teams.team_id,
        string_agg(distinct projects.project_key, ', ' order by projects.project_key) as project_keys
    from teams
    inner join projects
        on projects.tenant_id = teams.tenant_id
        and (
            (length(teams.name) > 0 and starts_with(lower(projects.project_name), lower(teams.name)))
            or (length(teams.slug) > 0 and starts_with(lower(projects.project_name), lower(teams.slug)))
        )
    group by teams.team_id
)

select
    teams.tenant_id,
    teams.team_id,
    teams.slug as team_slug,
    teams.name as team_name,
    coalesce(owned.project_keys, '') as project_keys
from teams
left join owned
    on owned.team_id = teams.team_id
