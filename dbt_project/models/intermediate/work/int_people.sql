{#- One person per tenant and email, across every tool the tenant uses: the email is the
    identity that joins a Jira account, a ClickUp member, an Azure DevOps identity and a GitHub
    login (GitHub's through the email its commits carry, see stg_github__users). Anyone who
    appears only as an assignee, reporter or pull-request author is a person too.
    primary_project_key is the project where they were assigned the most work items: the best
    proxy the tools give for their team.
    Built incrementally by changed tenants (macros/incremental_tenants.sql): a build derives anew
    only the tenants loaded since the last (loads_version). -#}
{{ per_tenant_loads_table(
    key=['tenant_id', 'person_id'],
    source_types=['jira', 'clickup', 'azure_boards', 'github', 'azure_devops_git']
) }}

with

loads_versions as (
    {{ loads_versions() }}
),

accounts as (
    {%- for tool in ['jira', 'clickup', 'azure_boards', 'github'] %}
    select tenant_id, source_system, user_id, email, display_name
    from {{ ref('stg_' ~ tool ~ '__users') }}
    where email is not null {{ and_tenant() }} {{ and_tenant_in_batch() }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

-- Every item's people and project, counted: read once, and a few thousand combinations where
-- there are hundreds of thousands of items (at 50 tenants × 2 years, 2,928 of 355,656), which
-- the emails and assignments below read instead of the items (two passes over every item's
-- emails were 0.6 s of the day's build).
items as (
    select tenant_id, assignee_email, reporter_email, project_key, count(*) as items
    from {{ ref('int_work_items__unioned') }}
    where true {{ and_tenant() }} {{ and_tenant_in_batch() }}
    group by tenant_id, assignee_email, reporter_email, project_key
),

pull_request_authors as (
    select tenant_id, author_email as email
    from {{ ref('stg_azure_devops_git__pull_requests') }}
    where author_email is not null {{ and_tenant() }} {{ and_tenant_in_batch() }}
    union all
    select tenant_id, reviewer_email as email
    from {{ ref('stg_azure_devops_git__reviews') }}
    where reviewer_email is not null {{ and_tenant() }} {{ and_tenant_in_batch() }}
),

-- (grouped, not a union's distinct: the planner then hashes the few hundred people instead of
-- sorting every item's two emails, which spilled to disk)
emails as (
    select tenant_id, email
    from (
        select tenant_id, email from accounts
        union all
        select tenant_id, assignee_email from items where assignee_email is not null
        union all
        select tenant_id, reporter_email from items where reporter_email is not null
        union all
        select tenant_id, email from pull_request_authors
    ) as found
    group by tenant_id, email
),

assignments as (
    select
        tenant_id,
        assignee_email as email,
        project_key,
        sum(items) as assigned_items,
        row_number() over (
            partition by tenant_id, assignee_email order by sum(items) desc, project_key
        ) as rank
    from items
    where assignee_email is not null
    group by tenant_id, assignee_email, project_key
),

named as (
    select
        tenant_id,
        email,
        max(display_name) filter (where source_system = 'jira') as jira_name,
        max(display_name) filter (where source_system = 'azure_boards') as azure_name,
        max(display_name) filter (where source_system = 'github') as github_name,
        max(display_name) filter (where source_system = 'clickup') as clickup_name,
        max(user_id) filter (where source_system = 'jira') as jira_account_id,
        max(user_id) filter (where source_system = 'clickup') as clickup_user_id,
        max(user_id) filter (where source_system = 'azure_boards') as azure_user_id,
        max(user_id) filter (where source_system = 'github') as github_login,
        string_agg(distinct source_system, ', ' order by source_system) as source_systems
    from accounts
    group by tenant_id, email
)

select
    emails.tenant_id,
    emails.email as person_id,
    emails.email,
    coalesce(named.jira_name, named.azure_name, named.github_name, named.clickup_name, split_part(emails.email, '@', 1))
        as display_name,
    named.github_login,
    named.jira_account_id,
    named.clickup_user_id,
    named.azure_user_id,
    named.source_systems,
    assignments.project_key as primary_project_key,
    loads_versions.loads_version
from emails
left join named
    on named.tenant_id = emails.tenant_id and named.email = emails.email
left join assignments
    on assignments.tenant_id = emails.tenant_id and assignments.email = emails.email and assignments.rank = 1
left join loads_versions
    on loads_versions.tenant_id = emails.tenant_id
