with

source as (
    {{ union_tenant_sources(source('claude_code', 'otel_metric_points'), 'claude_code', [
        'point_id', 'metric_name', 'point_at', 'start_at', 'value', 'session_id', 'user_email',
        'organization_id', 'team'
    ]) }}
),

renamed as (
    -- claude_code.session.count: one point per CLI session started.
    select
        tenant_id,
        session_id::text as session_id,
        lower(user_email::text) as user_email,
        organization_id::text as organization_id,
        team::text as team_name,
        coalesce(start_at::timestamptz, point_at::timestamptz) as started_at,
        point_at::timestamptz as reported_at
    from source
    where metric_name = 'claude_code.session.count'
)

select
    tenant_id,
    session_id,
    min(user_email) as user_email,
    min(organization_id) as organization_id,
    min(team_name) as team_name,
    min(started_at) as started_at,
    max(reported_at) as last_reported_at
from renamed
where session_id is not null
group by tenant_id, session_id
