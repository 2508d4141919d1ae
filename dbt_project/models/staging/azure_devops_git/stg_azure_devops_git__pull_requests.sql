{#- The columns of stg_github__pull_requests (so the two unify), plus author_email and Azure's
    own status. Azure has no "updated at": the latest of creation, closing, votes, comments
    and commits stands in for it. -#}
{#- (its pre-hook indexes the raw copies on the reviewers' and commits' pull request id, read per
    pull request below, and on the key it computes, which the relationships tests of the reviews
    and work item links probe: key_read_parents) -#}
{{ config(pre_hook="{{ index_raw_load_ids([], item_ids=azure_activity_indexes(), expressions=pull_request_key_expressions(['pull_requests'], 'azure_devops_git')) }}") }}
with

source as (
    {{ union_tenant_sources(source('azure_devops_git', 'pull_requests'), 'azure_devops_git', [
        'id', 'artifact_id', 'project_name', 'repository_name', 'title', 'description', 'status',
        'is_draft', 'author_email', 'source_ref', 'target_ref', 'created_at', 'closed_at', 'web_url'
    ]) }}
),

renamed as (
    select
        source.tenant_id,
        'azure_devops_git:' || source.id::text as pull_request_id,
        source.id::bigint as github_pull_request_id,
        source.artifact_id::text as github_node_id,
        source.project_name::text || '/' || source.repository_name::text as repository,
        source.id::integer as pull_request_number,
        source.title::text as title,
        source.description::text as description,
        case when source.status::text = 'active' then 'open' else 'closed' end as github_state,
        coalesce(source.is_draft::boolean, false) as is_draft,
        lower(source.author_email::text) as author_login,
        regexp_replace(source.source_ref::text, '^refs/heads/', '') as head_branch,
        regexp_replace(source.target_ref::text, '^refs/heads/', '') as base_branch,
        source.created_at::timestamptz as opened_at,
        greatest(
            source.created_at::timestamptz,
            source.closed_at::timestamptz,
            reviewer_activity.last_review_at,
            commit_activity.last_commit_at
        ) as updated_at,
        source.closed_at::timestamptz as closed_at,
        case when source.status::text = 'completed' then source.closed_at::timestamptz end as merged_at,
        source.web_url::text as url,
        lower(source.author_email::text) as author_email,
        source.status::text as azure_status
    from source
    -- each pull request's reviewers and commits read by its id, through the raw copies' index
    -- on it (macros/incremental_pull_requests.sql, azure_activity_indexes): a read of a few
    -- pull requests (an incremental build's batch) reads only theirs, where a join of whole
    -- aggregates read every reviewer and commit of every tenant (0.3 s at 50 tenants x 2
    -- years). A read of every pull request (a build in full) pays twice as much: 0.54 s
    -- against 0.26 s. A reader of other columns reads neither (the joins are removed).
    left join lateral (
        select greatest(
            max(reviewers.voted_at::timestamptz), max(reviewers.vote_reset_at::timestamptz),
            max(reviewers.last_commented_at::timestamptz)
        ) as last_review_at
        from (
            {{ union_tenant_sources(source('azure_devops_git', 'reviewers'), 'azure_devops_git', [
                'pull_request_id', 'voted_at', 'vote_reset_at', 'last_commented_at'
            ]) }}
        ) as reviewers
        where reviewers.tenant_id = source.tenant_id and reviewers.pull_request_id::bigint = source.id::bigint
    ) as reviewer_activity on true
    left join lateral (
        select max(commits.committed_at::timestamptz) as last_commit_at
        from (
            {{ union_tenant_sources(source('azure_devops_git', 'commits'), 'azure_devops_git', [
                'pull_request_id', 'committed_at'
            ]) }}
        ) as commits
        where commits.tenant_id = source.tenant_id and commits.pull_request_id::bigint = source.id::bigint
    ) as commit_activity on true
)

select * from renamed
