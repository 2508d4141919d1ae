{#- Pull-request health per repository and ISO week (Monday to Sunday in the tenant's time
    zone, control.tenants.timezone) of the pull requests' opening: every figure is about the
    pull requests opened that week (drafts included), whenever they were reviewed or merged.
    The data ties no repository to a team, so repositories are the grouping.

    * time to first review: opened_at → the first review by someone other than the author
      (int_pull_requests_unified), in hours, over the reviewed pull requests; continuous
      (interpolated) percentiles;
    * reviewed: has such a review (at any time); merged without review: merged before any;
    * review depth: reviews by others and distinct reviewers per pull request, over all of
      the week's pull requests (one never reviewed counts as 0).

    Built by week (macros/incremental_pr_health.sql): a build recomputes the rows of the pull
    requests int_pull_requests_unified rebuilt since, in the week they were counted in before
    and in the week they are in now. -#}
{{ per_logged_week_table() }}

with

tenants as (
    select slug as tenant_id, timezone
    from {{ source('control', 'tenants') }}
),

pull_requests as (
    select
        pull_requests.tenant_id,
        pull_requests.source_system,
        {{ pr_repository('pull_requests.repository') }} as repository,
        {{ pr_week_start('pull_requests.opened_at', 'tenants.timezone') }} as week_start,
        extract(epoch from pull_requests.first_review_at - pull_requests.opened_at) / 3600.0 as hours_to_first_review,
        pull_requests.is_reviewed,
        pull_requests.merged_at is not null as is_merged,
        pull_requests.is_merged_without_review,
        pull_requests.review_count,
        pull_requests.reviewer_count
    from {{ ref('int_pull_requests_unified') }} as pull_requests
    inner join tenants
        on tenants.tenant_id = pull_requests.tenant_id
    where pull_requests.opened_at is not null {{ and_pull_request_in_batch('pull_requests') }}
),

weekly as (
    select
        tenant_id,
        source_system,
        repository,
        week_start,
        count(*) as prs_opened,
        count(*) filter (where is_reviewed) as prs_reviewed,
        count(*) filter (where is_merged) as prs_merged,
        count(*) filter (where is_merged_without_review) as merged_without_review,
        percentile_cont(0.5) within group (order by hours_to_first_review) as p50_hours,
        percentile_cont(0.9) within group (order by hours_to_first_review) as p90_hours,
        avg(review_count) as mean_reviews,
        avg(reviewer_count) as mean_reviewers
    from pull_requests
    group by tenant_id, source_system, repository, week_start
)

select
    tenant_id,
    source_system,
    repository,
    week_start,
    to_char(week_start, 'IYYY-"W"IW') as iso_week,
    prs_opened::integer as prs_opened,
    prs_reviewed::integer as prs_reviewed,
    prs_merged::integer as prs_merged,
    merged_without_review::integer as merged_without_review,
    round(100.0 * prs_reviewed / prs_opened, 2)::numeric(5, 2) as share_reviewed,
    round(p50_hours::numeric, 2)::numeric(12, 2) as p50_hours_to_first_review,
    round(p90_hours::numeric, 2)::numeric(12, 2) as p90_hours_to_first_review,
    round(mean_reviews, 2)::numeric(8, 2) as mean_reviews_per_pr,
    round(mean_reviewers, 2)::numeric(8, 2) as mean_reviewers_per_pr
from weekly
