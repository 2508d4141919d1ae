{#- One row per pull request of any git host: who wrote it (a unified person), how it was
    reviewed, when it was first reviewed, merged and closed, and the work items it implements.

    Reviews by the author themselves do not count. first_review_at is the first review by
    someone else, whatever its verdict; a pull request is reviewed if it has one, and merged
    without review if it was merged before any (GitHub and Azure alike).

    Built per pull request (macros/incremental_pull_requests.sql): a pull request is rebuilt
    when any of its raw rows was loaded, when int_pull_request_work_items rebuilt it (its links
    or their items' keys may have changed), and a tenant whole when its GitHub login → email
    mapping changed. -#}
-- depends_on: {{ ref('stg_github__users') }}
{{ per_pull_request_table(
    tables=['pull_requests', 'reviews', 'reviewers', 'commits', 'pull_request_work_items'],
    lookups='github_user_lookups', logs_for=['fct_pull_requests', 'int_git_moments', 'fct_pr_health']
) }}

with

pull_requests as (
    select pull_requests.*
    from {{ rows_of_batch_pull_requests(ref('int_pull_requests__unioned'), 'pull_requests') }}
    where true {{ and_tenant('pull_requests') }}
),

reviews as (
    select reviews.*
    from {{ rows_of_batch_pull_requests(ref('int_pull_request_reviews_unified'), 'reviews') }}
    inner join pull_requests
        on pull_requests.tenant_id = reviews.tenant_id and pull_requests.pull_request_id = reviews.pull_request_id
    where reviews.reviewer_login is distinct from pull_requests.author_login
      and (reviews.reviewer_email is null or reviews.reviewer_email is distinct from pull_requests.author_email)
),

review_stats as (
    select
        reviews.tenant_id,
        reviews.pull_request_id,
        min(reviews.first_activity_at) as first_review_at,
        min(reviews.submitted_at) filter (where reviews.verdict in ('approved', 'approved_with_suggestions'))
            as first_approval_at,
        count(*) as review_count,
        count(distinct reviews.reviewer_login) as reviewer_count,
        count(distinct reviews.reviewer_login) filter (
            where reviews.verdict in ('approved', 'approved_with_suggestions')
        ) as approver_count,
        count(*) filter (where reviews.verdict in ('changes_requested', 'waiting_for_author'))
            as changes_requested_count,
        count(*) filter (where reviews.verdict = 'commented') as comment_review_count
    from reviews
    group by reviews.tenant_id, reviews.pull_request_id
),

links as (
    select
        links.tenant_id,
        links.pull_request_id,
        string_agg(items.work_item_key, ', ' order by items.work_item_key) as work_item_keys,
        count(*) as linked_work_items
    from {{ ref('int_pull_request_work_items') }} as links
    inner join {{ ref('int_work_items__unioned') }} as items
        on items.tenant_id = links.tenant_id and items.work_item_uid = links.work_item_uid
    where true {{ and_pull_request_in_batch('links') }}
    group by links.tenant_id, links.pull_request_id
)

select
    pull_requests.tenant_id,
    pull_requests.pull_request_id,
    pull_requests.source_system,
    pull_requests.repository,
    pull_requests.pull_request_number,
    pull_requests.title,
    pull_requests.head_branch,
    pull_requests.author_login,
    pull_requests.author_email as author_person_id,
    pull_requests.state,
    pull_requests.is_draft,
    pull_requests.opened_at,
    review_stats.first_review_at,
    review_stats.first_approval_at,
    pull_requests.merged_at,
    pull_requests.closed_at,
    pull_requests.updated_at,
    round((extract(epoch from review_stats.first_review_at - pull_requests.opened_at) / 3600.0)::numeric, 2)
        as hours_to_first_review,
    coalesce(review_stats.review_count, 0)::integer as review_count,
    coalesce(review_stats.reviewer_count, 0)::integer as reviewer_count,
    coalesce(review_stats.approver_count, 0)::integer as approver_count,
    coalesce(review_stats.changes_requested_count, 0)::integer as changes_requested_count,
    review_stats.first_review_at is not null as is_reviewed,
    pull_requests.merged_at is not null
        and (review_stats.first_review_at is null or review_stats.first_review_at > pull_requests.merged_at)
        as is_merged_without_review,
    links.work_item_keys,
    coalesce(links.linked_work_items, 0)::integer as linked_work_items,
    pull_requests.url
from pull_requests
left join review_stats
    on review_stats.tenant_id = pull_requests.tenant_id and review_stats.pull_request_id = pull_requests.pull_request_id
left join links
    on links.tenant_id = pull_requests.tenant_id and links.pull_request_id = pull_requests.pull_request_id
