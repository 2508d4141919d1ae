{#- People of the tenant's Azure Boards: the members of the loaded teams, plus anyone a work
    item is assigned to or was created by who is in no loaded team. The user id is Azure's
    identity id; the email is the identity's uniqueName.
    A table: it reads every work item's payload, which its readers and tests would otherwise
    each do again. -#}
{{ config(materialized='table') }}
with

members as (
    {{ union_tenant_sources(source('azure_boards', 'team_members'), 'azure_boards', [
        'id', 'email', 'display_name'
    ]) }}
),

items as (
    {{ union_tenant_sources(source('azure_boards', 'work_items'), 'azure_boards', ['payload']) }}
),

identities as (
    select tenant_id, id::text as user_id, lower(email::text) as email, display_name::text as display_name, 1 as rank
    from members
    union all
    select
        tenant_id,
        identity ->> 'id' as user_id,
        lower(identity ->> 'uniqueName') as email,
        identity ->> 'displayName' as display_name,
        2 as rank
    from items
    -- each item's fields read out of its payload once: every -> on the stored column reads the
    -- whole document again (the select took 1.50 s for the 99k items of 16 tenants, 1.33 s so)
    cross join lateral (select payload::jsonb -> 'fields' as fields) as item
    cross join lateral (values (item.fields -> 'System.AssignedTo'), (item.fields -> 'System.CreatedBy')) as refs (identity)
    where identity ->> 'id' is not null
),

ranked as (
    select
        *,
        row_number() over (partition by tenant_id, user_id order by rank, email) as pick
    from identities
)

select
    tenant_id,
    'azure_boards'::text as source_system,
    user_id,
    email,
    display_name
from ranked
where pick = 1
