{#- Which work items a pull request implements: one row per pull request and work item, with
    where the link was found. Developers name items in a pull request's title, branch or
    description as their tracker spells them: a Jira key (PLAT-12, plat-12 in a branch), a
    ClickUp task id (CU-86b1x2y3z, or its custom id), an Azure Boards mention (AB#123, ab-123 in
    a branch); Azure DevOps also links work items to pull requests itself (found_in
    'tool_link'). A candidate counts only if it names a work item of the same tenant. The
    references are read from int_pull_request_refs. Built per pull request
    (macros/incremental_pull_requests.sql): a pull request is rebuilt when its row or its
    Azure links were loaded, or a work item it names, tool-links or was linked to was. -#}
{{ per_pull_request_table(
    tables=['pull_requests', 'pull_request_work_items'], key=['work_item_uid'],
    also='pull_request_work_items_also', reads_items=true, logs_for=['int_pull_requests_unified'],
    indexes=[{'columns': ['tenant_id', 'work_item_uid']}]
) }}

with

candidates as materialized (
    -- the references in the pull requests' title, branch and description
    select tenant_id, pull_request_id, found_in, priority, kind, ref
    from {{ ref('int_pull_request_refs') }}
    where true {{ and_pull_request_in_batch() }}
),

-- Each reference meets the items by an equi-join the items' indexes answer (a Jira or ClickUp
-- key by the lowercase key, an Azure id by the item's uid): an incremental build's few hundred
-- references look their items up instead of reading every item, and a build in full hashes.
mentioned as (
    select candidates.tenant_id, candidates.pull_request_id, items.work_item_uid, candidates.found_in, candidates.priority
    from candidates
    inner join {{ ref('int_work_items__unioned') }} as items
        on items.tenant_id = candidates.tenant_id and lower(items.work_item_key) = candidates.ref
    where candidates.kind = 'key' and items.source_system in ('jira', 'clickup') {{ and_tenant('items') }}
    union all
    select candidates.tenant_id, candidates.pull_request_id, items.work_item_uid, candidates.found_in, candidates.priority
    from candidates
    inner join {{ ref('int_work_items__unioned') }} as items
        on items.tenant_id = candidates.tenant_id
        -- an Azure reference is digits: the item's id, so its uid too
        and items.work_item_uid = 'azure_boards:' || candidates.ref
        and lower(items.work_item_id) = candidates.ref
    where candidates.kind = 'azure' and items.source_system = 'azure_boards' {{ and_tenant('items') }}
),

tool_links as (
    select
        links.tenant_id,
        links.pull_request_id,
        'azure_boards:' || links.work_item_id as work_item_uid,
        'tool_link'::text as found_in,
        0 as priority
    from (
        select links.tenant_id, links.pull_request_id, links.work_item_id
        from {{ rows_of_batch_pull_requests(ref('stg_azure_devops_git__pull_request_work_items'), 'links') }}
        where true {{ and_tenant('links') }}
        -- the batch's links first, then their items by uid (not every item against the batch)
        offset 0
    ) as links
    inner join {{ ref('int_work_items__unioned') }} as items
        on items.tenant_id = links.tenant_id and items.work_item_uid = 'azure_boards:' || links.work_item_id
    where true {{ and_tenant('items') }}
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
