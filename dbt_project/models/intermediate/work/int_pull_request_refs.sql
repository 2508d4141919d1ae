{#- The work item references a pull request's text holds, before they are matched to work
    items (int_pull_request_work_items): developers name items in a title, branch or
    description as their tracker spells them: a Jira key (PLAT-12, plat-12 in a branch), a
    ClickUp task id (CU-86b1x2y3z, or its custom id), an Azure Boards mention (AB#123, ab-123
    in a branch). One row per pull request, place (found_in, with its priority) and reference:
    kind 'key' (a key or a ClickUp id, lower case) or 'azure' (a Boards id). Built per pull
    request (macros/incremental_pull_requests.sql): a pull request's text changes only with
    its own row, and the matching reads these rows, not the text. -#}
{#- The second index serves int_pull_request_work_items' pre-hook, which finds the pull requests
    naming a work item loaded since by (kind, ref). -#}
{{ per_pull_request_table(
    tables=['pull_requests'], key=['found_in', 'kind', 'ref'],
    indexes=[{'columns': ['tenant_id', 'kind', 'ref']}]
) }}

with

pull_requests as (
    select pull_requests.tenant_id, pull_requests.pull_request_id, pull_requests.title,
        pull_requests.head_branch, pull_requests.description
    from {{ rows_of_batch_pull_requests(ref('int_pull_requests__unioned'), 'pull_requests') }}
    where true {{ and_tenant('pull_requests') }}
),

texts as (
    select tenant_id, pull_request_id, 'title'::text as found_in, 1 as priority, lower(title) as body
    from pull_requests where title is not null
    union all
    select tenant_id, pull_request_id, 'branch', 2, lower(head_branch) from pull_requests where head_branch is not null
    union all
    select tenant_id, pull_request_id, 'description', 3, lower(description) from pull_requests where description is not null
),

candidates as (
    -- Keys such as plat-12 (Jira keys, ClickUp custom ids) and ClickUp's cu-<task id>.
    select texts.tenant_id, texts.pull_request_id, texts.found_in, texts.priority, 'key'::text as kind, found.match[1] as ref
    from texts
    cross join lateral regexp_matches(texts.body, '(?:^|[^a-z0-9])([a-z][a-z0-9_]*-[0-9a-z]+)', 'g') as found(match)
    union
    -- Azure Boards mentions: ab#123, or ab-123 where # cannot be written (branches).
    select texts.tenant_id, texts.pull_request_id, texts.found_in, texts.priority, 'azure'::text as kind, found.match[1]
    from texts
    cross join lateral regexp_matches(texts.body, '(?:^|[^a-z0-9])ab[#-]([0-9]+)', 'g') as found(match)
)

select tenant_id, pull_request_id, found_in, priority, kind, ref
from candidates
