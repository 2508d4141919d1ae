{#- Jira accounts. Jira hides most emails in changelogs and often on issues; this is where
    the other Jira models resolve an account id to its email. -#}
with

source as (
    {{ union_tenant_sources(source('jira', 'users'), 'jira', [
        'account_id', 'account_type', 'email', 'display_name', 'active'
    ]) }}
)

select
    tenant_id,
    'jira'::text as source_system,
    account_id::text as user_id,
    lower(nullif(trim(email::text), '')) as email,
    display_name::text as display_name
from source
