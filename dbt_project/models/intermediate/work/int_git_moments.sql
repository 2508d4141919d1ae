{#- The git facts the sprint marts count, each at the moment it counts at, with a fingerprint of
    what decides how it counts: what tells the sprint marts which sprints a git load changed.

    One row per fact (`fact` names it within its pull request):
      * 'opened': a pull request's opening (pull requests authored), by its author;
      * 'merged': its merge (pull requests merged; fct_sprints' merged pull requests of a
        sprint's items with their review figures), by its author, with its opening, first
        review, review flags and linked work items;
      * 'review:<id>': a review's submission (pull requests reviewed), by its reviewer, with the
        pull request's author (a review of one's own pull request does not count);
      * 'first_review:<person>': a person's first review of the pull request (review
        turnaround counts at it, from the opening), with the pull request's opening and author;
      * 'commit:<sha>': each of its commits, at its authoring, by its author.
    Only facts with a moment are kept. A review gained or changed logs its own moment and, when it
    moves its reviewer's first review, the first review's old and new moments: not every review
    of the pull request.

    Built per pull request, following int_pull_requests_unified (macros/incremental_pull_requests.sql:
    it logs the pull requests it rebuilt). Its post-hook compares a rebuilt pull request's facts
    with the ones they replace and logs, for fct_sprints and fct_developer_sprints, every moment
    of a group that changed (macros/incremental_sprints.sql): a pull request loaded again with
    the same facts changes no sprint. -#}
{{ per_logged_pull_request_table(key=['fact'], moments_for=['fct_sprints', 'fct_developer_sprints']) }}

with

pull_requests as (
    select tenant_id, pull_request_id, source_system, author_login, author_person_id, opened_at, merged_at,
        first_review_at, is_reviewed, is_merged_without_review
    from {{ ref('int_pull_requests_unified') }}
    where true {{ and_pull_request_in_batch() }}
),

links as (
    select tenant_id, pull_request_id, string_agg(work_item_uid, ',' order by work_item_uid) as work_items
    from {{ ref('int_pull_request_work_items') }}
    where true {{ and_pull_request_in_batch() }}
    group by tenant_id, pull_request_id
),

people as (
    select tenant_id, person_id, github_login
    from {{ ref('int_people') }}
    {{ tenant_filter() }}
),

-- each review with its reviewer as a person, as fct_developer_sprints attributes it, and its
-- pull request's author and opening
reviews as (
    select
        reviews.tenant_id, reviews.pull_request_id, reviews.review_id, reviews.source_system,
        reviews.reviewer_email, reviews.reviewer_login, reviews.submitted_at, reviews.first_activity_at,
        coalesce(by_email.person_id, by_login.person_id) as person_id,
        pull_requests.author_login, pull_requests.author_person_id, pull_requests.opened_at
    from {{ rows_of_batch_pull_requests(ref('int_pull_request_reviews_unified'), 'reviews') }}
    {{ reviewer_person_joins('reviews', 'people') }}
    left join pull_requests
        on pull_requests.tenant_id = reviews.tenant_id and pull_requests.pull_request_id = reviews.pull_request_id
    where true {{ and_tenant('reviews') }}
),

commits as (
    select commits.tenant_id, commits.pull_request_id, commits.commit_sha, commits.author_email,
        commits.author_login, commits.authored_at
    from {{ rows_of_batch_pull_requests(ref('stg_github__commits'), 'commits') }}
    where true {{ and_tenant('commits') }}
    union all
    select commits.tenant_id, commits.pull_request_id, commits.commit_sha, commits.author_email,
        commits.author_login, commits.authored_at
    from {{ rows_of_batch_pull_requests(ref('stg_azure_devops_git__commits'), 'commits') }}
    where true {{ and_tenant('commits') }}
),

facts as (
    select
        tenant_id,
        pull_request_id,
        'opened'::text as fact,
        opened_at as counted_at,
        md5(row(source_system, author_login, author_person_id)::text) as fingerprint
    from pull_requests
    union all
    select
        pull_requests.tenant_id,
        pull_requests.pull_request_id,
        'merged',
        pull_requests.merged_at,
        md5(row(
            pull_requests.source_system, pull_requests.author_login, pull_requests.author_person_id,
            pull_requests.opened_at, pull_requests.first_review_at, pull_requests.is_reviewed,
            pull_requests.is_merged_without_review, links.work_items
        )::text)
    from pull_requests
    left join links
        on links.tenant_id = pull_requests.tenant_id and links.pull_request_id = pull_requests.pull_request_id
    union all
    -- (a review with two people behind its reviewer is one fact)
    select distinct on (tenant_id, pull_request_id, review_id)
        tenant_id,
        pull_request_id,
        'review:' || review_id,
        submitted_at,
        md5(row(source_system, reviewer_email, reviewer_login, author_login, author_person_id)::text)
    from reviews
    union all
    select
        tenant_id,
        pull_request_id,
        'first_review:' || person_id,
        min(first_activity_at),
        md5(row(min(opened_at), min(author_person_id), min(author_login))::text)
    from reviews
    where person_id is not null
    group by tenant_id, pull_request_id, person_id
    union all
    -- (a commit listed twice for one pull request is one fact)
    select
        tenant_id,
        pull_request_id,
        'commit:' || commit_sha,
        min(authored_at),
        md5(string_agg(
            row(author_email, author_login, authored_at)::text, ','
            order by row(author_email, author_login, authored_at)::text
        ))
    from commits
    where commit_sha is not null
    group by tenant_id, pull_request_id, commit_sha
)

select tenant_id, pull_request_id, fact, counted_at, fingerprint
from facts
where counted_at is not null
