{#- People of the tenant's Azure Boards: the members of the loaded teams, plus anyone a work
    item is assigned to or was created by who is in no loaded team. The user id is Azure's
    identity id; the email is the identity's uniqueName.
    A table, which its readers and tests would otherwise each derive again; the items' identities
    come out of their payloads once per load (stg_azure_boards__work_item_identities). -#}
{{ config(materialized='table') }}
with

members as (
    {{ union_tenant_sources(source('azure_boards', 'team_members'), 'azure_boards', [
        'id', 'email', 'display_name'
    ]) }}
),

identities as (
    select tenant_id, id::text as user_id, lower(email::text) as email, display_name::text as display_name, 1 as rank
    from members
    union all
    select tenant_id, user_id, email, display_name, 2 as rank
    from {{ ref('stg_azure_boards__work_item_identities') }}
    {{ tenant_filter() }}
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
