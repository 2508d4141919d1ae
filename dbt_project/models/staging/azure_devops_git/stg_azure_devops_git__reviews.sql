{#- One row per reviewer who acted on a pull request: voted (the current vote is the verdict,
    submitted_at when it was cast), had the vote reset by a push (dismissed), or only commented.
    first_activity_at is their first vote or comment, whatever came later (time to first review).
    Reviewers who were asked and did nothing are no review and are left out. -#}
with

source as (
    {{ union_tenant_sources(source('azure_devops_git', 'reviewers'), 'azure_devops_git', [
        'pull_request_id', 'reviewer_id', 'display_name', 'unique_name', 'vote', 'is_required',
        'voted_at', 'vote_reset_at', 'comment_count', 'last_commented_at', 'first_voted_at',
        'first_commented_at', '_dlt_load_id'
    ]) }}
),

classified as (
    select
        tenant_id,
        pull_request_id::bigint as azure_pull_request_id,
        reviewer_id::text as reviewer_id,
        display_name::text as reviewer_name,
        unique_name::text as unique_name,
        vote::integer as vote,
        coalesce(is_required::boolean, false) as is_required,
        voted_at::timestamptz as voted_at,
        vote_reset_at::timestamptz as vote_reset_at,
        coalesce(comment_count::integer, 0) as comment_count,
        last_commented_at::timestamptz as last_commented_at,
        least(first_voted_at::timestamptz, first_commented_at::timestamptz) as first_activity_at,
        case
            when vote::integer = 10 then 'approved'
            when vote::integer = 5 then 'approved_with_suggestions'
            when vote::integer = -5 then 'waiting_for_author'
            when vote::integer = -10 then 'changes_requested'
            when vote_reset_at is not null then 'dismissed'
            when coalesce(comment_count::integer, 0) > 0 then 'commented'
        end as verdict,
        {{ raw_load_stamps() }}
    from source
)

select
    tenant_id,
    'azure_devops_git:' || azure_pull_request_id::text as pull_request_id,
    'azure_devops_git:' || azure_pull_request_id::text || ':' || reviewer_id as review_id,
    lower(unique_name) as reviewer_login,
    case when unique_name like '%@%' then lower(unique_name) end as reviewer_email,
    verdict,
    case when verdict = 'commented' then last_commented_at else voted_at end as submitted_at,
    coalesce(first_activity_at, case when verdict = 'commented' then last_commented_at else voted_at end)
        as first_activity_at,
    reviewer_name,
    vote,
    is_required,
    vote_reset_at,
    load_id,
    loaded_at
from classified
where verdict is not null
