-- One row per person of a tenant: the unified identity (an email) that joins their accounts in
-- every tool, as int_people builds it. The developer marts key people by person_id.

with

people as (
    select
        tenant_id,
        person_id,
        email,
        display_name,
        github_login,
        jira_account_id,
        clickup_user_id,
        azure_user_id,
        source_systems,
        primary_project_key
    from {{ ref('int_people') }}
    {{ tenant_filter() }}
)

select
    tenant_id,
    person_id,
    email,
    display_name,
    github_login,
    jira_account_id,
    clickup_user_id,
    azure_user_id,
    source_systems,
    primary_project_key
from people
