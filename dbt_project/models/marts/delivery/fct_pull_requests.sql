with

pull_requests as (
    select * from {{ ref('stg_github__pull_requests') }}
    {{ tenant_filter() }}
),

reviews as (
    select * from {{ ref('stg_github__reviews') }}
    {{ tenant_filter() }}
),

-- A review counts when it was submitted (not pending) by someone other than the author.
counted_reviews as (
    select
        reviews.tenant_id,
        reviews.pull_request_id,
        reviews.reviewer_login,
        reviews.submitted_at,
        pull_requests.merged_at
    from reviews
    inner join pull_requests
        on reviews.tenant_id = pull_requests.tenant_id
        and reviews.pull_request_id = pull_requests.pull_request_id
    where reviews.review_state <> 'PENDING'
        and reviews.submitted_at is not null
        and reviews.reviewer_login is distinct from pull_requests.author_login
),

review_stats as (
    select
        tenant_id,
        pull_request_id,
        min(submitted_at) as first_review_at,
        count(*) as review_count,
        count(distinct reviewer_login) as reviewer_count,
        count(*) filter (where submitted_at <= merged_at) as reviews_before_merge
    from counted_reviews
    group by tenant_id, pull_request_id
),

final as (
    select
        pull_requests.pull_request_id,
        pull_requests.tenant_id,
        'github'::text as source_type,
        pull_requests.repository,
        pull_requests.pull_request_number,
        pull_requests.title,
        pull_requests.author_login,
        case
            when pull_requests.merged_at is not null then 'merged'
            else pull_requests.github_state
        end as state,
        pull_requests.is_draft,
        pull_requests.opened_at,
        review_stats.first_review_at,
        pull_requests.merged_at,
        pull_requests.closed_at,
        round(
            (extract(epoch from review_stats.first_review_at - pull_requests.opened_at) / 3600.0)::numeric,
            2
        )::numeric(12, 2) as hours_to_first_review,
        coalesce(review_stats.review_count, 0)::integer as review_count,
        coalesce(review_stats.reviewer_count, 0)::integer as reviewer_count,
        pull_requests.merged_at is not null as is_merged,
        pull_requests.merged_at is not null
            and coalesce(review_stats.reviews_before_merge, 0) = 0 as is_merged_without_review,
        pull_requests.updated_at
    from pull_requests
    left join review_stats
        on pull_requests.tenant_id = review_stats.tenant_id
        and pull_requests.pull_request_id = review_stats.pull_request_id
)

select * from final
