with

source as (
    {{ union_tenant_sources(source('clickup', 'members'), 'clickup', ['id', 'username', 'email']) }}
)

select
    tenant_id,
    'clickup'::text as source_system,
    id::text as user_id,
    lower(email::text) as email,
    username::text as display_name
from source
