{#- Which work items a pull request implements: one row per pull request and work item, with
    where the link was found. Developers name items in a pull request's title, branch or
    description as their tracker spells them: a Jira key (PLAT-12, plat-12 in a branch), a
    ClickUp task id (CU-86b1x2y3z, or its custom id), an Azure Boards mention (AB#123, ab-123 in
    a branch); Azure DevOps also links work items to pull requests itself (found_in
    'tool_link'). A candidate counts only if it names a work item of the same tenant. -#}
{{ per_tenant_table(key=['tenant_id', 'pull_request_id', 'work_item_uid']) }}

with

pull_requests as (
    select tenant_id, pull_request_id, title, head_branch, description
    from {{ ref('int_pull_requests__unioned') }}
    {{ tenant_filter() }}
),

items as (
    select tenant_id, work_item_uid, source_system, lower(work_item_id) as work_item_id, lower(work_item_key) as work_item_key
    from {{ ref('int_work_items__unioned') }}
    {{ tenant_filter() }}
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
    select texts.tenant_id, texts.pull_request_id, texts.found_in, texts.priority, 'key' as kind, found.match[1] as ref
    from texts
    cross join lateral regexp_matches(texts.body, '(?:^|[^a-z0-9])([a-z][a-z0-9_]*-[0-9a-z]+)', 'g') as found(match)
    union all
    -- Azure Boards mentions: ab#123, or ab-123 where # cannot be written (branches).
    select texts.tenant_id, texts.pull_request_id, texts.found_in, texts.priority, 'azure' as kind, found.match[1]
    from texts
    cross join lateral regexp_matches(texts.body, '(?:^|[^a-z0-9])ab[#-]([0-9]+)', 'g') as found(match)
),

mentioned as (
    -- Two equi-joins (not one join on "this key or that id": that cannot be hashed).
    select candidates.tenant_id, candidates.pull_request_id, items.work_item_uid, candidates.found_in, candidates.priority
    from candidates
    inner join items
        on items.tenant_id = candidates.tenant_id and items.work_item_key = candidates.ref
    where candidates.kind = 'key' and items.source_system in ('jira', 'clickup')
    union all
    select candidates.tenant_id, candidates.pull_request_id, items.work_item_uid, candidates.found_in, candidates.priority
    from candidates
    inner join items
        on items.tenant_id = candidates.tenant_id and items.work_item_id = candidates.ref
    where candidates.kind = 'azure' and items.source_system = 'azure_boards'
),

tool_links as (
    select
        links.tenant_id,
        links.pull_request_id,
        'azure_boards:' || links.work_item_id as work_item_uid,
        'tool_link'::text as found_in,
        0 as priority
    from {{ ref('stg_azure_devops_git__pull_request_work_items') }} as links
    inner join items
        on items.tenant_id = links.tenant_id and items.work_item_uid = 'azure_boards:' || links.work_item_id
    {{ tenant_filter('links') }}
),

links as (
    select * from mentioned
    union all
    select * from tool_links
)

select
    tenant_id,
    pull_request_id,
    work_item_uid,
    string_agg(distinct found_in, ', ' order by found_in) as found_in,
    (array_agg(found_in order by priority))[1] as first_found_in
from links
group by tenant_id, pull_request_id, work_item_uid
