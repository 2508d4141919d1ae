{#- Pull requests of every git host (GitHub, Azure DevOps Git) in one relation. GitHub gives no
    author email: the author's login is matched to the email their commits carry
    (stg_github__users). state is open, merged or closed (closed without merging, which Azure
    calls abandoned). A view: it never filters by tenant. -#}
with

github as (
    select
        pull_requests.tenant_id,
        pull_requests.pull_request_id,
        'github'::text as source_system,
        pull_requests.repository,
        pull_requests.pull_request_number,
        pull_requests.title,
        pull_requests.description,
        pull_requests.head_branch,
        pull_requests.base_branch,
        pull_requests.author_login,
        users.email as author_email,
        pull_requests.github_state,
        pull_requests.is_draft,
        pull_requests.opened_at,
        pull_requests.updated_at,
        pull_requests.closed_at,
        pull_requests.merged_at,
        pull_requests.url
    from {{ ref('stg_github__pull_requests') }} as pull_requests
    left join {{ ref('stg_github__users') }} as users
        on users.tenant_id = pull_requests.tenant_id and users.user_id = pull_requests.author_login
),

azure as (
    select
        tenant_id,
        pull_request_id,
        'azure_devops_git'::text as source_system,
        repository,
        pull_request_number,
        title,
        description,
        head_branch,
        base_branch,
        author_login,
        author_email,
        github_state,
        is_draft,
        opened_at,
        updated_at,
        closed_at,
        merged_at,
        url
    from {{ ref('stg_azure_devops_git__pull_requests') }}
),

unioned as (
    select * from github
    union all
    select * from azure
)

select
    tenant_id,
    pull_request_id,
    source_system,
    repository,
    pull_request_number,
    title,
    description,
    head_branch,
    base_branch,
    author_login,
    author_email,
    case
        when merged_at is not null then 'merged'
        when github_state = 'open' then 'open'
        else 'closed'
    end as state,
    is_draft,
    opened_at,
    updated_at,
    closed_at,
    merged_at,
    url
from unioned
