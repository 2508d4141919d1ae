{#- One row per tenant and pulled source type: the newest dlt load of it that had completed when
    this mart was built, and how many have. A mart built in the same run read the rows of that
    load and those before it; one whose step did not run keeps older rows (the model's docs). A
    load whose package has not completed yet (dlt status other than 0) does not count; a source
    with no completed load has no row. Small (tenants × six source types): rebuilt per tenant
    partition and written as a diff, so a source with no new load keeps its row as it was. -#}

-- the newest by the id's number (a Unix timestamp in text, so text order could mislead), with
-- the count of its source's completed loads, in one pass
select distinct on (tenant_id, source_type)
    tenant_id,
    source_type,
    load_id as last_load_id,
    loaded_at as last_loaded_at,
    (count(*) over (partition by tenant_id, source_type))::integer as completed_loads
from {{ ref('stg_dlt_loads__loads') }}
where is_loaded {{ and_tenant() }}
order by tenant_id, source_type, load_id::numeric desc
