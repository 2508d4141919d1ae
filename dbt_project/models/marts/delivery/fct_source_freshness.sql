{#- One row per tenant and pulled source type: the newest dlt load of it that completed, when
    the build ran. The marts built in the same build read the rows of that load and those
    before it, so this is how fresh each source's part of them is (the sprint marts' git
    figures: the github or azure_devops_git row). A load whose package has not completed yet
    (dlt status other than 0) does not count; a source with no completed load has no row.
    Small (tenants × six source types): rebuilt per tenant partition and written as a diff,
    so a source with no new load keeps its row as it was. -#}

with

loads as (
    select tenant_id, source_type, load_id, loaded_at
    from {{ ref('stg_dlt_loads__loads') }}
    where is_loaded {{ and_tenant() }}
),

-- the newest by the id's number (a Unix timestamp in text, so text order could mislead)
newest as (
    select distinct on (tenant_id, source_type)
        tenant_id,
        source_type,
        load_id,
        loaded_at
    from loads
    order by tenant_id, source_type, load_id::numeric desc
),

counted as (
    select tenant_id, source_type, count(*) as completed_loads
    from loads
    group by tenant_id, source_type
)

select
    newest.tenant_id,
    newest.source_type,
    newest.load_id as last_load_id,
    newest.loaded_at as last_loaded_at,
    counted.completed_loads::integer as completed_loads
from newest
inner join counted
    on counted.tenant_id = newest.tenant_id and counted.source_type = newest.source_type
