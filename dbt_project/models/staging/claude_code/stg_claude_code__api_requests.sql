-- One row per model API request Claude Code made (event api_request), with tokens and cost.
select
    tenant_id,
    claude_code_event_id,
    request_id,
    session_id,
    prompt_id,
    user_email,
    team_name,
    model_name,
    event_at,
    received_at,
    duration_ms,
    coalesce(input_tokens, 0) as input_tokens,
    coalesce(output_tokens, 0) as output_tokens,
    coalesce(cache_read_tokens, 0) as cache_read_tokens,
    coalesce(cache_write_tokens, 0) as cache_write_tokens,
    cost_usd
from {{ ref('stg_claude_code__events') }}
where event_name = 'api_request'
