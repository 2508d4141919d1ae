{#- The columns of stg_github__commits. Azure DevOps ties a commit to no account, only to the
    author's name and email, so author_login is null. -#}
with

source as (
    {{ union_tenant_sources(source('azure_devops_git', 'commits'), 'azure_devops_git', [
        'pull_request_id', 'commit_id', 'repository_id', 'author_name', 'author_email',
        'authored_at', 'committed_at'
    ]) }}
),

repositories as (
    {{ union_tenant_sources(source('azure_devops_git', 'repositories'), 'azure_devops_git', [
        'id', 'name', 'project_name'
    ]) }}
)

select
    source.tenant_id,
    'azure_devops_git:' || source.pull_request_id::text as pull_request_id,
    source.commit_id::text as commit_sha,
    repositories.project_name::text || '/' || repositories.name::text as repository,
    null::text as author_login,
    lower(source.author_email::text) as author_email,
    source.author_name::text as author_name,
    source.authored_at::timestamptz as authored_at,
    source.committed_at::timestamptz as committed_at
from source
left join repositories
    on source.tenant_id = repositories.tenant_id
    and source.repository_id::text = repositories.id::text
