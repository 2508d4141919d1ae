{#- One row per person and sprint: what they completed of the sprint and what they did in its
    window. Who has a row: everyone assigned (now) an item of the sprint's scope, and everyone
    whose primary project is the sprint's project (int_people.primary_project_key).

    * the window is fct_sprints': [start_at, completion or planned end, capped at as_of());
    * completed work: items completed in the sprint (int_sprint_scope) whose assignee is the
      person, at their points at the sprint's end (as velocity counts them);
    * activity (commits, pull requests, reviews) is the person's in the window, in any
      repository: sprints of different projects overlap, so it is not additive across sprints.
      A commit is the author's by its email, else (GitHub) by its author login's person; a
      pull request's author likewise. Reviews of one's own pull request do not count;
    * review turnaround: for each pull request whose first review by the person falls in the
      window, that review's time minus the pull request's opening, averaged;
    * defects attributed: bugs caused by stories the person completed in the sprint;
    * DMT: over their completed non-epic items that fct_work_item_compliance assesses.

    Built incrementally by changed sprints (macros/incremental_sprints.sql): a build rebuilds
    every person's row of the sprints whose window, members, completed work, defects, DMT
    figures or git data changed since the mart last built them, and a tenant whole when its
    people's identities changed (people_version). Such a build reads the commits authored in the
    batch's windows (by index, window by window), and pull requests and reviews from the start of
    the batch's earliest window on (per tenant): a pull request reviewed since is read with all
    its reviews. -#}
-- depends_on: {{ ref('int_git_moments') }}
{{ per_sprint_table(changed='fct_developer_sprints_changed') }}
{#- the raw git rows it reads, by index: commits by their authoring time (the batch's windows),
    GitHub's reviews by an index holding every column read of them (all_reviews: the index, not
    the rows with their payloads: 260 MB at 50 tenants × 2 years) -#}
{{ config(pre_hook="{{ index_raw_load_ids([],
    item_ids=[('github', 'commits', 'authored_at'), ('azure_devops_git', 'commits', 'authored_at')],
    covering=[('github', 'reviews', 'activity', ['pull_request_id', 'submitted_at', 'reviewer_login', 'state', 'id'])]
) }}") }}

with

people_versions as (
    {{ people_versions() }}
),

sprints as (
    select
        tenant_id,
        sprint_uid,
        project_key,
        start_at,
        least(coalesce(completed_at, end_at), {{ as_of() }}) as window_end_at
    from {{ ref('int_sprints_unified') }}
    where true {{ and_tenant() }} {{ and_sprint_in_batch() }}
),

-- In an incremental build the batch's scope, items and assessments are read by index, sprint
-- by sprint and item by item (macros/index_reads.sql): this select runs with nested loops
-- disabled, so joined by hash they were read whole (about 0.5 s of its 2 s on the bench's day).
scope as (
    {%- if is_incremental() %}
    select scope.tenant_id, scope.sprint_uid, scope.work_item_uid, scope.is_completed, scope.points_at_end
    from {{ changed_sprints_relation() }} as changed
    {{ lateral_index_read(
        ref('int_sprint_scope'), 'scope',
        match='scope.tenant_id = changed.tenant_id and scope.sprint_uid = changed.sprint_uid',
        columns='scope.tenant_id, scope.sprint_uid, scope.work_item_uid, scope.is_completed, scope.points_at_end'
    ) }}
    {{ tenant_filter('changed') }}
    {%- else %}
    select tenant_id, sprint_uid, work_item_uid, is_completed, points_at_end
    from {{ ref('int_sprint_scope') }}
    {{ tenant_filter() }}
    {%- endif %}
),

items as (
    {%- if is_incremental() %}
    select items.tenant_id, items.work_item_uid, items.item_type, items.caused_by_uid, items.assignee_person_id
    from (select distinct tenant_id, work_item_uid from scope) as wanted
    {{ lateral_index_read(
        ref('int_work_items_unified'), 'items',
        match='items.tenant_id = wanted.tenant_id and items.work_item_uid = wanted.work_item_uid',
        columns='items.tenant_id, items.work_item_uid, items.item_type, items.caused_by_uid, items.assignee_person_id'
    ) }}
    {%- else %}
    select tenant_id, work_item_uid, item_type, caused_by_uid, assignee_person_id
    from {{ ref('int_work_items_unified') }}
    {{ tenant_filter() }}
    {%- endif %}
),

-- Bugs traced to a story (post-release defects): few, read whole, once (inlined, the planner
-- looped over the items index per story).
bugs as materialized (
    select tenant_id, work_item_uid, caused_by_uid
    from {{ ref('int_work_items_unified') }}
    where item_type = 'bug' and caused_by_uid is not null {{ and_tenant() }}
),

people as (
    select tenant_id, person_id, github_login, primary_project_key
    from {{ ref('int_people') }}
    {{ tenant_filter() }}
),

members as (
    {{ developer_sprint_members(
        '(select scope.tenant_id, scope.sprint_uid, items.assignee_person_id as person_id'
        ~ ' from scope inner join items'
        ~ ' on items.tenant_id = scope.tenant_id and items.work_item_uid = scope.work_item_uid)',
        'sprints',
        'people'
    ) }}
),

completed as (
    select
        scope.tenant_id,
        scope.sprint_uid,
        items.assignee_person_id as person_id,
        scope.work_item_uid,
        scope.points_at_end,
        items.item_type
    from scope
    inner join items
        on items.tenant_id = scope.tenant_id and items.work_item_uid = scope.work_item_uid
    where scope.is_completed and items.assignee_person_id is not null
),

completion as (
    select
        tenant_id,
        sprint_uid,
        person_id,
        count(*) as items_completed,
        coalesce(sum(points_at_end), 0) as points_completed
    from completed
    group by tenant_id, sprint_uid, person_id
),

defects as (
    select
        completed.tenant_id,
        completed.sprint_uid,
        completed.person_id,
        count(distinct bugs.work_item_uid) as defects_attributed
    from completed
    inner join bugs
        on bugs.tenant_id = completed.tenant_id and bugs.caused_by_uid = completed.work_item_uid
    where completed.item_type = 'story'
    group by completed.tenant_id, completed.sprint_uid, completed.person_id
),

compliance as (
    select
        completed.tenant_id,
        completed.sprint_uid,
        completed.person_id,
        count(*) as dmt_assessed_items,
        count(*) filter (where assessed.is_dmt_compliant) as dmt_compliant_items,
        avg(assessed.dmt_coverage_pct) as mean_dmt_coverage_pct
    from completed
    {{ join_batch_by_index(
        ref('fct_work_item_compliance'), 'assessed',
        match='assessed.tenant_id = completed.tenant_id and assessed.work_item_uid = completed.work_item_uid',
        columns='assessed.tenant_id, assessed.is_dmt_compliant, assessed.dmt_coverage_pct'
    ) }}
    where completed.item_type <> 'epic' {{ and_tenant('assessed') }}
    group by completed.tenant_id, completed.sprint_uid, completed.person_id
),

{%- if is_incremental() %}
-- The batch's windows, each once (sprints of different projects share theirs).
batch_windows as (
    select distinct tenant_id, start_at, window_end_at from sprints where window_end_at > start_at
),
{%- endif %}

-- The commits that can count: in an incremental build, those authored in a window of the batch,
-- read window by window through an index on the authoring time of every tenant's raw commits
-- (index_raw_load_ids in the config above), not every commit of the partition; in a build in
-- full, all of them.
commits as (
    {%- for relation in [ref('stg_github__commits'), ref('stg_azure_devops_git__commits')] %}
    {%- if is_incremental() %}
    select commits.tenant_id, commits.commit_sha, commits.author_email, commits.author_login, commits.authored_at
    from batch_windows
    {{ lateral_index_read(
        relation, 'commits',
        match='commits.tenant_id = batch_windows.tenant_id and commits.authored_at >= batch_windows.start_at'
            ~ ' and commits.authored_at < batch_windows.window_end_at',
        columns='commits.tenant_id, commits.commit_sha, commits.author_email, commits.author_login, commits.authored_at'
    ) }}
    {%- else %}
    select tenant_id, commit_sha, author_email, author_login, authored_at
    from {{ relation }}
    {{ tenant_filter() }}
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

{%- if is_incremental() %}
-- Per tenant, the start of the batch's earliest window: no git fact before it can count in the
-- batch, so commits, pull requests and reviews are read from it on.
span as (
    select tenant_id, min(start_at) as from_at
    from sprints
    group by tenant_id
),
{%- endif %}

-- One row per commit (a commit in two pull requests is one commit), with its author as a person.
commit_authors as (
    select distinct
        commits.tenant_id,
        commits.commit_sha,
        commits.authored_at,
        coalesce(by_email.person_id, by_login.person_id) as person_id
    from commits
    left join people as by_email
        on by_email.tenant_id = commits.tenant_id and by_email.person_id = commits.author_email
    left join people as by_login
        on by_login.tenant_id = commits.tenant_id and by_login.github_login = commits.author_login
),

-- Every review of the partition: an incremental build reads them twice, so once into a table.
all_reviews as {% if is_incremental() %}materialized {% endif %}(
    select tenant_id, pull_request_id, source_system, reviewer_email, reviewer_login, submitted_at, first_activity_at
    from {{ ref('int_pull_request_reviews_unified') }}
    {{ tenant_filter() }}
),

reviews as (
    select
        reviews.tenant_id,
        reviews.pull_request_id,
        coalesce(by_email.person_id, by_login.person_id) as person_id,
        reviews.submitted_at,
        reviews.first_activity_at  -- when they first reviewed (an Azure reviewer's first vote or comment)
    from all_reviews as reviews
    {{ reviewer_person_joins('reviews', 'people') }}
    {%- if is_incremental() %}
    -- every review of a pull request someone reviewed since the span's start, and only those: a
    -- review counts at its submission, a person's first review of a pull request at the earliest
    -- first activity of their reviews of it (which needs all of them)
    where (reviews.tenant_id, reviews.pull_request_id) in (
        select recent.tenant_id, recent.pull_request_id
        from all_reviews as recent
        inner join span on span.tenant_id = recent.tenant_id
        where recent.submitted_at >= span.from_at or recent.first_activity_at >= span.from_at
    )
    {%- endif %}
),

pull_requests as (
    select
        pull_requests.tenant_id,
        pull_requests.pull_request_id,
        pull_requests.source_system,
        pull_requests.author_login,
        coalesce(pull_requests.author_person_id, by_login.person_id) as author_person_id,
        pull_requests.opened_at,
        pull_requests.merged_at
    from {{ ref('int_pull_requests_unified') }} as pull_requests
    left join people as by_login
        on by_login.tenant_id = pull_requests.tenant_id
        and pull_requests.source_system = 'github'
        and by_login.github_login = pull_requests.author_login
    {%- if is_incremental() %}
    -- opened or merged since the span's start (pull requests authored, merged), or reviewed
    -- since (the author and opening of a review's pull request)
    inner join span on span.tenant_id = pull_requests.tenant_id
    where (
        pull_requests.opened_at >= span.from_at
        or pull_requests.merged_at >= span.from_at
        or (pull_requests.tenant_id, pull_requests.pull_request_id) in (
            select tenant_id, pull_request_id from reviews
        )
    ) {{ and_tenant('pull_requests') }}
    {%- else %}
    {{ tenant_filter('pull_requests') }}
    {%- endif %}
),

-- Each person's reviews of pull requests they did not author.
person_reviews as (
    select
        reviews.tenant_id, reviews.pull_request_id, reviews.person_id, reviews.submitted_at,
        reviews.first_activity_at, pull_requests.opened_at
    from reviews
    inner join pull_requests
        on pull_requests.tenant_id = reviews.tenant_id and pull_requests.pull_request_id = reviews.pull_request_id
    where reviews.person_id is not null
      and reviews.person_id is distinct from pull_requests.author_person_id
),

first_reviews as (
    select
        tenant_id,
        pull_request_id,
        person_id,
        min(first_activity_at) as first_review_at,
        extract(epoch from min(first_activity_at) - min(opened_at)) / 3600.0 as turnaround_hours
    from person_reviews
    group by tenant_id, pull_request_id, person_id
),

windows as (
    select members.tenant_id, members.sprint_uid, members.person_id, sprints.start_at, sprints.window_end_at
    from members
    inner join sprints
        on sprints.tenant_id = members.tenant_id and sprints.sprint_uid = members.sprint_uid
),

commit_counts as (
    select windows.tenant_id, windows.sprint_uid, windows.person_id, count(*) as commits
    from windows
    inner join commit_authors
        on commit_authors.tenant_id = windows.tenant_id
        and commit_authors.person_id = windows.person_id
        and commit_authors.authored_at >= windows.start_at
        and commit_authors.authored_at < windows.window_end_at
    group by windows.tenant_id, windows.sprint_uid, windows.person_id
),

authored as (
    select
        windows.tenant_id,
        windows.sprint_uid,
        windows.person_id,
        count(*) filter (
            where pull_requests.opened_at >= windows.start_at and pull_requests.opened_at < windows.window_end_at
        ) as prs_authored,
        count(*) filter (
            where pull_requests.merged_at >= windows.start_at and pull_requests.merged_at < windows.window_end_at
        ) as prs_merged
    from windows
    inner join pull_requests
        on pull_requests.tenant_id = windows.tenant_id and pull_requests.author_person_id = windows.person_id
    group by windows.tenant_id, windows.sprint_uid, windows.person_id
),

reviewed as (
    select
        windows.tenant_id,
        windows.sprint_uid,
        windows.person_id,
        count(distinct person_reviews.pull_request_id) as prs_reviewed
    from windows
    inner join person_reviews
        on person_reviews.tenant_id = windows.tenant_id
        and person_reviews.person_id = windows.person_id
        and person_reviews.submitted_at >= windows.start_at
        and person_reviews.submitted_at < windows.window_end_at
    group by windows.tenant_id, windows.sprint_uid, windows.person_id
),

turnaround as (
    select windows.tenant_id, windows.sprint_uid, windows.person_id, avg(first_reviews.turnaround_hours) as mean_hours
    from windows
    inner join first_reviews
        on first_reviews.tenant_id = windows.tenant_id
        and first_reviews.person_id = windows.person_id
        and first_reviews.first_review_at >= windows.start_at
        and first_reviews.first_review_at < windows.window_end_at
    group by windows.tenant_id, windows.sprint_uid, windows.person_id
)

select
    members.tenant_id,
    members.sprint_uid,
    members.person_id,
    sprints.project_key,
    members.is_assignee,
    members.is_project_member,
    coalesce(completion.items_completed, 0)::integer as items_completed,
    coalesce(completion.points_completed, 0)::numeric(12, 2) as points_completed,
    coalesce(commit_counts.commits, 0)::integer as commits,
    coalesce(authored.prs_authored, 0)::integer as prs_authored,
    coalesce(authored.prs_merged, 0)::integer as prs_merged,
    coalesce(reviewed.prs_reviewed, 0)::integer as prs_reviewed,
    round(turnaround.mean_hours, 2)::numeric(12, 2) as mean_review_turnaround_hours,
    coalesce(defects.defects_attributed, 0)::integer as defects_attributed,
    round(compliance.mean_dmt_coverage_pct, 2)::numeric(5, 2) as mean_dmt_coverage_pct,
    coalesce(compliance.dmt_assessed_items, 0)::integer as dmt_assessed_items,
    coalesce(compliance.dmt_compliant_items, 0)::integer as dmt_compliant_items,
    round(100.0 * compliance.dmt_compliant_items / nullif(compliance.dmt_assessed_items, 0), 2)::numeric(5, 2)
        as dmt_compliance_rate,
    sprints.start_at,
    sprints.window_end_at,
    people_versions.people_version
from members
inner join sprints
    on sprints.tenant_id = members.tenant_id and sprints.sprint_uid = members.sprint_uid
left join completion
    on completion.tenant_id = members.tenant_id
    and completion.sprint_uid = members.sprint_uid
    and completion.person_id = members.person_id
left join defects
    on defects.tenant_id = members.tenant_id
    and defects.sprint_uid = members.sprint_uid
    and defects.person_id = members.person_id
left join compliance
    on compliance.tenant_id = members.tenant_id
    and compliance.sprint_uid = members.sprint_uid
    and compliance.person_id = members.person_id
left join commit_counts
    on commit_counts.tenant_id = members.tenant_id
    and commit_counts.sprint_uid = members.sprint_uid
    and commit_counts.person_id = members.person_id
left join authored
    on authored.tenant_id = members.tenant_id
    and authored.sprint_uid = members.sprint_uid
    and authored.person_id = members.person_id
left join reviewed
    on reviewed.tenant_id = members.tenant_id
    and reviewed.sprint_uid = members.sprint_uid
    and reviewed.person_id = members.person_id
left join turnaround
    on turnaround.tenant_id = members.tenant_id
    and turnaround.sprint_uid = members.sprint_uid
    and turnaround.person_id = members.person_id
left join people_versions
    on people_versions.tenant_id = members.tenant_id
