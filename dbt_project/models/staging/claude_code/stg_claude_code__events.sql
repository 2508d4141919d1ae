with

source as (
    {{ union_tenant_sources(source('claude_code', 'otel_events'), 'claude_code', [
        'event_id', 'received_at', 'event_name', 'event_at', 'session_id', 'prompt_id', 'user_id',
        'user_email', 'organization_id', 'team', 'model', 'cost_usd', 'input_tokens', 'output_tokens',
        'cache_read_tokens', 'cache_creation_tokens', 'duration_ms', 'success', 'tool_name',
        'status_code', 'error', 'request_id'
    ]) }}
),

renamed as (
    select
        tenant_id,
        event_id::text as claude_code_event_id,
        event_name::text as event_name,
        event_at::timestamptz as event_at,
        received_at::timestamptz as received_at,
        session_id::text as session_id,
        prompt_id::text as prompt_id,
        user_id::text as claude_code_user_id,
        lower(user_email::text) as user_email,
        organization_id::text as organization_id,
        team::text as team_name,
        model::text as model_name,
        cost_usd::numeric as cost_usd,
        input_tokens::bigint as input_tokens,
        output_tokens::bigint as output_tokens,
        cache_read_tokens::bigint as cache_read_tokens,
        -- Claude Code's "cache creation" is what price tables call a cache write
        cache_creation_tokens::bigint as cache_write_tokens,
        duration_ms::numeric as duration_ms,
        success::boolean as is_success,
        tool_name::text as tool_name,
        status_code::integer as status_code,
        error::text as error_message,
        request_id::text as request_id,
        received_at::timestamptz as loaded_at
    from source
)

select * from renamed
