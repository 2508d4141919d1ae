{#- The identities each Azure Boards work item names (System.AssignedTo, System.CreatedBy), one
    row per item and role, read out of its payload: what stg_azure_boards__users needs of the
    work items, without parsing every item's payload again at every build.

    A table staged per item (macros/incremental.sql): a run reads the payloads of the items loaded
    since it last ran. It depends on no lookup. -#}
{%- set loaded, lookups = 'azure_boards_item_loads', 'no_item_lookups' -%}
{{ per_source_item_table(loaded, lookups, [('azure_boards', 'work_items', 'id')]) }}
with

items as (
    select * from (
    {{ union_tenant_sources(source('azure_boards', 'work_items'), 'azure_boards', ['id', 'payload']) }}
    ) as raw_items
    where true {{ and_source_item_in_batch('id', 'bigint') }}
),

identities as (
    select
        items.tenant_id,
        items.id::bigint::text as work_item_id,
        refs.role,
        refs.identity
    from items
    -- the payload parsed once per item (every -> on the stored text parses it again)
    cross join lateral (select items.payload::jsonb -> 'fields' as fields) as item
    cross join lateral (
        values ('assigned_to', item.fields -> 'System.AssignedTo'), ('created_by', item.fields -> 'System.CreatedBy')
    ) as refs (role, identity)
    where refs.identity ->> 'id' is not null
)

select
    identities.tenant_id,
    identities.work_item_id,
    identities.role,
    identities.identity ->> 'id' as user_id,
    lower(identities.identity ->> 'uniqueName') as email,
    identities.identity ->> 'displayName' as display_name,
    loads.loaded_at,
    lookups.lookups_version
from identities
{{ join_staged_stamps('identities', 'identities.work_item_id', loaded, lookups) }}
