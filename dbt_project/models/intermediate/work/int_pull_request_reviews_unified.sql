{#- Reviews of every git host with one verdict vocabulary: approved, approved_with_suggestions,
    changes_requested, waiting_for_author, commented, dismissed (Azure's votes 10, 5, -10 and -5
    are mapped in its staging model; GitHub's review states here). A GitHub review is one act;
    an Azure reviewer's row is their current vote, and first_activity_at their first vote or
    comment (the moment they first reviewed). GitHub's pending reviews
    (drafts nobody else can see) are no review. A view: it never filters by tenant. -#}
with

github as (
    select
        reviews.tenant_id,
        reviews.pull_request_id,
        reviews.review_id,
        'github'::text as source_system,
        reviews.reviewer_login,
        users.email as reviewer_email,
        case reviews.review_state
            when 'APPROVED' then 'approved'
            when 'CHANGES_REQUESTED' then 'changes_requested'
            when 'COMMENTED' then 'commented'
            when 'DISMISSED' then 'dismissed'
        end as verdict,
        reviews.submitted_at,
        reviews.submitted_at as first_activity_at
    from {{ ref('stg_github__reviews') }} as reviews
    left join {{ ref('stg_github__users') }} as users
        on users.tenant_id = reviews.tenant_id and users.user_id = reviews.reviewer_login
    where reviews.review_state <> 'PENDING' and reviews.submitted_at is not null
),

azure as (
    select
        tenant_id,
        pull_request_id,
        review_id,
        'azure_devops_git'::text as source_system,
        reviewer_login,
        reviewer_email,
        verdict,
        submitted_at,
        first_activity_at
    from {{ ref('stg_azure_devops_git__reviews') }}
    where submitted_at is not null
)

select * from github
union all
select * from azure
