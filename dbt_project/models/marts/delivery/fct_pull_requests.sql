-- One row per pull request of any git host (GitHub, Azure DevOps Git) with its review timeline,
-- as int_pull_requests_unified has it: a review counts when it was submitted (not pending) by
-- someone other than the author; merged without review means merged before any such review.
-- Built per pull request: the ones int_pull_requests_unified rebuilt since this mart last ran
-- (it logs them: macros/incremental_pull_requests.sql).
{{ per_logged_pull_request_table() }}

with

pull_requests as (
    select * from {{ ref('int_pull_requests_unified') }}
    where true {{ and_pull_request_in_batch() }}
),

final as (
    select
        pull_request_id,
        tenant_id,
        source_system as source_type,
        repository,
        pull_request_number,
        title,
        author_login,
        state,
        is_draft,
        opened_at,
        first_review_at,
        merged_at,
        closed_at,
        hours_to_first_review::numeric(12, 2) as hours_to_first_review,
        review_count,
        reviewer_count,
        merged_at is not null as is_merged,
        is_merged_without_review,
        updated_at
    from pull_requests
)

select * from final
